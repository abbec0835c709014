"""JUnit XML, the one writer: verify runs and journal reports both render through it.

CI servers and test dashboards read it. One ``testsuites`` element holding one
``testsuite``; the ``tests``, ``failures``, ``errors`` and ``skipped`` counts of both are
computed from the testcases written, so they always match.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["passed", "failure", "error", "skipped"]


@dataclass(frozen=True)
class Case:
    """One testcase: ``message`` explains a failure, error or skip; ``output`` is shown as
    the case's ``system-out`` whatever its outcome."""

    classname: str
    name: str
    seconds: float
    outcome: Outcome
    message: str = ""
    output: str = ""


def counts(cases: Sequence[Case]) -> dict[str, int]:
    """``tests``, ``failures``, ``errors`` and ``skipped`` of ``cases``."""
    tally = Counter(case.outcome for case in cases)
    return {"tests": len(cases), "failures": tally["failure"], "errors": tally["error"],
            "skipped": tally["skipped"]}


def junit_xml(suite: str, cases: Sequence[Case], *, seconds: float, timestamp: str,
              suites_name: str | None = None, suite_id: str | None = None,
              properties: Sequence[tuple[str, str]] = ()) -> str:
    """The document (UTF-8 text with its declaration) for one suite of ``cases``."""
    attrs = {key: str(value) for key, value in counts(cases).items()}
    attrs["time"] = f"{seconds:.3f}"
    root = ET.Element("testsuites", {**({"name": suites_name} if suites_name else {}), **attrs})
    node = ET.SubElement(root, "testsuite", {"name": suite, **attrs, "timestamp": timestamp,
                                             **({"id": suite_id} if suite_id else {})})
    if properties:
        props = ET.SubElement(node, "properties")
        for key, value in properties:
            ET.SubElement(props, "property", name=key, value=value)
    for case in cases:
        element = ET.SubElement(node, "testcase", classname=case.classname, name=case.name,
                                time=f"{case.seconds:.3f}")
        if case.outcome in ("failure", "error"):
            ET.SubElement(element, case.outcome, message=case.message).text = case.message
        elif case.outcome == "skipped":
            ET.SubElement(element, "skipped", message=case.message)
        if case.output:
            ET.SubElement(element, "system-out").text = case.output
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
