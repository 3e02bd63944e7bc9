"""`novamove report RUN --html FILE`: one self-contained page (no network needed to open it)
with an inline SVG timeline of a run read from its journal: a lane per host (a campaign's
stages disable, drain, hook, gate, enable; a drain's or evacuation's time out of service), a
lane per move (start, end, colour by result), the caps over time (moves in flight, hosts out)
and the summary table. Works on any run, finished or interrupted: what has no end yet ends at
the run's last known moment and is drawn as unfinished.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Optional

from novamove.engine import events as ev
from novamove.observe.metrics import DISABLE_KINDS, ENABLE_KINDS, MOVE_KINDS

COLOURS = {"moved": "#2e7d32", "done": "#2e7d32", "evacuated": "#2e7d32", "failed": "#c62828",
           "not-evacuated": "#c62828", "aborted": "#8d6e63", "skipped": "#9e9e9e", "gone": "#9e9e9e",
           "unfinished": "#f9a825"}
STAGE_COLOURS = {"disable": "#6a1b9a", "drain": "#1565c0", "hook": "#ef6c00", "gate": "#00838f",
                 "enable": "#2e7d32", "out of service": "#6a1b9a"}
WIDTH, LABEL, LANE, PAD = 1200, 230, 22, 26
MIN_BAR = 3.0           # px: a change shorter than the journal's 1 s resolution still shows


def _t(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


@dataclass
class Bar:
    start: datetime
    end: datetime
    label: str
    colour: str
    title: str
    unfinished: bool = False


@dataclass
class Lane:
    name: str
    bars: list[Bar] = field(default_factory=list)
    outcome: str = ""


@dataclass
class Timeline:
    run: dict
    t0: datetime
    t1: datetime
    hosts: list[Lane]
    moves: list[Lane]
    steps: list[tuple[datetime, int, int]]       # (when, moves in flight, hosts out) from then on
    summary: list[tuple[str, str]]
    cap: Optional[int] = None


def build(record: dict) -> Timeline:
    """`record`: api.run_record()'s {"run", "runs", "events": {run id: [event dicts]}}."""
    run, runs, by_run = record["run"], record["runs"], record["events"]
    every = [e for r in runs for e in by_run.get(r["id"], [])]
    times = [t for r in runs for t in (_t(r["started_at"]), _t(r.get("finished_at"))) if t]
    times += [t for e in every for t in (_t(e["at"]), _t(e.get("ended_at"))) if t]
    t0, t1 = min(times), max(times)
    if (t1 - t0).total_seconds() < 1:
        t1 = t0.replace(microsecond=0) + (t1 - t0) + _second()
    finished = _t(run.get("finished_at")) is not None
    hosts = _host_lanes(run, runs, by_run, t1)
    moves = _move_lanes(every, t1, finished)
    steps = _steps(moves, hosts)
    return Timeline(run, t0, t1, hosts, moves, steps, _summary(run, runs, every, hosts, moves), _cap(every))


def _second():
    from datetime import timedelta
    return timedelta(seconds=1)


def _host_lanes(run: dict, runs: list[dict], by_run: dict, t1: datetime) -> list[Lane]:
    lanes: dict[str, Lane] = {}
    mine = by_run.get(run["id"], [])
    if run["verb"] == ev.VERB_MAINTAIN:
        drains = {r["id"]: r for r in runs}
        for e in mine:
            host = e.get("target")
            if not host or e["kind"] in (ev.MAINTAIN_CAMPAIGN,):
                continue
            lane = lanes.setdefault(host, Lane(host))
            at, end = _t(e["at"]), _t(e.get("ended_at")) or _t(e["at"])
            if e["kind"] == ev.MAINTAIN_DISABLE:
                lane.bars.append(Bar(at, end, "disable", STAGE_COLOURS["disable"], f"{host}: disabled at {e['at']}"))
            elif e["kind"] == ev.MAINTAIN_DRAIN:
                d = drains.get(e["data"].get("drain_run"))
                start = _t(d["started_at"]) if d else at
                stop = _t(d.get("finished_at")) if d else None
                lane.bars.append(Bar(start, stop or at, "drain", STAGE_COLOURS["drain"],
                                     f"{host}: {e['data'].get('summary') or 'drain'}"))
            elif e["kind"] == ev.MAINTAIN_HOOK:
                lane.bars.append(Bar(at, _t(e.get("ended_at")) or t1, "hook", STAGE_COLOURS["hook"],
                                     f"{host}: hook {e['state']}", e["state"] == "intent"))
            elif e["kind"] == ev.MAINTAIN_GATE:
                hook = [b for b in lane.bars if b.label == "hook"]
                lane.bars.append(Bar(hook[-1].end if hook else at, at, "gate", STAGE_COLOURS["gate"],
                                     f"{host}: gate {'passed' if e['data'].get('ok') else 'failed'}: "
                                     f"{e['data'].get('why', '')}"))
            elif e["kind"] == ev.MAINTAIN_ENABLE:
                lane.bars.append(Bar(at, end, "enable", STAGE_COLOURS["enable"], f"{host}: enabled at {e['at']}"))
            elif e["kind"] == ev.MAINTAIN_HOST:
                lane.outcome = str(e["data"].get("outcome", ""))
        return [lanes[h] for h in sorted(lanes)]
    # drain, evacuate, a single move's isolation: a host is out from its disable to its enable
    for r in runs:
        out: dict[str, datetime] = {}
        for e in by_run.get(r["id"], []):
            host = e.get("target")
            if not host or e["state"] not in ("done", "intent"):
                continue
            if e["kind"] in DISABLE_KINDS and e["state"] == "done":
                out.setdefault(host, _t(e["at"]))
                lanes.setdefault(host, Lane(host))
            elif e["kind"] in ENABLE_KINDS and e["state"] == "done" and host in out:
                lanes[host].bars.append(Bar(out.pop(host), _t(e["ended_at"]) or _t(e["at"]), "out of service",
                                            STAGE_COLOURS["out of service"], f"{host}: out of service"))
        end = _t(r.get("finished_at")) or t1
        for host, start in out.items():
            lanes[host].bars.append(Bar(start, end, "out of service", STAGE_COLOURS["out of service"],
                                        f"{host}: disabled, still out at the run's end", True))
    return [lanes[h] for h in sorted(lanes)]


