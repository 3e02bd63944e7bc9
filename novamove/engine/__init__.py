"""The engine: every verb's rules, grouped by family, over a few shared pieces.

Families (each imports the shared pieces, never another family's internals, except that the
fleet verbs drive drains through `batch`):
- single/     one server: pre-checks, the strategies (native, isolate), waiting, confirm/revert
- batch/      drain, undrain, apply: the migration moves of many servers under caps, the lease
- campaign/   `maintain`: rolling maintenance, host by host, K out at once
- evacuate/   a failed host's servers rebuilt elsewhere, fenced; `unfence`

Shared pieces:
- events      every journal kind, run status and outcome, named once
- frame       a run's life in the journal (start, finish exactly once, what it continued)
- runner      the one capped loop (caps, polling, signals, stop) every batch-like verb runs on
- lifecycle   the migration move kind: what a migration record and its server say next
- journal, tags, services, poll, resolve, commands, faults
- recover     finishes or undoes what any run left behind
"""
