"""Fixtures of the unit tests: the journal's database servers (journal_servers.py)."""

from __future__ import annotations

import os

import pytest

from journal_servers import BACKENDS, Servers


@pytest.fixture(scope="session")
def journal_servers(tmp_path_factory):
    """MariaDB and PostgreSQL on loopback, shared by this run's xdist workers."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    servers = Servers(root / "journal-servers")
    servers.enter()
    yield servers
    servers.leave()


@pytest.fixture(params=BACKENDS)
def journal_url(request, tmp_path):
    """Where a journal test's journal lives: an SQLite file, then a fresh database on MariaDB,
    then on PostgreSQL (with its password inline: the tests' own environment)."""
    if request.param == "sqlite":
        return str(tmp_path / "j.sqlite")
    return request.getfixturevalue("journal_servers").new_database(request.param)
