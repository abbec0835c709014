"""The real lab actions of drills on real lab hosts: kill a unit and see systemd restart it,
cut a host off the network and put it back."""

from __future__ import annotations

import time

import pytest

from planb.actions.lab import (
    HostArgs,
    KillArgs,
    UnitArgs,
    is_active,
    isolate_host,
    kill_service,
    reconnect_host,
    wait_active,
)
from planb.engine.actions import ActionContext
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab
UNIT = "planb-drill-test"


def ctx(session: LabSession, timeout: float = 60) -> ActionContext:
    return ActionContext(site=session.site, operator="test", purpose="lab test",
                         deadline=time.monotonic() + timeout)


def main_pid(session: LabSession) -> str:
    proc = session.lab.run_on("fallback", ["systemctl", "show", "-P", "MainPID", UNIT])
    return proc.stdout.strip()


def test_kill_then_wait_active_sees_systemd_restart_the_unit(lab_session: LabSession) -> None:
    lab = lab_session.lab
    started = lab.run_on("fallback", ["systemd-run", f"--unit={UNIT}", "--property=Restart=always",
                                      "--property=RestartSec=1", "sleep", "infinity"])
    assert started.returncode == 0, started.stderr
    try:
        assert is_active(ctx(lab_session), UnitArgs("fallback", UNIT)).ok
        before = main_pid(lab_session)
        killed = kill_service(ctx(lab_session), KillArgs("fallback_messaging", UNIT))
        assert killed.ok and f"main pid was {before}" in killed.output
        back = wait_active(ctx(lab_session, 30), UnitArgs("fallback", UNIT))
        assert back.ok, back.output
        assert main_pid(lab_session) not in ("0", before)
        missing = wait_active(ctx(lab_session, 2), UnitArgs("fallback", "planb-no-such-unit"))
        assert not missing.ok and "inactive" in missing.output
    finally:
        lab.run_on("fallback", ["systemctl", "stop", UNIT])


def test_isolate_cuts_the_host_off_and_reconnect_brings_it_back(
        lab_session: LabSession) -> None:
    lab = lab_session.lab
    assert isolate_host(ctx(lab_session), HostArgs("lab_primary")).ok
    try:
        assert lab.run_on("primary", ["true"], timeout=15).returncode == 255
    finally:
        back = reconnect_host(ctx(lab_session, 60), HostArgs("primary"))
    assert back.ok, back.output
    assert "answers SSH" in back.output
    assert lab.run_on("primary", ["true"]).returncode == 0
