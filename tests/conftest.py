"""In CI (``$CI`` set), a test that did not run is a failure.

CI claims to run every test: a skipped or xfailed test there (a missing tool, a lab
that could not boot) would leave it green having checked nothing. Under CI this
plugin lists every skip and xfail at the end of the run and makes the session fail;
so does a run that collected no test at all. Outside CI, skips stay skips.
"""

from __future__ import annotations

import os

import pytest

_NOT_RUN: list[str] = []


def in_ci() -> bool:
    """True when ``$CI`` is set to anything but empty, ``0`` or ``false``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def _describe(report: pytest.TestReport | pytest.CollectReport) -> str:
    if hasattr(report, "wasxfail"):
        return f"{report.nodeid}: xfailed ({report.wasxfail or 'no reason given'})"
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    return f"{report.nodeid}: skipped ({reason})"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> object:
    """Tests marked ``runs_last`` go after all others, kept in the order they were given.

    A wrapper registered after pytest-randomly's (conftest plugins come after installed
    ones), so it is outside it: this runs once the random shuffle is done. Such a test
    changes its lab for good (the fallback-host-down drill powers the fallback off).
    """
    result = yield
    last = [item for item in items if item.get_closest_marker("runs_last")]
    if last:
        items[:] = [item for item in items if not item.get_closest_marker("runs_last")] + last
    return result


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:  # skips and xfails alike, at setup or in the call
        _NOT_RUN.append(_describe(report))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:  # a module-level pytest.skip or importorskip
        _NOT_RUN.append(_describe(report))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not in_ci():
        return
    if _NOT_RUN and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    # Exit 5 (no tests collected) is already non-zero: CI fails, with the line below.


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    if not in_ci():
        return
    if _NOT_RUN:
        terminalreporter.section("not run, which fails CI", sep="=", red=True, bold=True)
        for line in _NOT_RUN:
            terminalreporter.line(line)
        terminalreporter.line(f"CI: {len(_NOT_RUN)} test(s) skipped or xfailed: every test "
                              "must run in CI (see tests/conftest.py)", red=True)
    elif exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        terminalreporter.line("CI: no test was collected", red=True)
