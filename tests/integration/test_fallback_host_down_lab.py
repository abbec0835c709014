"""The ``fallback-host-down`` drill on the HA lab (issue 14): runs last, for good.

While the fallback is active and agents exchange numbered messages, the fallback
host's power is cut (its container killed, disk kept); the hot standby is promoted
(``failover.promote``: pg_promote, Synapse, nginx and coturn started, keepalived
moving the service address). Sampled agents work again through the service address;
the journal records the RTO against objectives.rto_seconds and the RPO (numbered
messages acknowledged before the cut and missing now: goal 0) against
objectives.rpo_seconds. The old host is powered on again and must not take the
service address back (nopreempt). The lab is changed for good (the standby serves,
inventory/planb-promotion.yml records it), hence ``runs_last``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from planb.inventory import FALLBACK_LOST, FALLBACK_PROMOTED, PROMOTION_FILE, load_hosts
from planb.mode import StateFile
from planb.reports.store import journals_dir
from tests.integration import lab_state
from tests.integration.conftest import LabSession
from tests.integration.lab_state import on


def address(session: LabSession) -> str:
    """The site's service address (the HA lab's .30)."""
    found = session.site.fallback.standby.service_address
    assert found, "the HA lab has a service address"
    return found


pytestmark = [pytest.mark.lab, pytest.mark.runs_last]


def steps(payload: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in payload["run"] + payload["rollbacks"] if s["action"] == action]


def test_fallback_host_down_drill_promotes_the_standby_with_no_message_lost(
        ha_lab: LabSession) -> None:
    session = ha_lab
    lab_state.ensure_standby(session)
    promotions = set(journals_dir(session.site.state_dir).glob("*-promotion-*.json"))
    started = time.monotonic()
    code, out = lab_state.planb_cli(session, "drill", "run", "--scenario",
                                    "fallback-host-down", "--json")
    took = time.monotonic() - started
    summary, _ = json.JSONDecoder().raw_decode(out[out.index("{"):])  # warnings may follow
    payload = json.loads(Path(summary["journal"]).read_bytes())["payload"]
    print(f"fallback-host-down: {summary['outcome']} in {took:.0f} s, RTO "
          f"{payload['rto']['seconds']} s, RPO {payload.get('rpo')}")
    for step in payload["run"] + payload["rollbacks"]:
        print(f"  {step['phase']:10} {step['name']}: {step['status']} in "
              f"{step['duration_seconds']:.1f} s")
    assert code == 0 and summary["outcome"] == "pass", (
        summary["findings"], [(s["name"], s["status"], s["error"] or s["output"][-400:])
                              for s in payload["run"] + payload["rollbacks"]
                              if s["status"] != "ok"])

    # The power was cut (disk kept), and the standby promoted in its place.
    [cut] = steps(payload, "lab.power_off")
    assert "fallback (" in cut["output"] and "power cut, disk kept" in cut["output"]
    assert session.lab.host_paths("fallback").upper.is_dir()
    [promoted] = steps(payload, "failover.promote")
    assert "standby promoted in place of fallback" in promoted["output"], promoted["output"]
    assert promoted["measures"]["promote_seconds"] > 0
    [journal] = set(journals_dir(session.site.state_dir).glob("*-promotion-*.json")) \
        - promotions
    promotion = json.loads(journal.read_bytes())["payload"]
    assert promotion["drill"] is True and promotion["result"] == "completed"
    assert promotion["mode"] == "active" and promotion["lag_accepted"] is None
    assert promotion["old_primary_answering"] == [] and promotion["forced"] == []

    # RTO within the site's objective; RPO: nothing acknowledged before the cut lost.
    objectives = session.site.objectives
    assert payload["objective"]["rto_seconds"] == objectives.rto_seconds
    assert payload["rto"]["met"] is True and payload["rto"]["seconds"] > 0
    rpo = payload["rpo"]
    assert rpo["objective_seconds"] == objectives.rpo_seconds and rpo["met"] is True, rpo
    assert rpo["messages"] == 0, rpo
    assert rpo["sent_before_loss"] >= 5 and rpo["sessions_kept"] is True, rpo
    [stopped] = steps(payload, "traffic.stop")
    assert "first message acknowledged again" in stopped["output"], stopped["output"]
    [probes] = steps(payload, "probes.run")
    exchanged = [p for p in probes["probes"] if p["name"] == "matrix.exchange"]
    assert len(exchanged) == 10 and all(p["ok"] for p in exchanged), probes["output"]

    # After: the old host is back on, yet the promoted standby alone holds the address;
    # planb targets the standby; the fallback is in standby mode there; journals verify.
    assert payload["steady_states"]["after"]["steady_state_met"] is True
    [serving] = [s for s in payload["steady_states"]["after"]["probes"]
                 if s["action"] == "ha.serving"]
    assert serving["status"] == "ok", serving
    assert f"standby: holds {address(session)}" in serving["output"], serving["output"]
    assert "fallback: does not hold it" in serving["output"], serving["output"]
    held = on(session, "fallback", "ip -o -4 addr show")
    assert held.returncode == 0 and f" {address(session)}/" not in held.stdout
    assert (session.site.inventory_dir / PROMOTION_FILE).is_file()
    hosts = {h.name: h for h in load_hosts(session.site)}
    assert FALLBACK_PROMOTED in hosts["standby"].groups
    assert hosts["fallback"].groups == (FALLBACK_LOST,)
    assert StateFile(session.site.state_dir).load().mode == "standby"
    code, out = lab_state.planb_cli(session, "report", "verify")
    assert code == 0, out
    code, out = lab_state.planb_cli(session, "report", "export",
                                    Path(summary["journal"]).name, "--format", "md",
                                    "--language", "en")
    assert code == 0 and "Data loss (RPO)" in out, out[-2000:]
