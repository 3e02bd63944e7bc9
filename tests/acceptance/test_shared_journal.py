"""A shared journal on the minicloud: a move killed on machine A is recovered from machine B
(another HOME, another machine identity: NOVAMOVE_TEST_MACHINE, test-only), with the journal on
the minicloud's MariaDB (`novamove minicloud journal-url`) and on PostgreSQL (the unit tests'
loopback server, tests/unit/journal_servers.py).

`make test` runs the MariaDB case (~25-35 s); the PostgreSQL case is defined only with
NOVAMOVE_SHARED_JOURNAL_ACCEPTANCE=all (`make acceptance-shared-journal`), which keeps the
acceptance time `make test` spends here within its budget (every journal unit test runs on
PostgreSQL too).

B's first `recover` finds A's lease current: it touches nothing and says how long the lease has
left; once the lease has run out, `recover` on B puts the cloud back (the isolation's disabled
compute re-enabled, the server settled on its source or target) and a second one has nothing
to do.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from cloudtest import wait_until
from novamove.engine.journal import Journal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from journal_servers import Servers  # noqa: E402

pytestmark = pytest.mark.acceptance

LEASE = 10         # seconds: A's lease, short so B does not wait a minute, long enough for B's first look


@pytest.fixture(scope="module")
def postgresql_servers(tmp_path_factory):
    servers = Servers(tmp_path_factory.mktemp("journal-servers"))
    servers.enter()
    yield servers
    servers.leave()


def _journal_url(backend, minicloud, request) -> str:
    if backend == "mariadb":
        return minicloud.manager.journal_url()
    return request.getfixturevalue("postgresql_servers").new_database("postgresql")


def _services(minicloud):
    return {s.host: (s.status, s.disabled_reason) for s in
            minicloud.conn().compute.services(binary="nova-compute")}


BACKENDS = ["mariadb", "postgresql"] if os.environ.get("NOVAMOVE_SHARED_JOURNAL_ACCEPTANCE") == "all" else ["mariadb"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_on_a_recovered_on_b_once_its_lease_ran_out(minicloud, servers, tmp_path, request, backend):
    url = _journal_url(backend, minicloud, request)
    (server,) = servers(1, host="compute1")
    before = _services(minicloud)
    a = {"NOVAMOVE_JOURNAL": url, "NOVAMOVE_TEST_MACHINE": "machine-a", "HOME": str(tmp_path / "a"),
         "NOVAMOVE_JOURNAL_LEASE": str(LEASE), "NOVAMOVE_FAULT": "service.disable:after:kill:1"}
    b = {"NOVAMOVE_JOURNAL": url, "NOVAMOVE_TEST_MACHINE": "machine-b", "HOME": str(tmp_path / "b")}
    killed = minicloud.cli("migrate", server.id, "--to", "compute2", "--strategy", "isolate", "--live",
                           "-f", "json", env=a)
    assert killed.returncode == -9, killed.stderr
    assert _services(minicloud) != before, "the kill came after a compute was disabled"

    first = minicloud.cli("recover", "-f", "json", env=b)
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)
    assert len(rows) == 1 and "machine-a" in rows[0]["summary"] and "lease ends in" in rows[0]["summary"]
    assert _services(minicloud) != before, "a run whose lease is current is not touched"
    assert url.split("@")[0].rsplit(":", 1)[1] not in first.stdout + first.stderr   # no password

    run = Journal(url).runs(server_id=server.id)[0]
    time.sleep(max(0.0, run["lease_until"] - time.time()) + 0.5)       # the lease runs out
    second = minicloud.cli("recover", "-f", "json", env=b)
    assert second.returncode == 0, second.stderr
    assert _services(minicloud) == before
    wait_until(lambda: not minicloud.server(server.id).task_state, timeout=120, what="the server to settle")
    assert minicloud.host_of(server.id) in ("compute1", "compute2")
    run = Journal(url).runs(server_id=server.id)[0]       # what `history` shows, from any machine
    assert (run["machine"], run["status"]) == ("machine-a", "recovered") and "migrate" in run["command"]
    third = minicloud.cli("recover", "-f", "json", env=b)
    assert json.loads(third.stdout or "[]") == []
