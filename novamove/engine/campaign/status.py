"""Reading campaigns back from the journal (`campaign status`, `--resume`)."""

from __future__ import annotations

from typing import Any, Optional

from novamove import errors
from novamove.engine.journal import run_alive
from novamove.engine.campaign.common import (EV_CAMPAIGN, EV_DISABLE, EV_DRAIN, EV_ENABLE, EV_GATE, EV_HOOK,
                                             EV_HOST, EV_STOP, VERB)


# ---------------------------------------------------------------------------------- journal reading

def campaign_runs(journal: Any) -> list[dict]:
    return journal.runs(limit=100000, verbs={VERB})


def read_campaign(journal: Any, run_id: str) -> tuple[dict, dict, dict]:
    """(run, options+hosts note, per-host state) of a campaign from its journal events."""
    run = journal.get_run(run_id)
    if run is None or run["verb"] != VERB:
        raise errors.NotFound(f"no maintain run {run_id!r} in the journal {getattr(journal, 'path', '')}")
    setup: dict = {}
    hosts: dict[str, dict] = {}
    for ev in journal.events(run["id"]):
        if ev.kind == EV_CAMPAIGN:
            setup = ev.data
            continue
        h = hosts.setdefault(ev.target or "", {}) if ev.kind in (EV_HOST, EV_HOOK, EV_DISABLE, EV_ENABLE,
                                                                  EV_DRAIN, EV_GATE) else None
        if ev.kind == EV_HOST:
            h["outcome"] = ev.data.get("outcome")
            h["detail"] = ev.data.get("detail")
        elif ev.kind == EV_HOOK:
            h["hook"] = {"intent": "running", "done": "done", "failed": "failed"}[ev.state]
            h["hook_started"] = ev.data.get("started")
            h["hook_ended"] = ev.data.get("ended")
            h["log"] = ev.data.get("log")
            h["hook_pid"], h["hook_process"] = ev.data.get("pid"), ev.data.get("process")
            h.pop("outcome", None) if ev.state == "intent" else None
        elif ev.kind == EV_STOP and ev.state in ("intent", "done"):
            hosts.setdefault(ev.data.get("host") or "", {}).setdefault("stopped", []).append(
                {"id": ev.target, "name": ev.data.get("name")})
        elif ev.kind == EV_DISABLE and h is not None:
            h["disabled"] = True
        elif ev.kind == EV_ENABLE and h is not None and ev.state == "done":
            h["enabled"] = True
    return run, setup, hosts


def status(journal: Any, run_id: Optional[str] = None) -> list[dict]:
    """Campaigns in the journal (newest first), or one with its hosts' state."""
    runs = [journal.get_run(run_id)] if run_id else campaign_runs(journal)
    out = []
    for run in runs:
        if run is None:
            raise errors.NotFound(f"no maintain run {run_id!r} in the journal")
        _, setup, hosts = read_campaign(journal, run["id"])
        # (its process here; on another machine, its lease: a pid there means nothing here)
        alive = run["status"] == "running" and run_alive(run)
        out.append({"run_id": run["id"], "status": run["status"] if alive or run["status"] != "running"
                    else "killed", "started_at": run["started_at"], "finished_at": run.get("finished_at"),
                    **people(run), "hosts": setup.get("hosts", []), "summary": run.get("summary"),
                    "host_state": {h: {k: v for k, v in st.items() if k != "stopped"} for h, st in hosts.items() if h}})
    return out


def people(run: dict) -> dict:
    """Who started the campaign (user@machine, command line without secrets) and who took it
    over last (`maintain --resume`, maybe on another machine) and when; None when unknown
    (a journal from before novamove recorded them) or never taken over."""
    def who(user: Optional[str], machine: Optional[str]) -> Optional[str]:
        return f"{user or '?'}@{machine}" if machine else None
    return {"started_by": who(run.get("user_name"), run.get("machine")), "command": run.get("command"),
            "taken_over_by": who(run.get("taken_over_user"), run.get("taken_over_machine")),
            "taken_over_at": run.get("taken_over_at")}


