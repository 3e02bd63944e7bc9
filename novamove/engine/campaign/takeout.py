"""Taking hosts out: disable with the campaign's tag, drain them (together), power off their stop-tagged
servers, start their hooks."""

from __future__ import annotations

from datetime import timezone
from typing import Any

from novamove import errors
from novamove.engine import events, tags
from novamove.engine.poll import poll_until
from novamove.engine.batch import drain as drains
from novamove.model import COLD, LIVE
from novamove.engine.campaign.intents import SKIP, STOP, campaign_owns
from novamove.engine.campaign import common
from novamove.engine.campaign.common import INTERRUPTED, SKIPPED
from novamove.engine.campaign.common import (EV_DISABLE, EV_DRAIN, EV_STOP, POWER_TIMEOUT, _parse,
                                             reason_text)
from novamove.engine.campaign.report import _Out


class TakeOut:
    """Campaign stages before the hook (mixed into Campaign)."""

    def _take_out(self, batch: list[tuple[str, dict]]) -> None:
        """Take the hosts of `batch` (admitted together, runner.py `_joiners`) out: disable
        each, drain them in one drain, then per host power off what stays and start its hook."""
        t0 = self.clock()
        caps_of = dict(batch)
        for _, caps in batch:
            self.servers_total += caps.get("moves", 0)
        self.current = [h for h, _ in batch]
        self.on_update(self)
        try:
            draining = self._disable_all(self.current)
            self.current = list(draining)     # each host leaves it as its share is judged
            if not draining:
                return
            rep = self._drain(draining, caps_of, batch[-1][1])
            for host in draining:
                self._after_drain(host, rep, caps_of[host], t0)
        finally:
            self.current = []

    def _disable_all(self, hosts: list[str]) -> list[str]:
        """1. Disable each host, tagged (ours already: a resumed run). Every host is checked
        before any is disabled: one held by another run refuses them all, nothing changed.
        Returns the hosts to drain (not one someone else disabled meanwhile)."""
        now = self._nova_now().replace(tzinfo=timezone.utc)
        services = {}
        for host in hosts:
            svc = services[host] = self._service(host)
            tags.refuse_if_drained_elsewhere(host, svc.disabled_reason, {self.run_id}, "maintain",
                                             drains._dead_drains(self.journal), now=now)
        draining, disabled = [], False
        for host in hosts:
            svc = services[host]
            if svc.enabled:
                reason = reason_text(self.run_id, self.o.reason or "draining", self._lease_until())
                with self.journal.change(self.run_id, EV_DISABLE, host, service_id=svc.id, reason=reason):
                    self.cloud.disable_service(svc, reason)
                self.changed = disabled = True
                self.say(f"{host}: disabled ({reason})")
            elif not campaign_owns(svc.disabled_reason, self.run_id):
                self._note_host(host, SKIPPED, f"disabled by someone else meanwhile ({svc.disabled_reason})")
                continue
            self.results[host].stage = "drain"
            draining.append(host)
        if disabled and draining:
            # The last writer wins: the drain reads the tag back (its first service listing,
            # after this pause, in which another run's write would land) and, finding ours,
            # works under the campaign's lease without a tag of its own (claim.py).
            self._tick_sleep(drains.READ_BACK_PAUSE)
        return draining

    def _drain(self, hosts: list[str], caps_of: dict, last: dict) -> Any:
        """2. One drain of `hosts`: honest; stop/skip servers stay, live/cold honoured. Its
        targets are the last admitted host's (judged with all of them out); its parallelism
        the smallest any host's server groups allow."""
        intents = {sid: i for h in hosts for sid, i in caps_of[h].get("intents", {}).items()}
        keep = {sid: f"maintenance intent {i}" for sid, i in intents.items() if i in (STOP, SKIP)}
        modes = {sid: i for sid, i in intents.items() if i in (LIVE, COLD)}
        label = ", ".join(hosts)

        def drain_say(line: str) -> None:
            if ": moved (" in line:
                self.servers_done += 1
                self.on_update(self)
            self.say(f"{label}: {line}")
        return drains.drain(self.cloud, hosts[0] if len(hosts) == 1 else hosts, journal=self.journal,
                            targets=last.get("targets", ()), reason=f"maintain {self.run_id}",
                            max_parallel=min(caps_of[h].get("max_parallel", self.o.max_parallel) for h in hosts),
                            max_per_host=self.o.max_per_host, on_interrupt=self.on_interrupt,
                            poll_interval=self.o.poll_interval, step_timeout=self.o.step_timeout,
                            allow_unmovable=self.o.allow_unmovable, progress=drain_say, keep=keep,
                            modes=modes, sleep=self._tick_sleep, on_behalf_of=self.run_id,
                            hand_back=lambda: reason_text(self.run_id, self.o.reason or "draining",
                                                          self._lease_until()),
                            on_stall=self.o.on_stall, durations=self.move_durations)

    def _after_drain(self, host: str, rep: Any, caps: dict, t0: float) -> None:
        """This host's share of the drain judged (its own moves and what is left on it), then
        3. its stop-tagged servers powered off and 4. its hook started."""
        r = self.results[host]
        intents: dict[str, str] = caps.get("intents", {})
        prior = self.prior.get(host, {})
        mine = [x for x in rep.results if x.source == host]
        left = [x for x in rep.left if x.get("host") == host]
        r.drain_run = rep.run_id
        self._take_back_tag(host, rep.run_id)
        r.moved += sum(x.result == drains.MOVED for x in mine)
        r.left = [x for x in left if not x.get("accepted")]
        self.changed = self.changed or rep.changed
        ok = (not rep.interrupted and not r.left
              and not any(x.result in (drains.FAILED, drains.IN_FLIGHT) or x.result in events.UNFINISHED
                          for x in mine))
        self.journal.note(self.run_id, EV_DRAIN, host, drain_run=rep.run_id, ok=ok, summary=rep.summary, left=left)
        self.current.remove(host)
        if rep.interrupted:
            self.request_stop("interrupted")
            self._give_back(host, r, INTERRUPTED, "drain interrupted before the host was empty")
            return
        if not ok:
            names = ", ".join(x["name"] for x in r.left[:3])
            self._fail(host, r, "drain", f"drain did not empty it ({rep.summary})"
                       + (f"; left: {names}" if names else ""))
            return
        # 3. power off the servers that stay (stop intent), group budget counted
        o = _Out(host, r, t0)
        # Only servers tagged stop when the stage was planned stay (the drain moved any
        # other): with none, there is nothing to look for.
        on_host = self.cloud.list_servers_on_host(host) if STOP in intents.values() else []
        # Group membership from the groups' own member lists: a server shows its groups only
        # from compute API 2.71 on (before, `server_groups` is empty).
        member_of: dict[str, set[str]] = {}
        if any(intents.get(s.id) == STOP for s in on_host):
            for g in self.cloud.list_server_groups():
                for m in g.members:
                    member_of.setdefault(m, set()).add(g.id)
        for s in on_host:
            if intents.get(s.id) == STOP:
                for g in set(s.server_groups) | member_of.get(s.id, set()):
                    self.disrupted.setdefault(g, set()).add(s.id)
                self.peak_group = max([self.peak_group] + [len(v) for v in self.disrupted.values()])
                if s.status == "SHUTOFF":
                    if not any(x.get("id") == s.id for x in prior.get("stopped", [])):
                        continue           # was off already: not ours to start again
                    o.stopped_ids.append(s.id)      # this run powered it off before a kill
                    r.stopped.append(s.name)
                else:
                    o.stopped_ids.append(s.id)
                    r.stopped.append(s.name)
                    r.stage = "stop"
                    try:
                        self._power_off(s, host)
                        self._wait_status(s.id, "SHUTOFF")
                    except errors.NotFound:
                        # Deleted by its owner meanwhile: nothing to power off (or on later).
                        o.stopped_ids.remove(s.id)
                        r.stopped.remove(s.name)
                        self.say(f"{host}: {s.name} is gone (deleted meanwhile)")
                    except (errors.PreconditionFailed, errors.Timeout) as exc:
                        # Nova refused the stop (409: a task in progress, locked...) or it
                        # never took: this host's failure, with Nova's reason; the others go on.
                        if s.status != "SHUTOFF":
                            o.stopped_ids.remove(s.id)
                            r.stopped.remove(s.name)
                        self._fail(host, r, "stop", f"{s.name} could not be powered off: {exc}")
                        return
                    self.changed = True
                    self.say(f"{host}: {s.name} powered off for the hook")
        self.out[host] = o
        self._note_peak()
        # 4. the hook (skipped when an earlier part of the run saw it through)
        if prior.get("hook") == "done" and not self.rerun_hooks:
            o.hook_started = _parse(prior.get("hook_started"))
            o.hook_ended = _parse(prior.get("hook_ended")) or o.hook_started
            r.hook_exit = 0
            o.phase = "gate"
            o.gate_t0 = self.clock()
            self.say(f"{host}: hook already done by this run; gating")
        elif prior.get("hook") == "running" and self.hook_done and not self.rerun_hooks:
            o.hook_started = _parse(prior.get("hook_started"))
            o.hook_ended = o.hook_started
            o.phase = "gate"
            o.gate_t0 = self.clock()
            self.say(f"{host}: hook of the killed run taken as done (--hook-done); gating")
        else:
            self._start_hook(o)
        self.on_update(self)

    def _power_off(self, s, host: str) -> None:
        """Stop a server for the hook, journaled. An ambiguous answer (5xx, timeout, lost
        connection) may hide a stop Nova took: the server is read back. Powering off or off,
        it is ours (the change done, so that it is started again after the hook, also by a
        resumed run); still running, Nova did not take it (PreconditionFailed: this host
        fails, `--resume` goes on); unreadable, the change stays an open intent, which a resume
        counts as ours, as it does after a kill."""
        change = self.journal.change(self.run_id, EV_STOP, s.id, host=host, name=s.name)
        try:
            with change:
                self.cloud.stop_server(s.id)
        except errors.NovamoveError as exc:
            if not errors.is_ambiguous(exc):
                raise
            try:
                now = self.cloud.get_server(s.id)
            except errors.NotFound:
                raise
            except errors.NovamoveError:
                self.journal._mark(change.id, "intent", {"read_back": "unknown"})
                raise exc
            if now.status == "SHUTOFF" or now.task_state == "powering-off":
                self.journal._mark(change.id, "done", {"read_back": f"{now.status} {now.task_state or ''}".strip()})
                self.say(f"{host}: {s.name}: {exc}; read back: Nova took the stop")
                return
            raise errors.PreconditionFailed(f"{exc} (read back: still {now.status})") from exc

    def _wait_status(self, server_id: str, status: str) -> None:
        s, _ = poll_until(lambda: self.cloud.get_server(server_id),
                          lambda s: (s.status == status and not s.task_state) or s.status == "ERROR",
                          timeout=POWER_TIMEOUT, interval=common.POLL, clock=self.clock, sleep=self._tick_sleep,
                          max_interval=common.GATE_POLL_MAX)
        if s.status != status or s.task_state:
            raise errors.Timeout(f"{s.name} did not become {status} (it is {s.status}"
                                 f"{', ' + s.task_state if s.task_state else ''})")

