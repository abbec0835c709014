"""'planb verify' on the deployed lab: green, then red with a service stopped by hand.

The probe and injection checks use the two probe accounts the deploy makes (LDAP
entries, Synapse support users exempt from standby) and records for verify.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.statecopy.crypto import load_copy_key
from planb.verify import run_checks
from planb.verify.accounts import default_probe_file, load_probe_accounts
from planb.verify.model import VerifyReport
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab
PROBES = ("planb-probe-1", "planb-probe-2")


@pytest.fixture(scope="module")
def probe_accounts(standby_lab: LabSession) -> list[tuple[str, str]]:
    """The probe accounts the deploy made and recorded for planb verify."""
    path = default_probe_file(standby_lab.site)
    assert path.stat().st_mode & 0o777 == 0o600
    accounts = load_probe_accounts(path)
    assert [login for login, _ in accounts] == list(PROBES)
    return accounts


def _problems(report: VerifyReport) -> list[tuple[str, str, str]]:
    return [(r.name, r.host, r.status) for r in report.problems]


def _wait_green(session: LabSession, names: list[str], timeout: float = 90) -> VerifyReport:
    deadline = time.monotonic() + timeout
    while True:
        report = run_checks(session.site, names)
        if report.ok or time.monotonic() > deadline:
            return report
        time.sleep(1)


def test_verify_passes_every_check(deployed_lab: LabSession,
                                   probe_accounts: list[tuple[str, str]]) -> None:
    result = CliRunner().invoke(app, ["-c", str(deployed_lab.site.source), "verify"])
    assert result.exit_code == 0, result.output
    # Every check passed, but those of what this site chose not to set up, which are
    # skipped saying so: backups (off on the session lab) and the crisis cell's
    # passphrase for the controller's copy (set only by the modules that test it), and
    # Synapse's workers on a monolith site.
    site = deployed_lab.site
    not_set_up = ({"backup.fresh"} if not site.backup.enabled else set()) | (
        {"controller.copy"} if load_copy_key(site.state_dir) is None else set()) | (
        {"synapse.workers", "synapse.workers_routed", "synapse.redis"}
        if site.fallback.synapse.workers == "none" else set())
    summary = rf"(\d+) checks in [\d.]+ s: (\d+) passed(, {len(not_set_up)} skipped)?\s*$"
    found = re.search(summary, result.output)
    assert found and int(found[1]) == int(found[2]) + len(not_set_up), result.output
    report = run_checks(site, probe_accounts=probe_accounts)
    assert _problems(report) == [], report.summary()
    assert {r.name for r in report.results if r.status != "pass"} == not_set_up
    assert {r.status for r in report.results if r.name not in not_set_up} == {"pass"}
    names = {r.name for r in report.results}
    assert {"ports", "matrix.probe", "matrix.ldap_injection", "tls.https"} <= names
    injection = next(r for r in report.results if r.name == "matrix.ldap_injection")
    assert "with a probe account's password" in injection.message
    assert all(p not in r.message for r in report.results for _, p in probe_accounts)


def test_verify_fails_naming_slapd_when_it_is_stopped(deployed_lab: LabSession,
                                                      tmp_path: Path) -> None:
    lab, config = deployed_lab.lab, str(deployed_lab.site.source)
    junit = tmp_path / "verify.xml"
    try:
        lab.run_on("fallback", ["systemctl", "stop", "slapd"])
        result = CliRunner().invoke(app, ["-c", config, "verify", "--only", "service.slapd",
                                          "--only", "ldap", "--junit", str(junit)])
        assert result.exit_code == 1, result.output
        assert "service.slapd on fallback" in result.output
        assert "slapd is inactive" in result.output
        suite = ET.parse(junit).getroot().find("testsuite")
        assert suite is not None and suite.get("tests") == "2"
        assert suite.get("failures") == "2"  # slapd inactive; nothing answers on 636
    finally:
        lab.run_on("fallback", ["systemctl", "start", "slapd"])
    report = _wait_green(deployed_lab, ["service.slapd", "ldap.anonymous"])
    assert report.ok, report.summary()


def test_verify_fails_naming_synapse_when_it_is_stopped(deployed_lab: LabSession) -> None:
    lab = deployed_lab.lab
    names = ["service.synapse", "matrix.client_api"]
    try:
        lab.run_on("fallback", ["systemctl", "stop", "synapse"])
        report = run_checks(deployed_lab.site, names)
        assert _problems(report) == [("service.synapse", "fallback", "fail"),
                                     ("matrix.client_api", "fallback", "fail")]
        assert "synapse is inactive" in report.results[0].message
        assert "502" in report.results[1].message
    finally:
        lab.run_on("fallback", ["systemctl", "start", "synapse"])
    report = _wait_green(deployed_lab, names)
    assert report.ok, report.summary()
