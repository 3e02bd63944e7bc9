"""The optimised campaign plan (heaps, incremental usage, per-flavor needs, a candidate subset
per stage) against a straightforward reference on small random clouds: full scans, plain dicts,
no heaps, no caches. Both must give the same stages, moves, unplaced servers and capacity.

The reference follows the documented rules of novamove.engine.campaign.simulate and
novamove.planner: per stage, destinations are first the receiving hosts the campaign will not
empty again, the `servers + 32` with the most free RAM per zone (plus the hosts of group mates),
then the same without that restriction, then the whole cloud, each wider try only when a
server finds no room; placement takes the host with the most free RAM (then vCPU, then name)
that fits and passes the hard server-group policies. Per-host decisions (host_plan, order,
intents) are shared: they are not what is optimised.
"""

from __future__ import annotations

import gc
import random

import pytest

from novamove.model import COLD, LIVE
from novamove.engine.campaign.intents import INTENT_KEY, SKIP, STOP, intents_of, order_hosts
from novamove.engine.campaign.planning import host_plan
from novamove.engine.campaign.simulate import plan_campaign
from novamove.model import Flavor, Host, Resources, Server, ServerGroup, Service
from novamove.planner import HARD_AFFINITY, HARD_ANTI_AFFINITY, CloudState, move_mode

FLAVORS = [Flavor("tiny", 1, 512, 1), Flavor("small", 1, 2048, 20), Flavor("medium", 2, 4096, 40),
           Flavor("large", 4, 8192, 80, ephemeral=10), Flavor("pinned", 2, 2048, 20, dedicated_cpus=True)]
STATUSES = ["ACTIVE"] * 8 + ["SHUTOFF", "PAUSED", "ERROR"]
FIELDS = ("vcpus", "memory_mb", "disk_gb", "pcpus")


def random_cloud(seed: int, hosts_range: tuple[int, int] = (8, 16)) -> CloudState:
    """Hosts in two zones (some disabled or down, some with PCPU), servers of five flavors (one
    pinned) in hard/soft groups or alone, some volume-backed, some tagged with an intent."""
    rnd = random.Random(seed)
    hosts = []
    for i in range(rnd.randint(*hosts_range)):
        name = f"h{i:02d}"
        r = rnd.random()
        svc = Service(id=name, host=name, zone=f"az{i % 2}", status="disabled" if r < 0.08 else "enabled",
                      state="down" if 0.08 <= r < 0.12 else "up")
        hosts.append(Host(name, svc, f"{name}.node", Resources(rnd.choice([8, 16, 24]), rnd.choice([16384, 32768]),
                                                               400, rnd.choice([0, 0, 4, 8]))))
    free = {h.name: [getattr(h.capacity, f) for f in FIELDS] for h in hosts}

    def fits_on(name: str, need: Resources) -> bool:
        return all(getattr(need, f) <= free[name][i] for i, f in enumerate(FIELDS))

    def put(name: str, need: Resources) -> None:
        for i, f in enumerate(FIELDS):
            free[name][i] -= getattr(need, f)

    servers: list[Server] = []
    groups: list[ServerGroup] = []
    for _ in range(rnd.randint(20, 70)):
        kind = rnd.random()
        members = 3 if kind < 0.1 else 2 if kind < 0.18 else 1
        gid = policy = None
        if members > 1:
            gid = f"g{len(groups)}"
            policy = HARD_ANTI_AFFINITY if members == 3 else rnd.choice([HARD_AFFINITY, "soft-anti-affinity"])
        flavor = rnd.choice(FLAVORS)
        vb = rnd.random() < 0.2
        need = flavor.resources_for(vb)
        if policy == HARD_AFFINITY and rnd.random() < 0.5:
            ok = [h.name for h in hosts if fits_on(h.name, need + need)]
            placed = [rnd.choice(ok)] * 2 if ok else []
        elif policy == HARD_AFFINITY:
            # Members on two hosts of a zone (a group older than its policy): each can join the other.
            zone = rnd.choice(["az0", "az1"])
            ok = [h.name for h in hosts if h.zone == zone and fits_on(h.name, need)]
            placed = rnd.sample(ok, 2) if len(ok) >= 2 else []
        else:
            ok = [h.name for h in hosts if fits_on(h.name, need)]
            placed = rnd.sample(ok, members) if len(ok) >= members else []
        if not placed:
            continue
        ids = [f"s{len(servers) + k:03d}" for k in range(members)]
        if gid:
            groups.append(ServerGroup(gid, gid, policy, tuple(ids)))
        for sid, h in zip(ids, placed):
            put(h, need)
            tags = ()
            # Intents only on servers outside groups (a stop/skip group mate is another matter).
            if gid is None and rnd.random() < 0.15:
                tags = (f"{INTENT_KEY}={rnd.choice([LIVE, COLD, STOP, SKIP])}",)
            servers.append(Server(id=sid, name=f"vm-{sid}", status=rnd.choice(STATUSES), host=h, flavor=flavor,
                                  server_groups=(gid,) if gid else (), volume_backed=vb, tags=tags))
    hosts = [Host(h.name, h.service, h.hypervisor_hostname, h.capacity,
                  Resources(*(getattr(h.capacity, f) - free[h.name][i] for i, f in enumerate(FIELDS))))
             for h in hosts]
    return CloudState(hosts, servers, groups)


