"""SSH host keys on the lab: recorded at 'lab up', enforced by every planb SSH path.

'lab up' records the hosts' keys in the site's known_hosts (as production does on
first contact). Then the key of a host is changed on the host itself (regenerated,
sshd restarted, as a reinstalled host or an impostor would present): Ansible
('planb deploy'), testinfra ('planb verify') and the admin API tunnel ('planb sync
plan') refuse to connect, each with planb's message naming the host and the fix;
'planb hosts trust' does not replace the key by itself; '--replace HOST' does, after
which the host is reached again. A site folder from before the upgrade (no
known_hosts) is told what to run; 'planb deploy --trust-new-hosts' records the keys
on first contact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.hostkeys import fingerprint, known_hosts_path, parse_known_hosts
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab
runner = CliRunner()
#: The host whose key changes: the (non-split) lab's directory and messaging host.
HOST = "fallback"
CHANGE_KEYS = ("mkdir -p /root/planb-old-host-keys && cp -a /etc/ssh/ssh_host_* "
               "/root/planb-old-host-keys/ && rm -f /etc/ssh/ssh_host_* && ssh-keygen -A "
               ">/dev/null && systemctl restart ssh")
RESTORE_KEYS = ("cp -a /root/planb-old-host-keys/ssh_host_* /etc/ssh/ && "
                "rm -rf /root/planb-old-host-keys && systemctl restart ssh")


def cli(lab: LabSession, *args: str) -> tuple[int, str]:
    done = runner.invoke(app, ["--config", str(lab.site.source), *args])
    return done.exit_code, " ".join(done.output.split())


@pytest.fixture(scope="module")
def lab(standby_lab: LabSession) -> LabSession:
    return standby_lab


def host_fingerprint(lab: LabSession, name: str) -> str:
    done = lab.lab.run_on(name, ["ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub"])
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[1]


def test_lab_up_recorded_every_hosts_key(lab: LabSession) -> None:
    known = parse_known_hosts(known_hosts_path(lab.site).read_text(encoding="utf-8"))
    for host in lab.topology.hosts:
        recorded = {fingerprint(k) for k in known[host.address]}
        assert host_fingerprint(lab, host.name) in recorded, host.name


@pytest.fixture
def changed_key(lab: LabSession) -> Iterator[str]:
    """The host's SSH key regenerated on the host; put back (and re-trusted) afterwards."""
    before = host_fingerprint(lab, HOST)
    done = lab.lab.run_on(HOST, [CHANGE_KEYS])
    assert done.returncode == 0, done.stderr
    assert host_fingerprint(lab, HOST) != before
    try:
        yield before
    finally:
        done = lab.lab.run_on(HOST, [RESTORE_KEYS])
        assert done.returncode == 0, done.stderr
        code, out = cli(lab, "hosts", "trust", "--replace", HOST)
        assert code == 0, out


def test_a_changed_host_key_stops_every_ssh_path_with_planbs_message(
        lab: LabSession, changed_key: str) -> None:
    path = known_hosts_path(lab.site)
    recorded = path.read_text(encoding="utf-8")
    fix = f"planb hosts trust --replace {HOST}"
    code, out = cli(lab, "verify", "--only", "service.slapd")
    assert code != 0 and "does not match the one recorded" in out and fix in out, out
    assert "@@@@" not in out, "not ssh's raw banner"
    code, out = cli(lab, "deploy", "--tags", "planb-no-such-tag", "--limit", HOST)
    assert code == 3 and "ssh refused its host key" in out and fix in out, out
    code, out = cli(lab, "sync", "plan")  # Matrix target: the admin API tunnel
    assert code != 0 and "does not match the one recorded" in out and fix in out, out
    # Trusting again never replaces a changed key by itself.
    code, out = cli(lab, "hosts", "trust")
    assert code == 1 and "not replaced" in out and fix in out, out
    assert path.read_text(encoding="utf-8") == recorded
    # The operator checked the new fingerprint on the console: replace it.
    code, out = cli(lab, "hosts", "trust", "--replace", HOST, "--json")
    assert code == 0, out
    [result] = json.loads(out[out.index("{"):])["hosts"]
    assert result["outcome"] == "replaced", out
    assert any(host_fingerprint(lab, HOST) in f for f in result["fingerprints"])
    code, out = cli(lab, "verify", "--only", "service.slapd")
    assert code == 0, out


def test_a_site_from_before_the_upgrade_is_told_to_trust_its_hosts(lab: LabSession) -> None:
    path = known_hosts_path(lab.site)
    aside = Path(f"{path}.aside")
    path.rename(aside)
    try:
        code, out = cli(lab, "verify", "--only", "service.slapd")
        assert code != 0 and "no SSH host key recorded" in out, out
        assert "planb hosts trust" in out, out
        code, out = cli(lab, "deploy", "--tags", "planb-no-such-tag")
        assert code != 0 and "no SSH host key recorded" in out, out
        assert "--trust-new-hosts" in out, out
        # First contact: deploy records the keys it finds and goes on.
        code, out = cli(lab, "deploy", "--tags", "planb-no-such-tag", "--trust-new-hosts")
        assert code == 0 and "on first contact" in out, out
        code, out = cli(lab, "verify", "--only", "service.slapd")
        assert code == 0, out
        code, out = cli(lab, "hosts", "trust", "--json")
        assert code == 0, out
        outcomes = {h["outcome"] for h in json.loads(out[out.index("{"):])["hosts"]}
        assert outcomes == {"unchanged"}, out
        assert (parse_known_hosts(path.read_text(encoding="utf-8"))
                == parse_known_hosts(aside.read_text(encoding="utf-8")))
    finally:
        aside.replace(path)