def _move_lanes(every: Iterable[dict], t1: datetime, finished: bool) -> list[Lane]:
    lanes = []
    for e in every:
        if e["kind"] not in MOVE_KINDS:
            continue
        data = e.get("data") or {}
        name = data.get("name") or data.get("server_name") or e.get("target") or "?"
        result = data.get("result") or (e["state"] if e["state"] in ("done", "failed") else "unfinished")
        open_ = e["state"] == "intent"
        if open_:
            result = "unfinished"
        where = f"{data.get('source', '?')} → {data.get('dest') or data.get('host') or '?'}"
        start, end = _t(e["at"]), _t(e.get("ended_at")) or t1
        title = f"{name} ({e.get('target')}): {result}, {where}, {e['at']} → {e.get('ended_at') or 'no end'}"
        lanes.append(Lane(str(name), [Bar(start, end, result, COLOURS.get(result, "#546e7a"), title, open_)],
                          result))
    return sorted(lanes, key=lambda lane: (lane.bars[0].start, lane.name))


def _steps(moves: list[Lane], hosts: list[Lane]) -> list[tuple[datetime, int, int]]:
    changes: list[tuple[datetime, int, int]] = []
    for lane in moves:
        for b in lane.bars:
            changes += [(b.start, 1, 0), (b.end, -1, 0)]
    for lane in hosts:
        if lane.bars:
            changes += [(min(b.start for b in lane.bars), 0, 1), (max(b.end for b in lane.bars), 0, -1)]
    steps, flight, out = [], 0, 0
    for when, df, do in sorted(changes, key=lambda c: (c[0], -c[1] - c[2])):
        flight, out = flight + df, out + do
        steps.append((when, flight, out))
    return steps


def _cap(every: Iterable[dict]) -> Optional[int]:
    for e in every:
        data = e.get("data") or {}
        for holder in (data.get("options") or {}, data.get("plan") or {}):
            if isinstance(holder, dict) and isinstance(holder.get("max_parallel"), int):
                return holder["max_parallel"]
    return None


def _summary(run, runs, every, hosts, moves) -> list[tuple[str, str]]:
    results: dict[str, int] = {}
    for lane in moves:
        results[lane.outcome] = results.get(lane.outcome, 0) + 1
    rows = [("run", run["id"]), ("verb", run["verb"]), ("status", run["status"]),
            ("started", run["started_at"]), ("finished", run.get("finished_at") or "(not finished)"),
            ("summary", run.get("summary") or ""), ("runs", str(len(runs))),
            ("moves", ", ".join(f"{n} {r}" for r, n in sorted(results.items())) or "none")]
    if any(lane.outcome for lane in hosts):
        rows.append(("hosts", ", ".join(f"{lane.name}: {lane.outcome or 'unfinished'}" for lane in hosts)))
    if run.get("error"):
        rows.append(("error", run["error"]))
    return rows


# ---------------------------------------------------------------------------- rendering