# ------------------------------------------------------------------------ the reference

def _need(s: Server) -> Resources:
    return s.flavor.resources_for(s.volume_backed)


def _fits(free: list[float], need: Resources) -> bool:
    return all(getattr(need, f) <= free[i] for i, f in enumerate(FIELDS))


def ref_drain(state: CloudState, free: dict[str, list[float]], where: dict[str, str],
              view_hosts: set[str], view_servers: set[str], sources: list[str]) -> tuple[dict, bool]:
    """{server id: dest or None} for the movable servers of `sources`, and whether a failure
    calls for a wider choice of hosts. Only `view_hosts` / `view_servers` are seen."""
    zone = {h.name: h.zone for h in state.hosts}
    eligible = [h.name for h in state.hosts if h.name in view_hosts and h.name not in sources
                and h.service.enabled and h.service.up]
    groups = {g.id: g for g in state.groups if g.policy in (HARD_AFFINITY, HARD_ANTI_AFFINITY)}
    on_src = [s for s in state.servers if s.id in view_servers and where[s.id] in sources]
    hard = {s.id: sorted({g for g in s.server_groups if g in groups}
                         | {g.id for g in groups.values() if s.id in g.members}) for s in on_src}
    group_hosts = {gid: {where[m] for m in groups[gid].members if m in view_servers and where[m] not in sources}
                   for gids in hard.values() for gid in gids}
    units: dict[object, dict] = {}
    for s in on_src:
        if move_mode(s, "auto")[1]:
            continue
        aff = next((g for g in hard[s.id] if groups[g].policy == HARD_AFFINITY), None)
        anti = [g for g in hard[s.id] if groups[g].policy == HARD_ANTI_AFFINITY]
        u = units.setdefault(aff if aff else s.id, {"servers": [], "need": Resources(), "anti": [], "aff": aff,
                                                    "zone": zone[where[s.id]]})
        u["servers"].append(s)
        u["need"] = u["need"] + _need(s)
        u["anti"] += [g for g in anti if g not in u["anti"]]
    order = sorted(units.values(), key=lambda u: (u["aff"] is None, -u["need"].memory_mb, -u["need"].vcpus,
                                                  -u["need"].disk_gb, u["servers"][0].name, u["servers"][0].id))
    out, wider = {}, False
    for u in order:
        banned = set().union(*(group_hosts[g] for g in u["anti"]))
        pool = group_hosts[u["aff"]] if u["aff"] else eligible
        ok = [h for h in pool if h in eligible and zone[h] == u["zone"] and h not in banned
              and _fits(free[h], u["need"])]
        dest = min(ok, key=lambda h: (-free[h][1], -free[h][0], h)) if ok else None
        for s in u["servers"]:
            out[s.id] = dest
        if dest is None:
            # Affinity failures are not cured by more hosts, unless there was none in the zone.
            wider = wider or not u["aff"] or not any(zone[h] == u["zone"] for h in eligible)
            continue
        for i, f in enumerate(FIELDS):
            free[dest][i] -= getattr(u["need"], f)
        for g in u["anti"] + ([u["aff"]] if u["aff"] else []):
            group_hosts[g].add(dest)
    return out, wider


