"""JUnit XML for a verify run: one testsuite, one testcase per (check, host).

CI servers read it: ``failure`` for a failed check, ``error`` for one that could not
run, ``skipped`` for one that did not apply. The counts in the testsuite element
match the testcases.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from planb.verify.model import VerifyReport


def to_junit_xml(report: VerifyReport) -> str:
    """The report as a JUnit XML document (UTF-8 text with its declaration)."""
    counts = report.counts()
    suites = ET.Element("testsuites", tests=str(len(report.results)),
                        failures=str(counts["fail"]), errors=str(counts["error"]),
                        skipped=str(counts["skip"]), time=f"{report.duration_seconds:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=f"planb verify {report.site}",
                          tests=str(len(report.results)), failures=str(counts["fail"]),
                          errors=str(counts["error"]), skipped=str(counts["skip"]),
                          time=f"{report.duration_seconds:.3f}", timestamp=report.started_at)
    for result in report.results:
        case = ET.SubElement(suite, "testcase", classname=result.host, name=result.name,
                             time=f"{result.duration_seconds:.3f}")
        if result.status == "fail":
            ET.SubElement(case, "failure", message=result.message).text = result.message
        elif result.status == "error":
            ET.SubElement(case, "error", message=result.message).text = result.message
        elif result.status == "skip":
            ET.SubElement(case, "skipped", message=result.message)
        elif result.message:
            ET.SubElement(case, "system-out").text = result.message
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def write_junit(report: VerifyReport, path: Path) -> None:
    """Write :func:`to_junit_xml` to ``path`` (its folder must exist)."""
    path.write_text(to_junit_xml(report) + "\n", encoding="utf-8")
