#!/usr/bin/env python3
"""novamove's own CPU per move in a drain, in-process on the unit tests' fake Nova (no minicloud):
the figure issue 22 asks to keep <= 20 ms with observers on (`--events` and
`--metrics-textfile`), measured with time.process_time, which a loaded machine disturbs far
less than wall time.

One host holding N servers (default 80) drained at --cap moves at a time onto 4 others, in
turn (round after round, so a busy machine slows them alike):
- bare:      no observers;
- observed:  an EventStream to a file and RunMetrics writing a textfile (what --events FILE
             --metrics-textfile PATH build).
Each drain's CPU is split by where it was spent (exclusive time, a stack of meters around every
call into the fake, the journal and each observer): the fake Nova (not novamove: on a real
cloud that is openstacksdk + HTTP, drain_scale.py's figure), the journal (its store), the
journal re-reading a row to tell observers, each observer, and the rest of novamove (runner,
planner, polls, reports). "novamove CPU per move" is everything but the fake.

    .venv/bin/python bench/drain_cpu.py [--servers 80] [--rounds 3] [--cap 4] [--profile FILE]
                                        [--journal-url URL|mariadb|postgresql]

--journal-url puts the drains' journal on a database server (each drain's runs beside the
others' in that database) instead of a fresh SQLite file per drain: a URL (its password inline
is fine here, a bench), or `mariadb` / `postgresql` to start the unit tests' loopback server
(tests/unit/journal_servers.py) for the run.

The fake stands for the cloud client, so the real client's CPU (openstacksdk, keystoneauth,
requests and novamove/cloud/) is measured apart: each adapter verb the drain called, on canned
Nova answers through an in-process transport (no sockets), before and with connect()'s
once-per-endpoint environment settings; times the drain's requests per verb, per move.

--profile writes the cProfile stats of one more observed drain (read with `python -m pstats`)
and prints its 25 hottest functions by own time, the fake excluded.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit"))

from fakenova import FakeNova  # noqa: E402

from novamove import api  # noqa: E402
from novamove.engine.journal import Journal  # noqa: E402
from novamove.model import Resources  # noqa: E402

SOURCE = "c1"
HOSTS = ("c1", "c2", "c3", "c4", "c5")
GOAL_MS = 20.0
REREAD = "journal re-read for observers"


class Meters:
    """Exclusive process CPU by category: the innermost metered call is charged, except that a
    call of `inner` inside an `outer` category stays the outer one's (the journal's reads made
    to tell the observers are that re-read's, not the journal's own)."""

    def __init__(self, outer: tuple = (), inner: str = "") -> None:
        self.outer, self.inner = set(outer), inner
        self.stack = ["novamove"]
        self.spent: dict[str, float] = {}
        self.last = time.process_time()

    def _switch(self) -> None:
        now = time.process_time()
        top = self.stack[-1]
        self.spent[top] = self.spent.get(top, 0.0) + now - self.last
        self.last = now

    def wrap(self, category: str, fn):
        @functools.wraps(fn)
        def metered(*args, **kwargs):
            self._switch()
            top = self.stack[-1]
            self.stack.append(top if category == self.inner and top in self.outer else category)
            try:
                return fn(*args, **kwargs)
            finally:
                self._switch()
                self.stack.pop()
        return metered

    def wrap_object(self, obj, category: str, names) -> None:
        for name in names:
            setattr(obj, name, self.wrap(category, getattr(obj, name)))

    def total(self) -> dict[str, float]:
        self._switch()
        return dict(self.spent)


def public_methods(obj) -> list[str]:
    return [n for n in dir(type(obj)) if not n.startswith("__") and callable(getattr(type(obj), n, None))
            and not isinstance(getattr(type(obj), n), (property, type))]


def make_fake(n: int) -> FakeNova:
    fake = FakeNova(hosts=HOSTS, capacity=Resources(4 * n, 1024 * n, 10 * n))
    for i in range(n):
        fake.add(f"s{i:04d}", SOURCE)
    return fake


OBSERVER_DIR: list = []     # --observer-dir: where the stream and the textfile go (default: the journal's)
JOURNAL_URL: list = []      # --journal-url: the database the drains journal in (default: SQLite files)


def observers_for(tmp: Path, tag: str) -> list:
    from novamove.observe.metrics import RunMetrics
    from novamove.observe.stream import EventStream
    where = Path(OBSERVER_DIR[0]) if OBSERVER_DIR else tmp
    return [EventStream.open(str(where / f"{tag}.events.jsonl")), RunMetrics(textfile=str(where / f"{tag}.prom"))]


def one_drain(tmp: Path, tag: str, n: int, cap: int, poll: float, observe: bool, meter: bool) -> dict:
    fake = make_fake(n)
    journal = Journal(JOURNAL_URL[0] if JOURNAL_URL else tmp / f"{tag}.sqlite")
    observers = observers_for(tmp, tag) if observe else []
    meters = Meters(outer=(REREAD,), inner="journal") if meter else None
    if meters:
        # The fake's own inner calls stay "fake" (innermost is charged, and they are fake too).
        meters.wrap_object(fake, "fake", [m for m in public_methods(fake) if not m.startswith("_")])
        journal_methods = [m for m in public_methods(journal) if m not in ("_tell", "_tell_event", "_tell_run")]
        meters.wrap_object(journal, "journal", journal_methods)
        meters.wrap_object(journal, REREAD, [n for n in ("_tell_event", "_tell_run") if hasattr(journal, n)])
        meters.wrap_object(journal, "novamove", ["_tell"])       # the observers' loop
        observers = [meters.wrap(f"observer {type(o).__name__}", o) for o in observers]
    # Through api's own connection path (its retrying and fault-injecting wrappers are
    # novamove's cost on a real cloud too), the adapter's connect answering the fake.
    fake.close = lambda: None
    api.cloud_adapter.connect = lambda *a, **k: fake
    cpu0, wall0 = time.process_time(), time.monotonic()
    rep = api.drain(SOURCE, journal_path=journal, observers=observers, max_parallel=cap,
                    max_per_host=cap, poll_interval=poll)
    for o in observers:
        for close in ("flush", "close"):
            getattr(getattr(o, "__wrapped__", o), close, lambda: None)()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    if not rep.ok:
        sys.exit(f"{tag}: the drain failed: {rep.summary}")
    moved = sum(1 for s in fake.servers.values() if s.host != SOURCE)
    assert moved == n, (moved, n)
    out = {"tag": tag, "observed": observe, "cpu_s": cpu, "wall_s": wall, "moves": n,
           "ms_per_move": cpu / n * 1000, "requests": fake.requests.count,
           "requests_by_verb": dict(sorted(fake.requests.by_verb.items(), key=lambda kv: -kv[1]))}
    if meters:
        spent = meters.total()
        out["split_ms_per_move"] = {k: round(v / n * 1000, 2) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}
        out["novamove_ms_per_move"] = sum(v for k, v in spent.items() if k != "fake") / n * 1000
    return out


# ------------------------------------------------------------------------------ the client

def _server_body(i: int) -> dict:
    return {"id": f"s{i:04d}", "name": f"vm-{i}", "status": "ACTIVE", "OS-EXT-SRV-ATTR:host": SOURCE,
            "OS-EXT-SRV-ATTR:hypervisor_hostname": f"{SOURCE}.fake", "OS-EXT-STS:task_state": None,
            "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:power_state": 1, "OS-EXT-AZ:availability_zone": "nova",
            "flavor": {"vcpus": 1, "ram": 512, "disk": 1, "original_name": "m1.nano", "extra_specs": {}},
            "image": {"id": "img"}, "tags": [], "metadata": {}, "tenant_id": "p", "addresses": {},
            "updated": "2026-12-06T11:00:00Z", "created": "2026-12-06T10:00:00Z"}


def client_cost(n: int, remembered: bool, calls: int = 200) -> dict[str, float]:
    """CPU per call (ms) of the real adapter (openstacksdk, keystoneauth, requests; novamove's
    cloud/ code) on canned Nova answers through an in-process transport (no sockets): what each
    request of the drain costs on a real cloud besides the network. Listings hold n/2 rows (a
    drain's average). `remembered`: with connect()'s once-per-endpoint environment settings."""
    import requests
    from keystoneauth1 import session as ks_session
    from keystoneauth1 import token_endpoint
    from requests.adapters import BaseAdapter

    import openstack.connection

    from novamove.cloud import remember_environment_settings
    from novamove.cloud.adapter import Cloud
    nova_url = "http://nova.test/v2.1"
    half = max(1, n // 2)
    answers = {
        ("GET", ""): {"version": {"id": "v2.1", "status": "CURRENT", "version": "2.96", "min_version": "2.1",
                                  "links": [{"rel": "self", "href": f"{nova_url}/"}]}},
        ("GET", "/servers/s0001"): {"server": _server_body(1)},
        ("GET", "/servers/detail"): {"servers": [_server_body(i) for i in range(half)]},
        ("GET", "/os-services"): {"services": [
            {"id": f"0000000{i}-0000-4000-8000-000000000000", "host": h, "binary": "nova-compute", "zone": "nova",
             "status": "enabled", "state": "up", "disabled_reason": None, "forced_down": False,
             "updated_at": "2026-12-06T11:00:00.000000"} for i, h in enumerate(HOSTS)]},
        ("GET", "/os-migrations"): {"migrations": [
            {"id": i + 1, "uuid": f"m{i}", "instance_uuid": f"s{i:04d}", "status": "completed",
             "migration_type": "live-migration", "source_compute": SOURCE, "dest_compute": "c2",
             "source_node": "c1.fake", "dest_node": "c2.fake", "created_at": "2026-12-06T11:00:00.000000",
             "updated_at": "2026-12-06T11:00:05.000000", "memory_total_bytes": 1, "memory_processed_bytes": 1,
             "memory_remaining_bytes": 0, "disk_total_bytes": 0, "disk_processed_bytes": 0,
             "disk_remaining_bytes": 0, "project_id": "p", "user_id": "u"} for i in range(half)]},
    }

    class Transport(BaseAdapter):
        def send(self, request, **kwargs):
            path = request.url.split("/v2.1", 1)[1].split("?")[0].rstrip("/")
            body = answers.get((request.method, path))
            response = requests.Response()
            response.status_code = 200 if body is not None else 202
            response.url, response.request = request.url, request
            response.headers["x-openstack-request-id"] = "req-0"
            response.headers["Content-Type"] = "application/json"
            response._content = json.dumps(body).encode() if body is not None else b""
            return response

        def close(self):
            pass

    http = requests.Session()
    http.mount("http://", Transport())
    if remembered:
        remember_environment_settings(http)
    session = ks_session.Session(session=http, auth=token_endpoint.Token(nova_url, "token"))
    cloud = Cloud(openstack.connection.Connection(session=session, compute_endpoint_override=nova_url))
    verbs = {"get_server": lambda: cloud.get_server("s0001"),
             "live_migrate_server": lambda: cloud.live_migrate_server("s0001", "c2"),
             "list_compute_services": cloud.list_compute_services,
             "list_migrations_changed_since": lambda: cloud.list_migrations_changed_since("2026-12-06T10:00:00"),
             "list_servers_on_host": lambda: cloud.list_servers_on_host(SOURCE)}
    out = {}
    for name, call in verbs.items():
        call()
        t = time.process_time()
        for _ in range(calls):
            call()
        out[name] = (time.process_time() - t) / calls * 1000
    return out


def client_ms_per_move(by_verb: dict[str, int], cost: dict[str, float], moves: int) -> float:
    """The drain's requests (the fake counts them per verb) at the client's CPU per request;
    a verb not measured costs what a get_server does."""
    return sum(cost.get(verb, cost["get_server"]) * k for verb, k in by_verb.items()) / moves


def profile(tmp: Path, n: int, cap: int, poll: float, path: str) -> None:
    prof = cProfile.Profile(time.process_time)     # CPU, not wall (sleeps and fsync waits)
    prof.enable()
    one_drain(tmp, "profile", n, cap, poll, observe=True, meter=False)
    prof.disable()
    prof.dump_stats(path)
    s = io.StringIO()
    stats = pstats.Stats(prof, stream=s)
    stats.sort_stats("tottime").print_stats(r"^(?!.*fakenova)", 25)
    print(s.getvalue())


@contextlib.contextmanager
def _journal_database(choice: str | None, tmp: Path):
    """The --journal-url to use: as given, or a fresh database on a loopback server started
    for this run (and stopped after it)."""
    if choice not in ("mariadb", "postgresql"):
        yield choice
        return
    from journal_servers import Servers
    servers = Servers(tmp / "servers")
    servers.enter()
    try:
        yield servers.new_database(choice)
    finally:
        servers.leave()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, default=80)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cap", type=int, default=4)
    ap.add_argument("--poll", type=float, default=0.25, help="the drain's poll interval (s)")
    ap.add_argument("--profile", help="also profile one observed drain into this file")
    ap.add_argument("--observer-dir", help="write the stream and the textfile here (default: beside the journal)")
    ap.add_argument("--no-client", action="store_true", help="skip the client's per-request figures")
    ap.add_argument("--journal-url", metavar="URL|mariadb|postgresql",
                    help="journal on this database (mariadb/postgresql: the unit tests' loopback server)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.observer_dir:
        OBSERVER_DIR.append(args.observer_dir)
    load0 = os.getloadavg()[0]
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, _journal_database(args.journal_url, Path(tmp)) as url:
        if url:
            JOURNAL_URL.append(url)
        for r in range(args.rounds):
            for observe in (False, True):
                tag = f"r{r}-{'observed' if observe else 'bare'}"
                runs.append(one_drain(Path(tmp), tag, args.servers, args.cap, args.poll, observe, meter=True))
        if args.profile:
            profile(Path(tmp), args.servers, args.cap, args.poll, args.profile)
    clients = {"before": [], "remembered": []}
    for _ in range(0 if args.no_client else args.rounds):
        for name in clients:
            clients[name].append(client_cost(args.servers, remembered=name == "remembered"))
    client = {name: {verb: round(statistics.median(x[verb] for x in got), 3) for verb in got[0]}
              for name, got in clients.items() if got}
    load1 = os.getloadavg()[0]
    summary = {}
    for observe in (False, True):
        mine = [x for x in runs if x["observed"] == observe]
        name = "observed" if observe else "bare"
        summary[name] = {
            "novamove_ms_per_move_median": round(statistics.median(x["novamove_ms_per_move"] for x in mine), 2),
            "process_ms_per_move_median": round(statistics.median(x["ms_per_move"] for x in mine), 2),
            "split_ms_per_move_median": {k: round(statistics.median(x["split_ms_per_move"].get(k, 0.0) for x in mine), 2)
                                         for k in mine[0]["split_ms_per_move"]},
            "wall_s_median": round(statistics.median(x["wall_s"] for x in mine), 1),
            "requests_per_move": round(mine[0]["requests"] / args.servers, 2),
            "requests_by_verb": mine[0]["requests_by_verb"],
        }
        for cname, cost in client.items():
            summary[name][f"client_ms_per_move_{cname}"] = round(
                client_ms_per_move(mine[0]["requests_by_verb"], cost, args.servers), 2)
    journal_kind = (args.journal_url or "sqlite").split("://")[0]      # (never the URL: its password)
    result = {"journal": journal_kind, "servers": args.servers, "cap": args.cap, "poll": args.poll,
              "rounds": args.rounds,
              "load_1min": [round(load0, 2), round(load1, 2)], "goal_ms": GOAL_MS,
              "client_ms_per_call": client, **summary}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"drain of {args.servers} on the fake, journal {journal_kind}, cap {args.cap}, poll {args.poll} s, "
          f"{args.rounds} rounds, "
          f"load {load0:.2f} -> {load1:.2f}")
    for name in ("bare", "observed"):
        s = summary[name]
        print(f"{name:>9}: novamove {s['novamove_ms_per_move_median']:6.2f} ms/move CPU "
              f"(process {s['process_ms_per_move_median']:.2f}, wall {s['wall_s_median']} s, "
              f"{s['requests_per_move']} requests/move)")
        for k, v in s["split_ms_per_move_median"].items():
            print(f"{'':>11}{k:<34} {v:6.2f} ms/move")
        for cname in client:
            c = s[f"client_ms_per_move_{cname}"]
            print(f"{'':>11}+ the real client ({cname}): {c:.2f} ms/move -> "
                  f"{s['novamove_ms_per_move_median'] + c:.2f} ms/move in all")
    for cname, cost in client.items():
        print(f"client CPU per call ({cname}): " + ", ".join(f"{k} {v:.3f} ms" for k, v in cost.items()))
    extra = summary["observed"]["novamove_ms_per_move_median"] - summary["bare"]["novamove_ms_per_move_median"]
    print(f"observers cost {extra:+.2f} ms/move; goal <= {GOAL_MS} ms/move observed: "
          f"{'met' if summary['observed']['novamove_ms_per_move_median'] <= GOAL_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
