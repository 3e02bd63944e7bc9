"""novamove.retry: ride out an unreachable API, but not forever and not for other errors."""

from __future__ import annotations

import pytest

from novamove import errors
from novamove.retry import patiently


class Flaky:
    def __init__(self, failures: int, exc: Exception):
        self.failures, self.exc, self.calls = failures, exc, 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return "ok"


def test_retries_unreachable_with_doubling_pauses_then_succeeds():
    pauses: list[float] = []
    call = Flaky(4, errors.Unreachable("cannot reach the cloud API"))
    assert patiently(call, "test", sleep=pauses.append) == "ok"
    assert call.calls == 5 and pauses == [1.0, 2.0, 4.0, 8.0]


def test_gives_up_after_its_patience():
    pauses: list[float] = []
    call = Flaky(100, errors.Unreachable("down"))
    with pytest.raises(errors.Unreachable):
        patiently(call, "test", patience=30, sleep=pauses.append)
    assert sum(pauses) >= 30 and pauses[-1] == 15.0 and sum(pauses[:-1]) < 30


def test_other_errors_are_not_retried():
    call = Flaky(1, errors.PreconditionFailed("conflict (409)"))
    with pytest.raises(errors.PreconditionFailed):
        patiently(call, "test", sleep=lambda s: pytest.fail("slept"))
    assert call.calls == 1


def test_what_no_retry_changes_is_not_retried():
    from novamove import errors as errs
    from novamove.retry import patiently
    for exc in (errs.NoEndpoint("no compute endpoint for interface 'admin'"), errs.Untrusted("not trusted")):
        calls, slept = [], []

        def call(exc=exc):
            calls.append(1)
            raise exc
        with pytest.raises(type(exc)):
            patiently(call, "x", sleep=slept.append)
        assert len(calls) == 1 and not slept
        assert exc.exit_code == errs.EXIT_UNREACHABLE       # still "unreachable" (exit 6)


def test_reads_are_patient_only_once_the_api_has_answered():
    from novamove import errors as errs
    from novamove.retry import patient_reads

    class Cloud:
        def __init__(self):
            self.date = None
            self.fails = 1

        def cloud_now(self):
            return self.date

        def list_compute_services(self):
            if self.fails:
                self.fails -= 1
                raise errs.Unreachable("cannot reach the cloud API (connection refused)")
            return ["svc"]
    never = Cloud()
    with pytest.raises(errs.Unreachable):              # never answered: at once, no retry
        patient_reads(never).list_compute_services()
    answered = Cloud()
    answered.date = "Wed, 02 Dec 2026 13:00:00 GMT"
    import novamove.retry as r
    slept = []
    real = r.time.sleep
    r.time.sleep = slept.append
    try:
        assert patient_reads(answered).list_compute_services() == ["svc"]
    finally:
        r.time.sleep = real
    assert slept == [1.0]
