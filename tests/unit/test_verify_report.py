"""The verify result model, its JUnit XML and the selection of checks and hosts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from planb.errors import UsageError
from planb.inventory import InventoryHost, parse_inventory
from planb.verify import CHECKS, to_junit_xml, write_junit
from planb.verify.accounts import load_probe_accounts
from planb.verify.model import CheckResult, VerifyReport
from planb.verify.registry import plan, select_checks


def _report(*statuses: str) -> VerifyReport:
    results = tuple(CheckResult(f"check.{i}", "fallback" if i % 2 else "directory",
                                status, 0.25, f"message <{status}> & more")  # type: ignore[arg-type]
                    for i, status in enumerate(statuses))
    return VerifyReport("lab", "2026-01-01T00:00:00+00:00", 1.5, results)


def test_report_counts_ok_and_summary_name_the_problems() -> None:
    report = _report("pass", "fail", "pass", "error", "skip")
    assert report.counts() == {"pass": 2, "fail": 1, "error": 1, "skip": 1}
    assert not report.ok
    assert [r.name for r in report.problems] == ["check.1", "check.3"]
    assert "check.1 on fallback" in report.summary() and "check.3 on fallback" in report.summary()
    assert _report("pass", "skip").ok
    data = report.as_json()
    assert data["ok"] is False and len(data["results"]) == 5


def test_junit_counts_match_the_testcases(tmp_path: Path) -> None:
    report = _report("pass", "fail", "fail", "error", "skip", "pass")
    path = tmp_path / "verify.xml"
    write_junit(report, path)
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert int(suite.get("tests", "-1")) == len(cases) == 6
    assert int(suite.get("failures", "-1")) == len([c for c in cases if c.find("failure")
                                                    is not None]) == 2
    assert int(suite.get("errors", "-1")) == len([c for c in cases if c.find("error")
                                                  is not None]) == 1
    assert int(suite.get("skipped", "-1")) == len([c for c in cases if c.find("skipped")
                                                   is not None]) == 1
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "message <fail> & more"
    assert cases[1].get("classname") == "fallback" and cases[1].get("name") == "check.1"


def test_junit_of_an_empty_report_is_valid() -> None:
    root = ET.fromstring(to_junit_xml(_report()))
    assert root.get("tests") == "0"


def test_select_checks_by_name_and_prefix() -> None:
    assert [c.name for c in select_checks(["service"])] == [
        "service.slapd", "service.postgresql", "service.synapse", "service.nginx",
        "service.coturn"]
    assert [c.name for c in select_checks(["tls.https", "ports"])] == ["ports", "tls.https"]
    assert len(select_checks(None)) == len(CHECKS)
    with pytest.raises(UsageError) as info:
        select_checks(["servic", "ports"])
    assert "servic" in info.value.message and "service.slapd" in (info.value.hint or "")


INVENTORY = {
    "_meta": {"hostvars": {
        "fallback": {"ansible_host": "10.0.0.11", "ansible_user": "root",
                     "vault_ldap_sync_password": "s3cret", "coturn_port": 3479},
        "directory": {"ansible_host": "10.0.0.12"},
        "primary": {"ansible_host": "10.0.0.10"}}},
    "all": {"children": ["ungrouped", "fallback", "lab_primary"]},
    "fallback": {"hosts": ["fallback"], "children": ["fallback_directory", "fallback_proxy"]},
    "fallback_directory": {"hosts": ["directory"]},
    "fallback_proxy": {"hosts": ["fallback"]},
    "lab_primary": {"hosts": ["primary"]},
}


def test_inventory_groups_and_no_secrets() -> None:
    hosts = {h.name: h for h in parse_inventory(INVENTORY)}
    assert hosts["directory"].groups == ("fallback", "fallback_directory")
    assert hosts["fallback"].address == "10.0.0.11"
    assert "vault_ldap_sync_password" not in hosts["fallback"].hostvars
    assert hosts["fallback"].hostvars["coturn_port"] == 3479
    assert not hosts["primary"].is_fallback


def test_plan_applies_checks_to_their_groups_and_one_host() -> None:
    hosts = parse_inventory(INVENTORY)
    pairs = plan(select_checks(["service.slapd", "service.nginx", "ports"]), hosts)
    assert [(c.name, h.name) for c, h in pairs] == [
        ("service.slapd", "directory"), ("service.nginx", "fallback"),
        ("ports", "directory"), ("ports", "fallback")]
    only = plan(select_checks(["ports"]), hosts, only_host="directory")
    assert [h.name for _, h in only] == ["directory"]
    with pytest.raises(UsageError, match="no host 'nope'"):
        plan(select_checks(["ports"]), hosts, only_host="nope")
    assert isinstance(hosts[0], InventoryHost)


def test_probe_accounts_file(tmp_path: Path) -> None:
    path = tmp_path / "probes"
    path.write_text("# probes\nplanb-probe-1 pass word 1\n\nplanb-probe-2 pw2\n")
    path.chmod(0o600)
    assert load_probe_accounts(path) == [("planb-probe-1", "pass word 1"),
                                         ("planb-probe-2", "pw2")]
    path.chmod(0o644)
    with pytest.raises(UsageError, match="mode 0644"):
        load_probe_accounts(path)
    path.write_text("lonely\n")
    path.chmod(0o600)
    with pytest.raises(UsageError) as info:
        load_probe_accounts(path)
    assert f"{path}:1" in info.value.message and "lonely" not in info.value.message
