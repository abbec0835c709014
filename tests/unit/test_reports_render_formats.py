"""Markdown, JUnit and JSON exports: sections, escaping, and counts that match the journal."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

import pytest

from planb.config import SiteConfig
from planb.reports.render import render_report
from planb.reports.render.markdown import md
from tests.unit.test_reports_render_model import (
    doc_of,
    drill_payload,
    signed_store,
    write_drills,
)
from tests.unit.test_reports_render_model import site as site  # noqa: F401 (fixture)


def test_markdown_has_the_exercise_report_sections(site: SiteConfig) -> None:
    text = render_report("md", doc_of(write_drills(site)[1]))
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings[0] == "# Drill report: primary-outage"
    for section in ("Summary", "Scope", "Objectives and outcome", "Participants", "Timeline",
                    "Checks and probes", "Observations",
                    "Recommendations and follow-up actions", "Environment",
                    "Signature and chain"):
        assert f"## {section}" in headings, section
    assert "| Recovery time | ≤ 60.0 s | 75.5 s | ✘ NOT MET |" in text
    assert "_none recorded_" in text


def test_markdown_escapes_journal_text(site: SiteConfig) -> None:
    stored = signed_store(site).append("drill", drill_payload(
        site, output="```\n[link](http://x)\nline one | <script>x</script>"))
    text = render_report("md", doc_of(stored))
    # In a code block it is text; everywhere else it is escaped.
    fenced = re.search(r"````text\n(.*?)\n````\n", text, re.S)
    assert fenced is not None and fenced[1].startswith("```\n[link]")
    outside = text.replace(fenced[0], "")
    assert "<script>" not in outside
    assert r"\<script\>" in outside and r"\| \<script" in outside  # the table cell
    assert "[link](" not in outside
    assert md("a*b_c[d]") == r"a\*b\_c\[d\]"


def expected_counts(payload: Mapping[str, Any]) -> dict[str, int]:
    """Counts straight from the drill payload, the way the JUnit module documents them."""
    steady = payload["steady_states"]
    steps = [*steady["before"]["probes"], *payload["run"], *payload["rollbacks"],
             *steady["after"]["probes"]]
    probes = [p for s in steps for p in s["probes"]]
    rto, before, after = payload["rto"], steady["before"], steady["after"]
    objectives = [rto["met"], before["steady_state_met"],
                  any(r["passed"] for r in payload["verify_rounds"]),
                  all(s["status"] == "ok" for s in payload["rollbacks"]),
                  after["steady_state_met"]]
    return {
        "tests": len(steps) + len(probes) + len(objectives),
        "failures": sum(s["status"] in ("failed", "forced") for s in steps)
        + sum(not p["ok"] for p in probes) + sum(o is False for o in objectives),
        "errors": sum(s["status"] == "error" for s in steps),
        "skipped": sum(s["status"] in ("skipped", "unavailable") for s in steps)
        + sum(o is None for o in objectives),
    }


@pytest.mark.parametrize("which", [0, 1, 2])
def test_junit_is_valid_and_counts_match_the_journal(site: SiteConfig, which: int) -> None:
    journal = write_drills(site)[which]
    root = ET.fromstring(render_report("junit", doc_of(journal)).encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    cases = suite.findall("testcase")
    counted = {"tests": len(cases),
               "failures": sum(c.find("failure") is not None for c in cases),
               "errors": sum(c.find("error") is not None for c in cases),
               "skipped": sum(c.find("skipped") is not None for c in cases)}
    expected = expected_counts(journal.payload)
    assert counted == expected
    for element in (root, suite):
        assert {k: int(element.get(k, -1)) for k in expected} == expected
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["sha256"] == journal.sha256
    assert props["status"] == journal.payload["status"].upper()


def test_junit_of_a_failed_drill_has_failures_and_errors(site: SiteConfig) -> None:
    journal = write_drills(site)[2]
    counts = expected_counts(journal.payload)
    assert counts["failures"] >= 2 and counts["errors"] == 1 and counts["skipped"] == 1


def test_json_export_holds_the_report_and_the_signed_journal(site: SiteConfig) -> None:
    journal = write_drills(site)[0]
    data = json.loads(render_report("json", doc_of(journal)))
    assert data["format"] == "planb-report/1"
    assert data["journal"] == json.loads(journal.path.read_bytes())
    assert data["report"]["status"]["word"] == "PASS"
    assert data["report"]["signature"]["sha256"] == journal.sha256


def test_json_export_leaves_out_a_journal_holding_logins(site: SiteConfig) -> None:
    stored = signed_store(site).append("drill", drill_payload(site, subjects=("jdupont",)))
    text = render_report("json", doc_of(stored))
    assert "jdupont" not in text and "journal_omitted" in json.loads(text)


def test_unknown_format_is_refused(site: SiteConfig) -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        render_report("pdf", doc_of(write_drills(site)[0]))
