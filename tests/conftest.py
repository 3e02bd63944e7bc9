import os
import tempfile

import pytest

# Acceptance tests must never reach a real cloud by accident through the developer's env.
for _var in [v for v in os.environ if v.startswith("OS_")]:
    os.environ.pop(_var)

# Nor write into the journal the developer uses (or exported): every novamove the tests run,
# in-process or as a subprocess, journals into a directory of this session's own.
os.environ["NOVAMOVE_JOURNAL"] = os.path.join(tempfile.mkdtemp(prefix="novamove-tests-"), "journal.sqlite")
os.environ.pop("NOVAMOVE_FAULT", None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI=true) a skipped test is a failure: a missing tool or a minicloud that did not
    come up must not turn into a quiet green."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true), which counts as a failure: {report.longrepr}"
