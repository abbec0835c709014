"""planb.junit: the one JUnit writer, read back with an XML parser."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from planb.junit import Case, junit_xml

CASES = [
    Case("fallback", "service.slapd", 0.25, "passed", output="active"),
    Case("fallback", "tls.https", 1.5, "failure", message="expires in 3 days <30>"),
    Case("fallback", "matrix.probe", 0.0, "skipped", message="no probe accounts"),
    Case("fallback", "ports", 2.0, "error", message="ssh: unreachable & gone"),
    Case("fallback", "package.nginx", 0.5, "passed"),
]


def test_counts_on_both_levels_match_the_testcases() -> None:
    root = ET.fromstring(junit_xml("planb verify lyon", CASES, seconds=4.25,
                                   timestamp="2026-11-29T23:00:00"))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "planb verify lyon"
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures"), element.get("errors"),
                element.get("skipped"), element.get("time")) == ("5", "1", "1", "1", "4.250")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c.name for c in CASES]
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "expires in 3 days <30>"
    assert cases[2].find("skipped") is not None and cases[3].find("error") is not None
    assert cases[0].findtext("system-out") == "active" and len(cases[4]) == 0


def test_names_ids_and_properties_when_given() -> None:
    text = junit_xml("Drill report: primary-outage", CASES[:1], seconds=1, timestamp="t",
                     suites_name="planb 000001-drill.json", suite_id="abc",
                     properties=[("status", "PASS"), ("rto", "31 s")])
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')
    root = ET.fromstring(text.encode("utf-8"))
    suite = root.find("testsuite")
    assert root.get("name") == "planb 000001-drill.json" and suite is not None
    assert suite.get("id") == "abc"
    assert [(p.get("name"), p.get("value")) for p in suite.iter("property")] == [
        ("status", "PASS"), ("rto", "31 s")]


def test_an_empty_suite_is_valid() -> None:
    root = ET.fromstring(junit_xml("empty", [], seconds=0, timestamp="t"))
    assert root.get("tests") == "0" and root.find("testsuite/testcase") is None
    assert root.find("testsuite/properties") is None