def svg(tl: Timeline) -> str:
    """The timeline as one standalone SVG document (also what the HTML page inlines)."""
    span = max((tl.t1 - tl.t0).total_seconds(), 1.0)
    plot = WIDTH - LABEL - PAD

    def x(t: datetime) -> float:
        return LABEL + plot * (t - tl.t0).total_seconds() / span

    parts: list[str] = []
    y = 30
    parts.append(_axis(tl, x, span))
    for title, lanes in (("Hosts", tl.hosts), ("Moves", tl.moves)):
        if not lanes:
            continue
        parts.append(f'<text x="4" y="{y + 14}" class="section">{title}</text>')
        y += LANE
        for lane in lanes:
            parts.append(f'<text x="8" y="{y + 15}" class="lane" data-lane="{title.lower()[:-1]}">{_e(lane.name)}'
                         f'{(" · " + _e(lane.outcome)) if lane.outcome and title == "Hosts" else ""}</text>')
            parts.append(f'<line x1="{LABEL}" x2="{WIDTH - PAD}" y1="{y + LANE}" y2="{y + LANE}" class="grid"/>')
            for b in lane.bars:
                x0, x1 = x(b.start), max(x(b.end), x(b.start) + MIN_BAR)
                dash = ' stroke="#000" stroke-dasharray="3,2"' if b.unfinished else ""
                parts.append(f'<rect x="{x0:.1f}" y="{y + 3}" width="{x1 - x0:.1f}" height="{LANE - 6}" '
                             f'fill="{b.colour}"{dash}><title>{_e(b.title)}</title></rect>')
            y += LANE
        y += 8
    y = _caps(tl, x, parts, y)
    height = y + 10
    body = "\n".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">\n'
            f'<style>.section{{font-weight:bold;font-size:13px}} .lane{{fill:#222}} '
            f'.grid{{stroke:#eee}} .axis{{fill:#555;font-size:11px}}</style>\n'
            f'<rect width="100%" height="100%" fill="#fff"/>\n{body}\n</svg>')


def _axis(tl: Timeline, x, span: float) -> str:
    ticks = 8
    out = []
    for i in range(ticks + 1):
        seconds = span * i / ticks
        xx = LABEL + (WIDTH - LABEL - PAD) * i / ticks
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="20" y2="26" stroke="#999"/>'
                   f'<text x="{xx:.1f}" y="16" class="axis" text-anchor="middle">+{_dur(seconds)}</text>')
    out.append(f'<text x="4" y="16" class="axis">{_e(tl.t0.strftime("%Y-%m-%d %H:%M:%S UTC"))}</text>')
    return "".join(out)


def _caps(tl: Timeline, x, parts: list[str], y: int) -> int:
    """Moves in flight (blue) and hosts out of service (purple) over time, with the cap."""
    if not tl.steps:
        return y
    height = 90
    top = max([f for _, f, _ in tl.steps] + [o for _, _, o in tl.steps] + [tl.cap or 0, 1])
    parts.append(f'<text x="4" y="{y + 14}" class="section">Caps over time</text>')
    parts.append(f'<text x="8" y="{y + 34}" class="lane" fill="#1565c0">moves in flight</text>')
    parts.append(f'<text x="8" y="{y + 50}" class="lane" fill="#6a1b9a">hosts out of service</text>')
    base = y + 8 + height

    def yy(v: int) -> float:
        return base - height * v / top

    for idx, colour in ((1, "#1565c0"), (2, "#6a1b9a")):
        pts, last = [f"{LABEL},{base}"], 0
        for step in tl.steps:
            xx = x(step[0])
            pts += [f"{xx:.1f},{yy(last):.1f}", f"{xx:.1f},{yy(step[idx]):.1f}"]
            last = step[idx]
        pts.append(f"{WIDTH - PAD},{yy(last):.1f}")
        parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    if tl.cap:
        parts.append(f'<line x1="{LABEL}" x2="{WIDTH - PAD}" y1="{yy(tl.cap):.1f}" y2="{yy(tl.cap):.1f}" '
                     f'stroke="#c62828" stroke-dasharray="6,3"/><text x="{WIDTH - PAD}" y="{yy(tl.cap) - 3:.1f}" '
                     f'class="axis" text-anchor="end">--max-parallel {tl.cap}</text>')
    parts.append(f'<line x1="{LABEL}" x2="{WIDTH - PAD}" y1="{base}" y2="{base}" stroke="#999"/>'
                 f'<text x="{LABEL - 4}" y="{yy(top) + 4:.1f}" class="axis" text-anchor="end">{top}</text>')
    return base + 10


def html_page(tl: Timeline) -> str:
    rows = "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in tl.summary)
    legend = " ".join(f'<span><i style="background:{c}"></i>{_e(n)}</span>'
                      for n, c in list(STAGE_COLOURS.items())[:5] + [("moved", COLOURS["moved"]),
                                                                     ("failed", COLOURS["failed"]),
                                                                     ("skipped/gone", COLOURS["gone"]),
                                                                     ("unfinished", COLOURS["unfinished"])])
    title = f"novamove {tl.run['verb']} {tl.run['id']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 16px; color: #222; }}
table {{ border-collapse: collapse; margin: 12px 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }}
.legend span {{ margin-right: 14px; white-space: nowrap; }}
.legend i {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: middle; }}
</style></head>
<body>
<h1>{_e(title)}</h1>
<table class="summary">{rows}</table>
<div class="legend">{legend}</div>
{svg(tl)}
<p>Hover a bar for its times and details. Dashed: not finished when the journal was read.</p>
</body></html>
"""


def _dur(seconds: float) -> str:
    if seconds < 20:
        return f"{seconds:.1f}s"
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _e(text) -> str:
    return html.escape(str(text), quote=True)
