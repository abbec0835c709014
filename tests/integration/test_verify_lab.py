"""'planb verify' on the deployed lab: green, then red with a service stopped by hand.

Two probe accounts are made for the probe and injection checks: entries in the
fallback LDAP written as the sync account (cn=planb-sync), made Synapse *support*
users through the admin API on the host (the fallback is in standby after deploy,
and only support users may log in then).
"""

from __future__ import annotations

import json
import secrets
import ssl
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest
import yaml
from typer.testing import CliRunner

from planb.cli.main import app
from planb.verify import run_checks
from planb.verify.model import VerifyReport
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab
PROBES = ("planb-probe-1", "planb-probe-2")


def _sync_connection(session: LabSession) -> ldap3.Connection:
    site = session.site
    vault = yaml.safe_load((site.inventory_dir / "group_vars" / "all" / "vault.yml").read_text())
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(site.state_dir / "pki/ca.crt"))
    server = ldap3.Server(session.topology.host("fallback").address, port=636, use_ssl=True,
                          tls=tls)
    return ldap3.Connection(server, f"cn=planb-sync,ou=services,{site.fallback.ldap_suffix}",
                            vault["vault_ldap_sync_password"], auto_bind=True)


def _make_support_users(session: LabSession, logins: tuple[str, ...]) -> None:
    site = session.site
    token = (site.state_dir / "synapse" / "admin-token").read_text().strip()
    script = (
        "import json, sys, urllib.request\n"
        "token, server, logins = json.load(sys.stdin)\n"
        "for login in logins:\n"
        "    req = urllib.request.Request(\n"
        "        f'http://127.0.0.1:8008/_synapse/admin/v2/users/@{login}:{server}',\n"
        "        data=json.dumps({'user_type': 'support'}).encode(), method='PUT',\n"
        "        headers={'Authorization': 'Bearer ' + token})\n"
        "    urllib.request.urlopen(req, timeout=10).read()\n")
    # The token travels on stdin, never on a command line.
    argv = session.lab.ssh_argv("fallback", ["python3", "-c", script])
    proc = subprocess.run(argv, input=json.dumps([token, site.matrix.server_name, logins]),
                          text=True, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-500:]


@pytest.fixture(scope="module")
def probe_accounts(deployed_lab: LabSession) -> Iterator[list[tuple[str, str]]]:
    suffix = deployed_lab.site.fallback.ldap_suffix
    accounts = [(login, secrets.token_urlsafe(16)) for login in PROBES]
    try:
        conn = _sync_connection(deployed_lab)
        for login, password in accounts:
            dn = f"uid={login},ou=people,{suffix}"
            conn.delete(dn)
            assert conn.add(dn, ["inetOrgPerson"], {"uid": login, "cn": f"Sonde {login}",
                                                    "sn": "Sonde", "userPassword": password}), \
                conn.result
        conn.unbind()
        _make_support_users(deployed_lab, PROBES)
        yield accounts
    finally:
        # A fresh connection: the tests restart slapd, which ends earlier sessions.
        with _sync_connection(deployed_lab) as conn:
            for login, _ in accounts:
                conn.delete(f"uid={login},ou=people,{suffix}")


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
    report = run_checks(deployed_lab.site, probe_accounts=probe_accounts)
    assert _problems(report) == [], report.summary()
    assert {r.status for r in report.results} == {"pass"}
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
