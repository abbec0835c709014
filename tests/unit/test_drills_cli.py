"""planb drill / planb failover on a site without a lab (nothing is contacted), and the
runner's observer that the live view listens to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.drill_cmd import LiveDrill
from planb.cli.main import app
from planb.config import SiteConfig
from planb.drills.runner import StepEvent
from tests.unit.test_drills_runner import Clock, World, drill, site  # noqa: F401

runner = CliRunner()


@pytest.fixture
def init_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "site"])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "site")
    return tmp_path / "site" / ".planb"


def test_drill_list_says_what_cannot_run_off_the_lab(init_site: Path) -> None:
    result = runner.invoke(app, ["drill", "list", "--json"])
    assert result.exit_code == 0, result.output
    scenarios = {s["name"]: s for s in json.loads(result.stdout)["scenarios"]}
    assert set(scenarios) >= {"primary-outage", "messaging-crash", "directory-crash"}
    outage = scenarios["primary-outage"]
    assert not outage["runnable"]
    assert any(u.startswith("lab.isolate_host (needs a lab site") for u in outage["unavailable"])
    assert outage["steps"]["verify"] == ["sampled agents work on the fallback"]
    table = runner.invoke(app, ["drill", "list"])
    assert table.exit_code == 0 and "primary-outage" in table.output


def test_drill_run_needs_a_key_and_a_known_scenario(init_site: Path) -> None:
    nokey = runner.invoke(app, ["drill", "run", "--scenario", "primary-outage"])
    assert nokey.exit_code == 2 and "planb keys init" in nokey.output
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    unknown = runner.invoke(app, ["drill", "run", "--scenario", "flood"])
    assert unknown.exit_code == 2 and "known: controller-lost, directory-crash" in unknown.output
    help_text = runner.invoke(app, ["drill", "run", "--help"]).output
    assert "4 DEVIATED" in help_text and "130" in help_text


def test_failover_status_and_refusals_change_nothing(init_site: Path) -> None:
    status = runner.invoke(app, ["failover", "status", "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["mode"] == "standby"
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    unconfirmed = runner.invoke(app, ["failover", "activate", "--reason", "test"])
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.output
    noreason = runner.invoke(app, ["failover", "activate", "--yes"])
    assert noreason.exit_code == 2 and "--reason" in noreason.output
    idle = runner.invoke(app, ["failover", "deactivate", "--reason", "x", "--yes"])
    assert idle.exit_code == 0 and "already standby" in idle.output
    after = json.loads(runner.invoke(app, ["failover", "status", "--json"]).stdout)
    assert after["mode"] == "standby" and not after["sync_frozen"]
    assert [e["result"] for e in after["recent"]] == ["requested", "unchanged"]


def test_the_observer_sees_every_step_start_and_end(site: SiteConfig) -> None:  # noqa: F811
    world = World(Clock())
    world.verify_failures_left = 1
    events: list[StepEvent] = []
    drill_runner, scenario = drill(site, world)
    view = LiveDrill(scenario)

    def observe(event: StepEvent) -> None:
        events.append(event)
        view(event)

    drill_runner.observer = observe
    result = drill_runner.run(scenario)
    assert result.outcome == "pass"
    ends = [(e.step.phase, e.round, e.record.status) for e in events if e.kind == "end"
            if e.record is not None]
    assert ends == [("steady_state", None, "ok"), ("fault", None, "ok"),
                    ("activate", None, "ok"), ("verify", 1, "failed"), ("verify", 2, "ok"),
                    ("restore", None, "ok"), ("restore", None, "ok"),
                    ("steady_state_after", None, "ok")]
    assert sum(e.kind == "start" for e in events) == len(ends)
    assert {row["status"] for row in view.rows.values()} == {"ok"}
    assert view.rows[("verify", 0)]["round"] == 2
