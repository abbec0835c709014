"""planb failover on the deployed lab: activation with the primary cut off, then back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from planb.drills.actions import ActionContext
from planb.drills.lab_actions import HostArgs, isolate_host, reconnect_host
from planb.failover.announce_action import announcement_module
from planb.failover.state import StateFile, sync_frozen
from tests.integration.conftest import LabSession
from tests.integration.test_drills_scenarios import drill_lab, planb

pytestmark = pytest.mark.lab
__all__ = ["drill_lab"]


def ctx(session: LabSession) -> ActionContext:
    return ActionContext(site=session.site, operator="test", purpose="failover lab test")


def as_json(result: Any) -> dict[str, Any]:
    return json.loads(result.stdout[result.stdout.index("{"):])  # type: ignore[no-any-return]


def test_activate_with_the_primary_cut_off_then_deactivate(drill_lab: LabSession) -> None:
    site = drill_lab.site
    refused = planb(drill_lab, "failover", "activate", "--reason", "test")
    assert refused.exit_code == 2 and "--yes" in refused.output  # no terminal to confirm on
    assert StateFile(site.state_dir).load().mode == "standby"
    assert isolate_host(ctx(drill_lab), HostArgs("primary")).ok
    try:
        assert drill_lab.lab.run_on("primary", ["true"], timeout=10).returncode == 255
        done = planb(drill_lab, "failover", "activate", "--reason", "primary down (test)",
                     "--yes", "--json")
        assert done.exit_code == 0, done.output
        result = as_json(done)
        assert result["changed"] and result["state"]["mode"] == "active"
        steps = {s["name"]: s for s in result["steps"]}
        assert [steps[n]["status"] for n in ("preflight", "freeze-sync", "flip")] == ["ok"] * 3
        if announcement_module()[0] is None:
            assert steps["announce"]["status"] == "unavailable"
        else:
            assert steps["announce"]["status"] == "ok", steps["announce"]
        assert site.matrix.public_hostname in steps["instructions"]["output"]
        assert sync_frozen(site.state_dir)
        again = planb(drill_lab, "failover", "activate", "--reason", "again", "--yes")
        assert again.exit_code == 0 and "already active" in again.output
        status = as_json(planb(drill_lab, "failover", "status", "--json"))
        assert status["mode"] == "active" and status["sync_frozen"]
    finally:
        back = planb(drill_lab, "failover", "deactivate", "--reason", "test over", "--yes",
                     "--json")
        reconnect_host(ctx(drill_lab), HostArgs("primary"))
    assert back.exit_code == 0, back.output
    ended = as_json(back)
    assert ended["state"]["mode"] == "standby" and ended["incident_duration_seconds"] > 0
    assert not sync_frozen(site.state_dir)
    assert planb(drill_lab, "report", "verify").exit_code == 0
