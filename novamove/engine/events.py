"""Every journal event kind, run status and step outcome novamove writes, named once.

The kinds are the journal's vocabulary and NOVAMOVE_FAULT's (`NOVAMOVE_FAULT=server.migrate:error`
fails the change journaled under that kind): they are stable names, never renamed; new kinds
are added beside them. Engine modules import them from here; none spells one itself.
"""

from __future__ import annotations

# ---------------------------------------------------------------- run statuses (runs.status)
RUN_RUNNING = "running"
RUN_OK = "ok"
RUN_FAILED = "failed"
RUN_INTERRUPTED = "interrupted"
RUN_RECOVERED = "recovered"       # finished by `recover` or by a later run that continued it
RUN_NOOP = "noop"
RUN_CHECKED = "checked"
FINAL = frozenset({RUN_OK, RUN_FAILED, RUN_NOOP, RUN_RECOVERED, RUN_CHECKED})

# ---------------------------------------------------------------- verbs (runs.verb)
VERB_DRAIN = "drain"
VERB_UNDRAIN = "undrain"
VERB_MAINTAIN = "maintain"
VERB_EVACUATE = "evacuate"
VERB_UNFENCE = "unfence"
VERB_RECOVER = "recover"
VERB_WAIT = "wait"
VERB_DOCTOR = "doctor"
VERB_REBALANCE = "rebalance"

# ---------------------------------------------------------------- single moves and services
SERVICE_DISABLE = "service.disable"           # an isolation window's disable (intent/done)
SERVICE_ENABLE = "service.enable"             # its re-enable
SERVICE_LEFT = "service.left"                 # note: a service left as someone else changed it
SERVER_MIGRATE = "server.migrate"             # the migrate / live-migrate POST
SERVER_CONFIRM = "server.confirm"
SERVER_REVERT = "server.revert"
MIGRATION_SCHEDULED = "migration.scheduled"   # note: Nova picked the destination
MIGRATION_SCHEDULE_TIMEOUT = "migration.schedule_timeout"
MIGRATION_ABORT = "migration.abort"
MIGRATION_FORCE_COMPLETE = "migration.force_complete"
MIGRATION_STALL = "migration.stall"           # note: a live move stalled, and what is done about it
LOCK_BREAK = "lock.break"                     # note: recover --break-lock took a dead run's services

# ---------------------------------------------------------------- drain / undrain / apply
DRAIN_PLAN = "drain.plan"                     # note: the plan (and each replan)
DRAIN_DISABLE = "drain.disable"
DRAIN_ENABLE = "drain.enable"
DRAIN_MOVE = "drain.move"                     # one server's move POST
DRAIN_CONFIRM = "drain.confirm"
DRAIN_ABORT = "drain.abort"
DRAIN_REVERT = "drain.revert"
DRAIN_LEASE = "drain.lease"                   # note: the lease on a source host renewed
DRAIN_LOST_RACE = "drain.lost_race"           # note: another run disabled the host first
DRAIN_STALL = "drain.stall"                   # note: a live move stalled, and what is done about it
DRAIN_FORCE_COMPLETE = "drain.force_complete"  # a stalled live move force-completed (engine/stall.py)

# ---------------------------------------------------------------- maintain (campaign)
MAINTAIN_CAMPAIGN = "maintain.campaign"       # note: the campaign's options and ordered hosts
MAINTAIN_HOST = "maintain.host"               # note: a host's outcome
MAINTAIN_DISABLE = "maintain.disable"
MAINTAIN_DRAIN = "maintain.drain"             # note: the drain run and its verdict
MAINTAIN_STOP = "maintain.stop"               # per server
MAINTAIN_HOOK = "maintain.hook"               # intent (started) -> done (exit 0) | failed
MAINTAIN_GATE = "maintain.gate"               # note
MAINTAIN_CHECK = "maintain.check"             # note
MAINTAIN_START = "maintain.start"             # per server
MAINTAIN_ENABLE = "maintain.enable"
MAINTAIN_REASON = "maintain.reason"           # a failed host's disabled reason says why
MAINTAIN_BACK = "maintain.back"               # note: the move-back (undrain) run
MAINTAIN_LEASE = "maintain.lease"             # the campaign's lease on a host out, renewed

