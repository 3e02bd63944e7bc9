"""A host out of service: its hook, the gate, the check, then its return (start, enable, move back)."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Optional

from novamove import errors
from novamove.engine.batch import drain as drains
from novamove.engine.commands import run_in_group
from novamove.engine.journal import process_token
from novamove.engine.campaign.intents import campaign_owns
from novamove.engine.tags import reason_run_id
from novamove.engine.campaign.common import DONE, FAILED
from novamove.engine.campaign.common import (EV_BACK, EV_CHECK, EV_ENABLE, EV_GATE, EV_HOOK, EV_REASON,
                                             EV_START, _parse, reason_text)
from novamove.engine.campaign.report import HostResult
from novamove.engine.campaign import common, gate as gates
from novamove.engine.poll import Backoff
from novamove.engine.campaign.report import _Out


class HostStages:
    """Campaign stages from the hook on (mixed into Campaign)."""

    def _start_hook(self, o: _Out) -> None:
        r = o.result
        if not self.o.hook:
            o.hook_started = o.hook_ended = self._nova_now()
            o.phase = "gate"
            o.gate_t0 = self.clock()
            return
        self.rundir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = self.rundir / f"{o.host}.hook.log"
        r.log = str(log)
        r.stage = "hook"
        o.hook_started = self._nova_now()
        o.log_fh = open(log, "ab")
        o.log_fh.write(f"# {o.hook_started.isoformat()} UTC (the cloud's clock): {self.o.hook}\n".encode())
        o.log_fh.flush()
        # The intent stays open while the hook runs: a run killed now leaves a hook whose end
        # nobody saw (reported on resume, rerun only when the operator says so).
        with self.journal.change(self.run_id, EV_HOOK, o.host, keep_open=True, command=self.o.hook,
                                 log=str(log), started=o.hook_started.isoformat()) as change:
            o.hook_event = change.id
            # Its own session: a Ctrl-C meant for novamove does not cut a reboot in half.
            o.proc = subprocess.Popen(self.o.hook, shell=True, env=self._env(o.host), stdout=o.log_fh,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
            # Its pid (= its process group) and token: a resume tells a hook still running from
            # one that ended, and never runs it twice at once.
            change.record(pid=o.proc.pid, process=process_token(o.proc.pid))
        o.hook_t0 = self.clock()
        self.changed = True
        self.say(f"{o.host}: hook started (pid {o.proc.pid}, log {log})")

    def _poll_hook(self, o: _Out) -> None:
        code = o.proc.poll()
        r = o.result
        if code is None:
            if self.clock() - o.hook_t0 > self.o.hook_timeout:
                try:
                    os.killpg(o.proc.pid, signal.SIGTERM)
                    o.proc.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(o.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    o.proc.wait()
                r.hook_exit = o.proc.returncode
                r.hook_seconds = self.clock() - o.hook_t0
                self.journal.failed(o.hook_event, exit=r.hook_exit, timeout=True)
                o.proc = None
                o.log_fh.close()
                o.phase = "failed"
                self._fail(o.host, r, "hook", f"hook timed out after {self.o.hook_timeout:.0f} s (killed)",
                           log=r.log)
            return
        o.hook_ended = self._nova_now()
        r.hook_exit = code
        r.hook_seconds = self.clock() - o.hook_t0
        o.log_fh.close()
        o.proc = None
        if code == 0:
            self.journal.done(o.hook_event, exit=0, ended=o.hook_ended.isoformat())
            self.say(f"{o.host}: hook done in {r.hook_seconds:.0f} s")
            o.phase = "gate"
            o.gate_t0 = self.clock()
            r.stage = "gate"
        else:
            self.journal.failed(o.hook_event, exit=code, ended=o.hook_ended.isoformat())
            o.phase = "failed"
            self._fail(o.host, r, "hook", f"hook exited {code} after {r.hook_seconds:.0f} s", log=r.log)
        self.on_update(self)

    def _advance(self, o: _Out) -> bool:
        r = o.result
        if o.phase == "gate":
            if o.gate is None:
                started = o.hook_started or self._nova_now()
                o.gate = gates.GateState(gates.default_gate(self.o.gate, self.o.hook), started,
                                         o.hook_ended or started)
            # The gate reads the cloud at intervals backing off while nothing changes (POLL,
            # x1.5, up to GATE_POLL_MAX), and at the first interval again once the compute is
            # seen going down or coming back; an uptime that allows a restart it cannot prove
            # yet is read again when it can (gate.py next_read_at), not every few seconds.
            if self.clock() < o.gate_next:
                return False
            if o.gate_waits is None:
                o.gate_waits = Backoff(common.POLL, common.GATE_POLL_MAX)
            svc = self._service(o.host, now=True)
            up = svc.up and not svc.forced_down
            if o.gate_up is not None and o.gate_up != up:
                o.gate_waits.reset()
            o.gate_up = up
            reported = _parse(svc.updated_at)
            wants_uptime = o.gate.kind == gates.RESTART and up and reported is not None and reported > o.gate.hook_ended
            facts = gates.GateFacts(up, reported, self._nova_now(), self._uptime(o.host) if wants_uptime else None)
            passed, why = gates.judge(o.gate, facts)
            if passed:
                r.gate = why
                self.journal.note(self.run_id, EV_GATE, o.host, ok=True, gate=o.gate.kind, why=why,
                                  updated_at=svc.updated_at, since=o.gate.hook_started.isoformat())
                self.say(f"{o.host}: gate passed ({why})")
                o.phase = "check" if self.o.check else "return"
                return True
            wait = o.gate_waits.next()
            proof_at = gates.next_read_at(o.gate, facts)
            if proof_at is not None and facts.now is not None:
                # The uptime allows a restart it cannot prove yet: read when it can.
                wait = max(common.POLL, min((proof_at - facts.now).total_seconds(),
                                            o.gate_t0 + self.o.gate_timeout - self.clock()))
            o.gate_next = self.clock() + wait
            if self.clock() - o.gate_t0 > self.o.gate_timeout:
                r.gate = f"{svc.state}{' forced down' if svc.forced_down else ''}, last report {svc.updated_at}: {why}"
                self.journal.note(self.run_id, EV_GATE, o.host, ok=False, gate=o.gate.kind, why=why,
                                  state=svc.state, forced_down=svc.forced_down, updated_at=svc.updated_at)
                o.phase = "failed"
                self._fail(o.host, r, "gate", f"{o.gate.kind} gate not passed within {self.o.gate_timeout:.0f} s "
                                              f"after the hook ({r.gate})")
                return True
            return False
        if o.phase == "check":
            r.stage = "check"
            self.rundir.mkdir(parents=True, exist_ok=True, mode=0o700)
            log = self.rundir / f"{o.host}.check.log"
            with open(log, "ab") as fh:
                # Its own process group, killed whole on timeout (not only the shell).
                code = run_in_group(self.o.check, self._env(o.host), self.o.check_timeout,
                                       stdout=fh, stderr=subprocess.STDOUT)
                r.check_exit = -1 if code is None else code
            self.journal.note(self.run_id, EV_CHECK, o.host, exit=r.check_exit, log=str(log))
            if r.check_exit != 0:
                o.phase = "failed"
                self._fail(o.host, r, "check", f"--check exited {r.check_exit}", log=str(log))
                return True
            o.phase = "return"
            return True
        if o.phase == "return":
            self._return(o)
            return True
        return False

    def _return(self, o: _Out) -> None:
        r = o.result
        host = o.host
        r.stage = "return"
        for sid in o.stopped_ids:
            try:
                s = self.cloud.get_server(sid)
                if s.status == "SHUTOFF":
                    with self.journal.change(self.run_id, EV_START, sid, host=host, name=s.name):
                        self.cloud.start_server(sid)
                    self._wait_status(sid, "ACTIVE")
                    self.say(f"{host}: {s.name} started again")
            except errors.NotFound:
                # Deleted by its owner while its host was serviced: nothing to start.
                self.say(f"{host}: server {sid} is gone (deleted meanwhile); nothing to start")
            for g, members in self.disrupted.items():
                members.discard(sid)
        svc = self._service(host)
        if not svc.enabled:
            # The campaign's tag, or the one its drain of this host wrote over it (a drain holds
            # its host under its own run id and lease while it works).
            if campaign_owns(svc.disabled_reason, self.run_id):
                with self.journal.change(self.run_id, EV_ENABLE, host, service_id=svc.id,
                                         reason=svc.disabled_reason):
                    self.cloud.enable_service(svc)
                self.say(f"{host}: enabled")
            else:
                del self.out[host]
                self._note_host(host, FAILED, f"left disabled: someone else changed its reason meanwhile "
                                               f"({svc.disabled_reason})")
                return
        del self.out[host]
        if self.o.move_back:
            r.stage = "move-back"
            back = drains.undrain(self.cloud, host, journal=self.journal, move_back=True,
                                  max_parallel=min(self.o.max_parallel, self.o.group_budget)
                                  if self.o.group_budget < self.o.max_parallel else self.o.max_parallel,
                                  max_per_host=self.o.max_per_host, on_interrupt=self.on_interrupt,
                                  poll_interval=self.o.poll_interval, step_timeout=self.o.step_timeout,
                                  progress=lambda line: self.say(f"{host}: {line}"), sleep=self._tick_sleep,
                                  on_stall=self.o.on_stall)
            r.moved_back = back.count(drains.MOVED)
            self.journal.note(self.run_id, EV_BACK, host, undrain_run=back.run_id, ok=back.ok,
                              summary=back.summary)
            if not back.ok:
                r.seconds = self.clock() - o.t0
                self._note_host(host, FAILED, f"back in service, but the move-back did not finish ({back.summary})")
                return
        r.stage = "done"
        r.seconds = self.clock() - o.t0
        self._note_host(host, DONE, f"serviced in {r.seconds:.0f} s")

    def _take_back_tag(self, host: str, drain_run: Optional[str]) -> None:
        """The drain held the host under its own run id (and lease) while it worked; the host is
        the campaign's again for its hook, gate and return. The drain hands it back itself
        (its last write leaves the campaign's tag, and Nova's answer to that write says so):
        then nothing is read or written here."""
        known = self.view.service_of(host)
        if known is not None and not known.enabled and reason_run_id(known.disabled_reason) == self.run_id:
            return
        svc = self._service(host)
        if svc.enabled or reason_run_id(svc.disabled_reason) != drain_run or not drain_run:
            return
        reason = reason_text(self.run_id, self.o.reason or "draining", self._lease_until())
        with self.journal.change(self.run_id, EV_REASON, host, service_id=svc.id, reason=reason):
            self.cloud.disable_service(svc, reason)
        self._leased_at = self.clock()

    def _give_back(self, host: str, r: HostResult, outcome: str, why: str) -> None:
        """An interrupted host that did not reach its hook goes back into service."""
        svc = self._service(host)
        if not svc.enabled and campaign_owns(svc.disabled_reason, self.run_id):
            with self.journal.change(self.run_id, EV_ENABLE, host, service_id=svc.id, reason=svc.disabled_reason):
                self.cloud.enable_service(svc)
            why += "; enabled again (servers moved off it stay where they are)"
        self._note_host(host, outcome, why)

    def _fail(self, host: str, r: HostResult, stage: str, why: str, log: Optional[str] = None) -> None:
        """The host stays disabled, its reason saying why; counted for the stop-loss. The reason
        is seen by every admin of the cloud: it names no local path (the log is in the journal
        and the report only)."""
        r.stage = stage
        try:
            svc = self._service(host)
            if not svc.enabled and campaign_owns(svc.disabled_reason, self.run_id):
                reason = reason_text(self.run_id, f"FAILED {stage}: {why[:120]}; novamove maintain --resume "
                                                  f"{self.run_id}")
                with self.journal.change(self.run_id, EV_REASON, host, service_id=svc.id, reason=reason):
                    self.cloud.disable_service(svc, reason)
        except errors.NovamoveError as exc:
            why += f" (its disabled reason could not be updated: {exc})"
        self.out.pop(host, None)
        self.failed_out.add(host)
        if log:
            why += f" (log {log})"
        if r.stopped:
            why += f"; powered-off server(s) left off: {', '.join(r.stopped)}"
        self._note_host(host, FAILED, why)


