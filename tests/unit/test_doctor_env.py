"""NOVAMOVE_DOCTOR_SETTLE / NOVAMOVE_DOCTOR_HEARTBEAT_GAP: read by api.doctor (docs/doctor.md),
bad values refused in one line before anything is read."""

from __future__ import annotations

import pytest

from novamove import api, errors
from novamove.engine.doctor.snapshot import SETTLE


def test_unset_means_the_defaults(monkeypatch):
    monkeypatch.delenv("NOVAMOVE_DOCTOR_SETTLE", raising=False)
    assert api._env_seconds("NOVAMOVE_DOCTOR_SETTLE", SETTLE) == SETTLE
    assert api._env_seconds("NOVAMOVE_DOCTOR_HEARTBEAT_GAP", None) is None


def test_a_number_of_seconds(monkeypatch):
    monkeypatch.setenv("NOVAMOVE_DOCTOR_SETTLE", "3")
    assert api._env_seconds("NOVAMOVE_DOCTOR_SETTLE", SETTLE) == 3.0


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_bad_values_are_refused_before_connecting(monkeypatch, value):
    monkeypatch.setenv("NOVAMOVE_DOCTOR_SETTLE", value)
    with pytest.raises(errors.UsageError, match="NOVAMOVE_DOCTOR_SETTLE"):
        api.doctor(cloud={"auth": {}})        # refused before any connection is made
