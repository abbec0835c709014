"""JUnit XML for a verify run: one testsuite, one testcase per (check, host).

CI servers read it: ``failure`` for a failed check, ``error`` for one that could not
run, ``skipped`` for one that did not apply. The counts in the testsuite element
match the testcases.
"""

from __future__ import annotations

from pathlib import Path

from planb.files import write_atomic
from planb.junit import Case, Outcome, junit_xml
from planb.verify.model import VerifyReport

_OUTCOME: dict[str, Outcome] = {"pass": "passed", "fail": "failure", "error": "error",
                                "skip": "skipped"}


def to_junit_xml(report: VerifyReport) -> str:
    """The report as a JUnit XML document (UTF-8 text with its declaration)."""
    cases = [Case(result.host, result.name, result.duration_seconds, _OUTCOME[result.status],
                  message=result.message,
                  output=result.message if result.status == "pass" else "")
             for result in report.results]
    return junit_xml(f"planb verify {report.site}", cases, seconds=report.duration_seconds,
                     timestamp=report.started_at)


def write_junit(report: VerifyReport, path: Path) -> None:
    """Write :func:`to_junit_xml` to ``path`` (its folder must exist)."""
    write_atomic(path, to_junit_xml(report) + "\n")