# ---------------------------------------------------------------- evacuate / unfence
EVACUATE_PLAN = "evacuate.plan"               # note: the plan and options (recover reruns with them)
EVACUATE_FENCE = "evacuate.fence"             # the fence command (intent before it runs)
EVACUATE_FORCE_DOWN = "evacuate.force-down"   # service forced_down=true
EVACUATE_DISABLE = "evacuate.disable"         # service disabled with our tag
EVACUATE_SERVER = "evacuate.server"           # one server's evacuate POST
UNFENCE_FORCE_UP = "unfence.force-up"         # service forced_down=false
UNFENCE_ENABLE = "unfence.enable"             # service enabled (only with our tag on it)

# ---------------------------------------------------------------- rebalance (engine/batch/rebalance.py)
# Its moves are drain.move / drain.confirm / ... (the batch runner's), so a rerun or `recover`
# adopts them as a drain's.
REBALANCE_PLAN = "rebalance.plan"             # note: the plan it runs (goal, figures, steps)
REBALANCE_DISABLE = "rebalance.disable"       # an emptied host left disabled with our tag (--disable-emptied)
REBALANCE_READ_BACK = "rebalance.read-back"   # note: the figures read back from Placement after the moves

# ---------------------------------------------------------------- doctor --fix (engine/doctor/repair.py)
# (The scan's reads are NOVAMOVE_FAULT kinds doctor.services, doctor.allocations, ...: see
# engine/doctor/scan.py; the repairs' kinds below are distinct from them.)
DOCTOR_CONFIRM = "doctor.confirm"                 # confirm a forgotten VERIFY_RESIZE (one-way)
DOCTOR_DELETE_ALLOCATIONS = "doctor.delete-allocations"   # a consumer's allocations, with its generation
DOCTOR_ENABLE = "doctor.enable"                   # a compute a dead novamove run left disabled
DOCTOR_FORCE_UP = "doctor.force-up"               # forced_down cleared (novamove had set it)
DOCTOR_RESET_STATE = "doctor.reset-state"         # os-resetState active: a stuck task state (one-way)
DOCTOR_KINDS = (DOCTOR_CONFIRM, DOCTOR_DELETE_ALLOCATIONS, DOCTOR_ENABLE, DOCTOR_FORCE_UP, DOCTOR_RESET_STATE)

# ---------------------------------------------------------------- step outcomes (reports)
MOVED = "moved"
SKIPPED = "skipped"
FAILED = "failed"
ABORTED = "aborted"            # stopped on purpose (Ctrl-C with --on-interrupt abort): still on source
GONE = "gone"                  # deleted while the run went on: nothing left to move
RETRY = "retry"                # internal: postponed to a later round, never a final outcome
NOT_STARTED = "not-started"    # interrupted before its turn
IN_FLIGHT = "in-flight"        # left running by a hard exit: `novamove recover` / rerun picks it up
PLANNED = "planned"            # dry run
EVACUATED = "evacuated"
UNPLACED = "not-evacuated"     # cannot be evacuated or placed: the server stays down

# Host outcomes of a campaign.
HOST_DONE = "done"
HOST_FAILED = "failed"
HOST_SKIPPED = "skipped"       # not serviced (skip-tagged server, disabled by someone else, down...)
HOST_REFUSED = "refused"       # N+K or group budget cannot be met: nothing changed on it
HOST_NOT_STARTED = "not-started"
HOST_INTERRUPTED = "interrupted"

# Outcomes that are neither done nor failed: never success (the promise's "honest outcome").
UNFINISHED = frozenset({RETRY, NOT_STARTED, IN_FLIGHT, HOST_NOT_STARTED, HOST_INTERRUPTED})
