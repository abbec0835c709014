"""planb failover on the deployed lab with the primary host stopped (powered off, disk kept):
activation completes, the announcement reaches sampled agents, deactivation returns to
standby; then the same as a drill (primary-stopped)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from planb.actions import sampling
from planb.mode import StateFile, sync_frozen
from planb.verify.announcement_probe import check_announcement
from planb.verify.probes import run_probes
from tests.integration.conftest import LabSession
from tests.integration.test_drills_scenarios import (
    assert_recorded,
    assert_sampled_agents_saw_the_announcement,
    drill_lab,
    planb,
    run_drill,
)

pytestmark = pytest.mark.lab
__all__ = ["drill_lab"]
MARK = "/root/planb-disk-kept"


def as_json(result: Any) -> Any:
    return json.loads(result.stdout[result.stdout.index("{"):])


def host_status(session: LabSession, name: str) -> dict[str, Any]:
    listed = planb(session, "lab", "status", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout[listed.stdout.index("["):])
    return next(h for h in rows if h["name"] == name)  # type: ignore[no-any-return]


def test_activate_with_the_primary_host_stopped_then_deactivate(drill_lab: LabSession) -> None:
    site, lab = drill_lab.site, drill_lab.lab
    refused = planb(drill_lab, "failover", "activate", "--reason", "test")
    assert refused.exit_code == 2 and "--yes" in refused.output  # no terminal to confirm on
    assert StateFile(site.state_dir).load().mode == "standby"
    assert lab.run_on("primary", ["sh", "-c", f"echo kept > {MARK}"]).returncode == 0
    stopped = planb(drill_lab, "lab", "stop", "primary")
    try:
        assert stopped.exit_code == 0 and "powered off" in stopped.output, stopped.output
        off = host_status(drill_lab, "primary")
        assert off["process"] == "stopped" and "disk kept" in off["system"]
        assert lab.run_on("primary", ["true"], timeout=15).returncode == 255
        done = planb(drill_lab, "failover", "activate", "--reason", "primary down (test)",
                     "--yes", "--json")
        assert done.exit_code == 0, done.output
        result = as_json(done)
        assert result["changed"] and result["state"]["mode"] == "active"
        steps = {s["name"]: s for s in result["steps"]}
        assert [steps[n]["status"] for n in ("preflight", "freeze-sync", "flip", "announce")
                ] == ["ok"] * 4, steps
        assert site.matrix.public_hostname in steps["instructions"]["output"]
        assert sync_frozen(site.state_dir)
        again = planb(drill_lab, "failover", "activate", "--reason", "again", "--yes")
        assert again.exit_code == 0 and "already active" in again.output
        status = as_json(planb(drill_lab, "failover", "status", "--json"))
        assert status["mode"] == "active" and status["sync_frozen"]

        # The announcement reaches a seeded sample of agents, who also message each other
        # in one room of 20 (more than Synapse's default timeline of 10 events).
        incident = StateFile(site.state_dir).load().incident_id
        assert incident
        sample = sampling.choose(site, 20, sampling.seed_for(incident), source="lab-agents")
        accounts = [(a.login, a.password) for a in sample.accounts]
        seen = check_announcement(site, accounts, incident, timeout=60)
        assert len(seen) == 20 and all(s.ok for s in seen), [s.detail for s in seen if not s.ok]
        ring = run_probes(site, accounts, timeout=90)
        assert all(r.ok for r in ring), [r.detail for r in ring if not r.ok]
    finally:
        back = planb(drill_lab, "failover", "deactivate", "--reason", "test over", "--yes",
                     "--json")
        started = planb(drill_lab, "lab", "start", "primary")
    assert back.exit_code == 0, back.output
    ended = as_json(back)
    assert ended["state"]["mode"] == "standby" and ended["incident_duration_seconds"] > 0
    assert not sync_frozen(site.state_dir)
    assert planb(drill_lab, "report", "verify").exit_code == 0
    assert started.exit_code == 0, started.output
    assert host_status(drill_lab, "primary")["process"] == "running"
    # Same address, same disk: the file written before the stop, and the directory, are there.
    assert lab.run_on("primary", ["cat", MARK]).stdout.strip() == "kept"
    assert lab.run_on("primary", ["systemctl", "is-active", "slapd"]).returncode == 0


def test_primary_stopped_drill_passes_and_boots_the_primary_again(
        drill_lab: LabSession) -> None:
    code, summary, payload = run_drill(drill_lab, "primary-stopped")
    assert code == 0 and summary["outcome"] == "pass", summary["findings"]
    assert 0 < payload["rto"]["seconds"] <= payload["objective"]["rto_seconds"]
    assert_sampled_agents_saw_the_announcement(payload)
    fault = next(s for s in payload["run"] if s["action"] == "lab.stop_host")
    assert "powered off" in fault["output"]
    assert [s["action"] for s in payload["rollbacks"]] == ["lab.start_host",
                                                           "failover.deactivate"]
    assert all(s["status"] == "ok" for s in payload["rollbacks"])
    assert drill_lab.lab.run_on("primary", ["true"]).returncode == 0
    assert_recorded(drill_lab, payload)
    print(f"primary-stopped: RTO {payload['rto']['seconds']:.1f} s, "
          f"duration {payload['duration_seconds']:.1f} s")
