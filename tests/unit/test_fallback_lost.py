"""The ``fallback-lost`` drill without a lab: its scenario, the prepare phase, the RPO the
traffic measures, and how the journal and the report carry it (issue 13)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from planb.actions.traffic import Sent, measures, rpo_lines
from planb.cli.wiring import default_registry
from planb.config import SiteConfig
from planb.drills.runner import DrillResult, DrillRunner
from planb.drills.scenario import load_scenario, parse_scenario
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult, Measure
from planb.errors import PlanbError
from planb.reports.keys import KeyPaths, init_keys, load_signer
from planb.reports.render.model import build_view
from planb.reports.store import JournalStore
from tests.unit.test_drills_runner import Clock
from tests.unit.test_drills_scenario import make_site
from tests.unit.test_reports_render_model import doc_of

LOST_AT = 10_000.0
BACKUP_AT = 9_960.0


def sends(*spec: tuple[int, float, bool]) -> list[Sent]:
    return [Sent(n, at, ok) for n, at, ok in spec]


# -- the RPO from the sends and what is read back ---------------------------------------

def test_rpo_counts_messages_acknowledged_before_the_loss_and_missing() -> None:
    """#3 and #4 were acknowledged after the backup and before the loss, and are gone:
    2 messages; the last present (#2) was 30 s before the loss. #5 failed (not sent),
    #6 came after the loss (not counted either way)."""
    sent = sends((1, 9_950, True), (2, 9_970, True), (3, 9_980, True), (4, 9_990, True),
                 (5, 9_995, False), (6, 10_100, True))
    figures = measures(sent, {1, 2, 6}, LOST_AT, BACKUP_AT, True)
    assert figures["rpo_messages"] == 2 and figures["rpo_seconds"] == 30.0
    assert figures["sent_before_loss"] == 4 and figures["lost_before_backup"] == 0
    lines = rpo_lines(sent, {1, 2, 6}, LOST_AT, BACKUP_AT)
    assert "4 acknowledged, 2 missing" in lines[0] and "30.0 s before the loss" in lines[0]
    assert "first message acknowledged again 100.0 s after the loss" in lines[2]


def test_a_message_from_before_the_backup_missing_is_counted_apart() -> None:
    sent = sends((1, 9_950, True), (2, 9_970, True))
    figures = measures(sent, {2}, LOST_AT, BACKUP_AT, True)
    assert figures["lost_before_backup"] == 1 and figures["rpo_messages"] == 1
    assert measures(sent, {2}, LOST_AT, None, True)["lost_before_backup"] is None


def test_nothing_read_back_gives_no_rpo_seconds() -> None:
    figures = measures(sends((1, 9_950, True)), set(), LOST_AT, BACKUP_AT, False)
    assert figures["rpo_seconds"] is None and figures["rpo_messages"] == 1
    assert figures["sessions_kept"] is False
    assert "1 missing after the restore; none of them is there" in rpo_lines(
        sends((1, 9_950, True)), set(), LOST_AT, BACKUP_AT)[0]


# -- the scenario ------------------------------------------------------------------------

def test_shipped_scenario_loads_with_every_action_available_on_a_lab(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    registry = default_registry(site, JournalStore.for_state_dir(site.state_dir))
    scenario = load_scenario("fallback-lost", site.state_dir, registry)
    assert scenario.rto_objective == "restore_rto_seconds" and scenario.rto_seconds is None
    assert [s.action for s in scenario.phase("prepare")] == [
        "failover.activate", "traffic.start", "traffic.wait", "backup.now", "traffic.wait"]
    assert [s.action for s in scenario.phase("fault")] == ["lab.destroy_host"]
    assert [s.action for s in scenario.phase("activate")] == [
        "lab.rebuild_host", "deploy.run", "backup.restore"]
    assert [s.action for s in scenario.phase("restore")][0] == "traffic.stop"
    assert registry.missing(scenario.actions) == []


def test_rebuild_and_destroy_are_refused_off_a_lab(tmp_path: Path) -> None:
    site = make_site(tmp_path, lab=False)
    registry = default_registry(site, JournalStore.for_state_dir(site.state_dir))
    assert {a.name for a in registry.missing(["lab.destroy_host", "lab.rebuild_host"])} == {
        "lab.destroy_host", "lab.rebuild_host"}


# -- the runner: prepare, measures, RPO findings ---------------------------------------

SCENARIO = """\
name: t
description: test
objectives: {rto_objective: restore_rto_seconds}
verify_timeout: 60
verify_interval: 5
steady_state:
  - {action: t.step}
prepare:
  - {action: t.setup}
fault:
  - {action: t.lose}
activate:
  - {action: t.step}
verify:
  - {action: t.step}
restore:
  - {action: t.measure}
steady_state_after:
  - {action: t.step}
"""


@dataclass
class Fakes:
    """What the test actions do: the figures t.measure hands back, t.setup breaking."""

    figures: dict[str, Measure]
    setup_fails: bool = False

    def registry(self, calls: list[str]) -> ActionRegistry:
        registry = ActionRegistry()

        def make(name: str):  # type: ignore[no-untyped-def]
            def run(ctx: ActionContext, args: object) -> ActionResult:
                calls.append(name)
                if name == "t.setup" and self.setup_fails:
                    raise PlanbError("no traffic")
                if name == "t.measure":
                    return ActionResult(True, "measured", measures=self.figures)
                return ActionResult(True, name)
            registry.action(name, summary=name)(run)  # type: ignore[arg-type]

        for name in ("t.step", "t.setup", "t.lose", "t.measure"):
            make(name)
        return registry


def run(tmp_path: Path, fakes: Fakes, calls: list[str]) -> tuple[DrillResult, dict]:  # type: ignore[type-arg]
    site: SiteConfig = make_site(tmp_path)
    init_keys(KeyPaths.for_state_dir(site.state_dir), None)
    store = JournalStore.for_state_dir(site.state_dir,
                                       load_signer(KeyPaths.for_state_dir(site.state_dir)))
    registry = fakes.registry(calls)
    clock = Clock()
    runner = DrillRunner(site, registry, store, operator="op", clock=clock, sleep=clock.sleep)
    result = runner.run(parse_scenario(SCENARIO, "t.yml", registry))
    return result, json.loads(result.journal.path.read_bytes())["payload"]


GOOD = {"rpo_seconds": 4.0, "rpo_messages": 2, "sent_before_loss": 40,
        "lost_before_backup": 0, "sessions_kept": True}


def test_prepare_runs_before_the_fault_and_the_rpo_is_journaled(tmp_path: Path) -> None:
    calls: list[str] = []
    result, data = run(tmp_path, Fakes(dict(GOOD)), calls)
    assert calls == ["t.step", "t.setup", "t.lose", "t.step", "t.step", "t.measure", "t.step"]
    assert result.outcome == "pass", result.findings
    assert [s["phase"] for s in data["run"]] == ["prepare", "fault", "activate", "verify"]
    # The site's restore objective (3600 s by default), not the failover's 60 s.
    assert result.objective_seconds == 3600
    assert data["objective"]["site_key"] == "restore_rto_seconds"
    assert data["objective"]["rpo_seconds"] == 900
    assert data["rpo"] == {"seconds": 4.0, "messages": 2, "objective_seconds": 900,
                           "met": True, "sent_before_loss": 40, "lost_before_backup": 0,
                           "sessions_kept": True}
    assert data["rollbacks"][0]["measures"]["rpo_messages"] == 2
    view = build_view(doc_of(result.journal))
    rows = {o.name: o for o in view.objectives}
    assert rows["Data loss (RPO)"].measured == "4.00 s, 2 messages lost"
    assert rows["Data loss (RPO)"].target == "≤ 900 s (15 min 0 s)"
    assert rows["Data loss (RPO)"].outcome.tone == "pass"
    assert rows["Messages sent before the backup, after the restore"].measured == "0 missing"


@pytest.mark.parametrize(("change", "finding"), [
    ({"rpo_seconds": 901.5}, "RPO 901.5 s exceeds the objective of 900 s (2 messages lost)"),
    ({"lost_before_backup": 3}, "3 messages sent before the backup are missing after the "
                                "restore"),
    ({"sessions_kept": False}, "agents' sessions did not survive the restore"),
])
def test_a_bad_rpo_deviates(tmp_path: Path, change: dict[str, Measure], finding: str) -> None:
    result, data = run(tmp_path, Fakes(GOOD | change), [])
    assert result.outcome == "deviated"
    assert any(finding in f for f in result.findings), result.findings
    view = build_view(doc_of(result.journal))
    tones = {o.name: o.outcome.tone for o in view.objectives}
    if "rpo_seconds" in change:
        assert data["rpo"]["met"] is False and tones["Data loss (RPO)"] == "fail"
    if "lost_before_backup" in change:
        assert tones["Messages sent before the backup, after the restore"] == "fail"


def test_a_failed_prepare_fails_the_drill_before_the_fault(tmp_path: Path) -> None:
    calls: list[str] = []
    result, data = run(tmp_path, Fakes(dict(GOOD), setup_fails=True), calls)
    assert result.outcome == "failed"
    assert "the scene could not be set before the fault" in result.findings[0]
    assert "t.lose" not in calls and calls[-2:] == ["t.measure", "t.step"]  # restore, after
    assert [s["status"] for s in data["run"]] == ["error", "skipped", "skipped", "skipped"]