def ref_campaign(state: CloudState, max_hosts: int, move_back: bool) -> list[dict]:
    hosts = {h.name: h for h in state.hosts}
    receiving = [h.name for h in state.hosts if h.service.enabled and h.service.up]
    free = {h.name: [getattr(h.free, f) for f in FIELDS] for h in state.hosts}
    where = {s.id: s.host for s in state.servers}
    by_id = {s.id: s for s in state.servers}
    intents, _ = intents_of(state.servers)
    names = [h.name for h in state.hosts]
    counts = {n: sum(where[s] == n for s in where) for n in names}
    serviced = []
    for n in order_hosts(names, counts):
        hp = host_plan(n, [s for s in state.servers if where[s.id] == n], intents, allow_skip=True,
                       allow_unmovable=True)
        svc = hosts[n].service
        if svc.enabled and (svc.up or not hp.moves):
            serviced.append(n)
    leave = {sid for sid, i in intents.items() if i in (STOP, SKIP)}
    groups_of = {}
    for g in state.groups:
        for m in g.members:
            groups_of.setdefault(m, []).append(g)
    stages = []
    for k in range(0, len(serviced), max_hosts):
        group, later = serviced[k:k + max_hosts], set(serviced[k + max_hosts:])
        mine = {sid for sid in where if where[sid] in group and sid not in leave}
        view_servers = mine | {m for sid in mine for g in groups_of.get(sid, ()) for m in g.members if m in where}
        per_zone: dict = {}
        for sid in mine:
            per_zone[hosts[where[sid]].zone] = per_zone.get(hosts[where[sid]].zone, 0) + 1
        tries = [set(group) | later] if later else []
        tries.append(set(group))
        for exclude in tries + [None]:
            if exclude is None:
                view = set(names)
            else:
                view = set(group) | {where[s] for s in view_servers}
                for z, n in per_zone.items():
                    in_zone = sorted((h for h in receiving if hosts[h].zone == z and h not in exclude),
                                     key=lambda h: (-free[h][1], h))
                    view.update(in_zone[:n + 32])
            trial = {h: list(v) for h, v in free.items()}
            dests, wider = ref_drain(state, trial, where, view, view_servers, group)
            if not wider:
                break
        moves, unplaced = {}, set()
        for sid, dest in dests.items():
            intent = intents.get(sid)
            mode = intent if intent in (LIVE, COLD) else "auto"
            why = move_mode(by_id[sid], mode)[1]
            if dest is None:
                if why is None:
                    unplaced.add(sid)
            elif why is None:
                moves[sid] = (where[sid], dest, intent if intent in (LIVE, COLD) else move_mode(by_id[sid], "auto")[0])
        eligible = [h for h in receiving if h not in group]
        free_total = tuple(sum(max(free[h][i], 0) for h in eligible) for i in range(4))
        for sid, (src, dest, _) in moves.items():
            for i, f in enumerate(FIELDS):
                free[src][i] += getattr(_need(by_id[sid]), f)
                free[dest][i] -= getattr(_need(by_id[sid]), f)
            where[sid] = dest
        free_after = {moves[sid][1]: tuple(free[moves[sid][1]]) for sid in moves}
        if move_back:
            for sid, (src, dest, _) in moves.items():
                for i, f in enumerate(FIELDS):
                    free[dest][i] += getattr(_need(by_id[sid]), f)
                    free[src][i] -= getattr(_need(by_id[sid]), f)
                where[sid] = src
        stages.append({"hosts": group, "moves": moves, "unplaced": unplaced, "ok": not unplaced,
                       "eligible": len(eligible), "free_total": free_total, "free_after": free_after})
    return stages


def _projection(plan) -> list[dict]:
    return [{"hosts": st.hosts, "moves": {m.server_id: (m.source, m.dest, m.mode) for m in st.moves},
             "unplaced": {u.server_id for u in st.unplaced}, "ok": st.ok, "eligible": st.eligible,
             "free_total": tuple(getattr(st.free_total, f) for f in FIELDS),
             "free_after": {h: tuple(getattr(r, f) for f in FIELDS) for h, r in st.free_after.items()}}
            for st in plan.stages]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("max_hosts,move_back", [(1, False), (2, False), (3, True)])
def test_campaign_plan_matches_straightforward_reference(seed, max_hosts, move_back):
    state = random_cloud(seed)
    plan = plan_campaign(state, [h.name for h in state.hosts], max_hosts=max_hosts, allow_skip=True,
                         allow_unmovable=True, move_back=move_back)
    assert _projection(plan) == ref_campaign(state, max_hosts, move_back)


@pytest.mark.parametrize("seed", range(4))
def test_campaign_plan_matches_reference_when_candidates_are_a_subset(seed):
    """60-80 hosts: more than the `servers + 32` candidates per zone a stage looks at first."""
    state = random_cloud(100 + seed, hosts_range=(60, 80))
    plan = plan_campaign(state, [h.name for h in state.hosts], max_hosts=1, allow_skip=True,
                         allow_unmovable=True)
    assert _projection(plan) == ref_campaign(state, 1, False)


def test_random_clouds_exercise_the_hard_cases():
    """The seeds above cover what the optimisations could get wrong."""
    seen = {"unplaced": False, "pcpu": False, "volume": False, "anti": False, "aff": False, "tags": set()}
    for seed in range(12):
        state = random_cloud(seed)
        plan = plan_campaign(state, [h.name for h in state.hosts], max_hosts=2, allow_skip=True,
                             allow_unmovable=True)
        seen["unplaced"] |= any(st.unplaced for st in plan.stages)
        moved = {m.server_id for st in plan.stages for m in st.moves}
        by_id = {s.id: s for s in state.servers}
        seen["pcpu"] |= any(by_id[s].flavor.dedicated_cpus for s in moved)
        seen["volume"] |= any(by_id[s].volume_backed for s in moved)
        policies = {g.policy for g in state.groups if set(g.members) & moved}
        seen["anti"] |= HARD_ANTI_AFFINITY in policies
        seen["aff"] |= HARD_AFFINITY in policies
        seen["tags"] |= set(plan.intents.values())
    assert seen == {"unplaced": True, "pcpu": True, "volume": True, "anti": True, "aff": True,
                    "tags": {LIVE, COLD, STOP, SKIP}}


def test_plan_campaign_leaves_the_garbage_collector_as_it_found_it():
    state = random_cloud(0)
    assert gc.isenabled()
    plan_campaign(state, [h.name for h in state.hosts], max_hosts=2)
    assert gc.isenabled()
    gc.disable()
    try:
        plan_campaign(state, [h.name for h in state.hosts], max_hosts=2)
        assert not gc.isenabled()
    finally:
        gc.enable()
