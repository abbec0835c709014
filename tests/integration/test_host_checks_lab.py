"""Each host check of 'planb verify' fails on the real fault it looks for, on the lab.

For every file-mode check a file on the fallback host gets a wrong mode (or group);
for the services one is stopped or disabled; an extra socket is opened for the ports
check; Synapse's venv loses its python. The check must fail naming the file, unit or
port; the fault is then put back and the check must pass again (so the module leaves
the lab as it found it, whatever ran before).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from planb.verify import registry, run_checks
from planb.verify.model import CheckFailed, CheckResult
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab
HOST = "fallback"


@pytest.fixture(scope="module")
def lab(standby_lab: LabSession) -> LabSession:
    return standby_lab


def sh(lab: LabSession, command: str) -> str:
    done = lab.lab.run_on(HOST, ["sh", "-c", command])
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return str(done.stdout)


def check(lab: LabSession, name: str) -> CheckResult:
    report = run_checks(lab.site, [name])
    found = [r for r in report.results if r.name == name]
    assert len(found) == 1, report.summary()
    return found[0]


def wait_pass(lab: LabSession, name: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while (result := check(lab, name)).status != "pass" and time.monotonic() < deadline:
        time.sleep(2)
    assert result.status == "pass", result.message


@contextmanager
def changed_mode(lab: LabSession, path: str, mode: str, group: str | None = None
                 ) -> Iterator[None]:
    """``path`` with ``mode`` (and ``group``) for the block; its own put back after."""
    before = sh(lab, f"stat -c '%a %G' {shlex.quote(path)}").split()
    sh(lab, f"chmod {mode} {shlex.quote(path)}"
       + (f" && chgrp {group} {shlex.quote(path)}" if group else ""))
    try:
        yield
    finally:
        sh(lab, f"chmod {before[0]} {shlex.quote(path)} && chgrp {before[1]} "
                f"{shlex.quote(path)}")


FILE_FAULTS = [
    ("files.tls_keys", "ls /etc/planb/tls/*.key | head -n1", "0644", None),
    ("files.synapse_config", "echo /etc/synapse/homeserver.yaml", "0604", None),
    ("files.synapse_config", "echo /etc/synapse/homeserver.yaml", "0640", "users"),
    ("files.synapse_keys", "ls /etc/synapse/keys/* | head -n1", "0660", None),
    ("files.slapd_config", "echo /etc/ldap/slapd.d", "0755", None),
    ("files.coturn_config", "echo /etc/turnserver.conf", "0644", None),
]


@pytest.mark.parametrize(("name", "find", "mode", "group"), FILE_FAULTS)
def test_a_file_mode_check_fails_naming_the_wrong_file(
        lab: LabSession, name: str, find: str, mode: str, group: str | None) -> None:
    assert check(lab, name).status == "pass"
    path = sh(lab, find).strip()
    assert path.startswith("/"), path
    with changed_mode(lab, path, mode, group):
        result = check(lab, name)
    assert result.status == "fail", result.message
    shown = f"{int(mode, 8):04o}"
    assert f"{path} is {shown}" in result.message, result.message
    if group:
        assert f":{group}" in result.message
    wait_pass(lab, name)


@pytest.mark.parametrize(("name", "unit", "fault", "repair", "expected"), [
    ("service.nginx", "nginx", "systemctl stop nginx", "systemctl start nginx",
     "nginx is inactive"),
    ("service.coturn", "coturn", "systemctl disable coturn", "systemctl enable coturn",
     "coturn is disabled at boot"),
    ("service.postgresql", "postgresql@15-main", "systemctl stop postgresql@15-main",
     "systemctl start postgresql@15-main && systemctl restart synapse",
     "postgresql@15-main is inactive"),
])
def test_a_service_check_fails_naming_the_stopped_or_disabled_unit(
        lab: LabSession, name: str, unit: str, fault: str, repair: str,
        expected: str) -> None:
    assert check(lab, name).status == "pass"
    try:
        sh(lab, fault)
        result = check(lab, name)
    finally:
        sh(lab, repair)
    assert result.status == "fail" and expected in result.message, result.message
    wait_pass(lab, name)
    wait_pass(lab, "service.synapse")


def test_the_ports_check_fails_naming_an_unexpected_listener(lab: LabSession) -> None:
    unit = "planb-test-listener"
    assert check(lab, "ports").status == "pass"
    sh(lab, f"systemd-run --unit={unit} python3 -m http.server --bind 0.0.0.0 8765")
    try:
        deadline = time.monotonic() + 30
        while "8765" not in sh(lab, "ss -Hlnt") and time.monotonic() < deadline:
            time.sleep(0.5)
        result = check(lab, "ports")
    finally:
        sh(lab, f"systemctl stop {unit} || true")
    assert result.status == "fail" and "8765" in result.message, result.message
    wait_pass(lab, "ports")


def test_the_synapse_venv_check_fails_when_synapse_does_not_import(lab: LabSession) -> None:
    venv = "/opt/synapse/venv"
    assert check(lab, "package.synapse").status == "pass"
    # The module Synapse's LDAP login needs, set aside (the running Synapse keeps it).
    path = sh(lab, f"{venv}/bin/python -c 'import ldap_auth_provider as m; print(m.__file__)'"
              ).strip()
    sh(lab, f"mv {shlex.quote(path)} {shlex.quote(path)}.planb-test")
    try:
        result = check(lab, "package.synapse")
    finally:
        sh(lab, f"mv {shlex.quote(path)}.planb-test {shlex.quote(path)}")
    assert result.status == "fail", result.message
    assert "Synapse does not import" in result.message and "ldap_auth_provider" in result.message
    wait_pass(lab, "package.synapse")


def test_a_package_check_fails_naming_a_package_that_is_not_installed(
        lab: LabSession) -> None:
    host = next(h for h in registry.load_hosts(lab.site) if h.name == HOST)
    ctx = registry.CheckContext(lab.site, registry.HostConnections())
    try:
        with pytest.raises(CheckFailed, match="^not installed: planb-no-such-package$"):
            registry.hc.packages("nginx", "planb-no-such-package")(ctx, host)
        assert registry.hc.packages("nginx")(ctx, host).startswith("nginx ")
    finally:
        ctx.connections.close()
