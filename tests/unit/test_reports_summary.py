"""What 'planb report list' shows of a journal: flat payloads and drill payloads."""

from __future__ import annotations

from planb.reports.summary import summarise


def test_drill_payload_gives_scenario_status_rto_and_objective() -> None:
    payload = {"format": "planb-drill/1", "status": "pass",
               "scenario": {"name": "primary-outage", "description": "…", "sha256": "ab"},
               "objective": {"rto_seconds": 60, "source": "site"},
               "rto": {"seconds": 41.4, "met": True}}
    summary = summarise(payload)
    assert (summary.scenario, summary.status) == ("primary-outage", "pass")
    assert summary.rto_text == "41.4 s / 60 s"


def test_flat_payload_and_missing_or_odd_fields() -> None:
    summary = summarise({"scenario": "messaging-crash", "status": "deviated",
                         "rto_seconds": 75, "rto_objective_seconds": 60})
    assert summary.rto_text == "75 s / 60 s" and summary.scenario == "messaging-crash"
    odd = summarise({"scenario": {"name": 3}, "rto": "fast", "objective": [60]})
    assert odd.scenario is None and odd.rto_text == ""
