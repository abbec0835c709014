"""The foundation on real hosts: the lab boots, Ansible reaches it, deploy is idempotent."""

from __future__ import annotations

import pytest

from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab


def test_lab_hosts_boot_with_systemd_and_answer_ssh(lab_session: LabSession) -> None:
    hosts = {h.name: h for h in lab_session.lab.status()}
    assert set(hosts) == {"primary", "fallback"}
    for host in hosts.values():
        assert host.process == "running"
        assert host.system in ("running", "degraded"), host


def test_lab_hosts_have_no_route_out(lab_session: LabSession) -> None:
    result = lab_session.lab.run_on("fallback", ["ip", "route", "show", "default"])
    assert result.returncode == 0
    assert result.stdout.strip() == ""


def test_lab_up_is_safe_to_repeat(lab_session: LabSession) -> None:
    again = lab_session.lab.up()
    assert again == lab_session.topology
    assert all(h.process == "running" for h in lab_session.lab.status())


def test_deploy_succeeds_on_every_host(deployed_lab: LabSession) -> None:
    first = deployed_lab.first_deploy
    assert first is not None
    assert first.ok, [f.describe() for f in first.failures] or first.error
    assert set(first.hosts) == {"primary", "fallback"}
    assert all(stats.failed == 0 and stats.unreachable == 0 for stats in first.hosts.values())


def test_second_deploy_changes_nothing(deployed_lab: LabSession) -> None:
    second = deployed_lab.second_deploy
    assert second is not None
    assert second.ok, [f.describe() for f in second.failures] or second.error
    changed = {name: stats.changed for name, stats in second.hosts.items()}
    assert changed == {"primary": 0, "fallback": 0}


def test_common_role_set_hostname_timezone_and_facts(deployed_lab: LabSession) -> None:
    result = deployed_lab.lab.run_on(
        "fallback", ["sh", "-c", "hostname; readlink /etc/localtime; "
                     "cat /etc/ansible/facts.d/planb.fact"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "fallback"
    assert lines[1].endswith("Europe/Paris")
    assert '"site"' in result.stdout and "lab" in result.stdout
