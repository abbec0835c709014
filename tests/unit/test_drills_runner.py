"""The drill runner with real in-process actions: order, restore, RTO, outcomes, journals."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from planb.config import SiteConfig
from planb.drills.runner import DrillResult, DrillRunner
from planb.drills.scenario import Scenario, parse_scenario
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult, NoArgs, ProbeResult
from planb.errors import DrillDeviated, Interrupted, PlanbError
from planb.reports.keys import KeyPaths, init_keys, load_signer
from planb.reports.store import JournalStore
from planb.reports.verify import verify_directory
from tests.unit.test_drills_scenario import make_site


class Clock:
    """A monotonic clock the test's actions move forward."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Cost:
    """Arguments of the test actions: how many (fake) seconds they take."""

    seconds: float = 0.0


@dataclass
class World:
    """What the test actions act on: a service that can be broken and repaired."""

    clock: Clock
    up: bool = True
    active: bool = False
    verify_failures_left: int = 0
    calls: list[str] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    interrupt: set[str] = field(default_factory=set)
    sigint: set[str] = field(default_factory=set)

    def registry(self) -> ActionRegistry:
        registry = ActionRegistry()

        def act(name: str, effect):  # type: ignore[no-untyped-def]
            def run(ctx: ActionContext, args: Cost) -> ActionResult:
                self.calls.append(name)
                self.clock.now += args.seconds
                if name in self.sigint:
                    os.kill(os.getpid(), signal.SIGINT)
                if name in self.interrupt:
                    raise KeyboardInterrupt
                if name in self.fail:
                    raise PlanbError(f"{name} broke (password=hunter2)")
                return effect()
            registry.action(name, summary=name, args=Cost)(run)

        act("t.check_up", lambda: ActionResult(self.up, f"up={self.up}"))
        act("t.break", lambda: self._set(up=False))
        act("t.repair", lambda: self._set(up=True))
        act("t.activate", lambda: self._set(active=True))
        act("t.deactivate", lambda: self._set(active=False))
        act("t.probe", self._probe)
        registry.unavailable("t.future", summary="later", needs="the stack", args=NoArgs)
        return registry

    def _set(self, **changes: bool) -> ActionResult:
        for key, value in changes.items():
            setattr(self, key, value)
        return ActionResult(True, f"{changes} token: s3cr3t-value")

    def _probe(self) -> ActionResult:
        if self.verify_failures_left > 0:
            self.verify_failures_left -= 1
            return ActionResult(True, "round", (ProbeResult("login", False, 0.1, "HTTP 502",
                                                            "agent-1"),))
        return ActionResult(self.active, "probes", (ProbeResult("login", True, 0.1, "ok",
                                                                "agent-1"),))


SCENARIO = """\
name: t
description: test scenario
verify_timeout: 60
verify_interval: 5
steady_state:
  - {action: t.check_up}
fault:
  - {action: t.break, with: {seconds: 10}}
activate:
  - {action: t.activate, with: {seconds: 2}}
verify:
  - {action: t.probe, with: {seconds: 1}}
restore:
  - {action: t.repair}
  - {action: t.deactivate}
steady_state_after:
  - {action: t.check_up}
"""


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    site = make_site(tmp_path)
    init_keys(KeyPaths.for_state_dir(site.state_dir), None)
    return site


@pytest.fixture
def world() -> World:
    return World(Clock())


def drill(site: SiteConfig, world: World, text: str = SCENARIO, **kwargs: object
          ) -> tuple[DrillRunner, Scenario]:
    registry = world.registry()
    store = JournalStore.for_state_dir(site.state_dir,
                                       load_signer(KeyPaths.for_state_dir(site.state_dir)))
    runner = DrillRunner(site, registry, store, operator="agnès", clock=world.clock,
                         sleep=world.clock.sleep, **kwargs)  # type: ignore[arg-type]
    return runner, parse_scenario(text, "t.yml", registry)


def payload(result: DrillResult) -> dict:  # type: ignore[type-arg]
    return json.loads(result.journal.path.read_bytes())["payload"]  # type: ignore[no-any-return]


def verified(site: SiteConfig) -> int:
    keys = [load_signer(KeyPaths.for_state_dir(site.state_dir)).public_key]
    check = verify_directory(site.state_dir / "journals", keys)
    assert check.ok, check.failure
    return len(check.journals)


def test_passing_drill_runs_phases_in_order_and_measures_rto(site: SiteConfig,
                                                             world: World) -> None:
    world.verify_failures_left = 2
    runner, scenario = drill(site, world)
    result = runner.run(scenario)
    result.raise_for_outcome()
    assert result.outcome == "pass"
    assert world.calls == ["t.check_up", "t.break", "t.activate", "t.probe", "t.probe",
                           "t.probe", "t.repair", "t.deactivate", "t.check_up"]
    # fault 10 + activate 2 + three rounds of 1 with two pauses of 5.
    assert result.rto_seconds == pytest.approx(25)
    data = payload(result)
    assert data["status"] == "pass" and data["deviated"] is False
    assert data["rto"]["seconds"] == 25 and data["rto"]["met"] is True
    assert data["objective"] == {"rto_seconds": 60, "source": "site"}
    assert [r["passed"] for r in data["verify_rounds"]] == [False, False, True]
    assert [s["phase"] for s in data["run"]] == ["fault", "activate", "verify"]
    assert [s["action"] for s in data["rollbacks"]] == ["t.repair", "t.deactivate"]
    assert data["steady_states"]["before"]["steady_state_met"] is True
    assert data["steady_states"]["after"]["steady_state_met"] is True
    assert data["operator"] == "agnès"
    assert data["run"][2]["probes"][0]["subject"] == "agent-1"
    assert data["versions"]["planb"] and "synapse" in data["versions"]
    assert "s3cr3t-value" not in result.journal.path.read_text("utf-8")
    assert data["started_at"] <= data["ended_at"]
    assert verified(site) == 1


def test_rto_over_objective_deviates_with_exit_4(site: SiteConfig, world: World) -> None:
    runner, scenario = drill(site, world, SCENARIO.replace(
        "verify_timeout", "objectives: {rto_seconds: 12}\nverify_timeout"))
    result = runner.run(scenario)
    assert result.outcome == "deviated" and result.rto_seconds == pytest.approx(13)
    assert "RTO 13.0 s exceeds the objective of 12 s" in result.findings[0]
    with pytest.raises(DrillDeviated) as caught:
        result.raise_for_outcome()
    assert caught.value.exit_code == 4
    assert payload(result)["objective"] == {"rto_seconds": 12, "source": "scenario"}


def test_verify_never_passing_deviates_and_still_restores(site: SiteConfig,
                                                          world: World) -> None:
    world.verify_failures_left = 1000
    runner, scenario = drill(site, world)
    result = runner.run(scenario)
    assert result.outcome == "deviated" and result.rto_seconds is None
    assert "verify did not pass within 60 s" in result.findings[0]
    assert "HTTP 502" in result.findings[0]
    assert world.up and not world.active  # restore ran
    data = payload(result)
    assert len(data["verify_rounds"]) == 10  # rounds of 1 s + 5 s pauses within 60 s
    assert data["rto"] == {"seconds": None, "met": None, "fault_started_at":
                           data["rto"]["fault_started_at"], "recovered_at": None}


def test_failed_steady_state_means_failed_without_fault(site: SiteConfig, world: World) -> None:
    world.up = False
    runner, scenario = drill(site, world)
    result = runner.run(scenario)
    assert result.outcome == "failed"
    assert "steady state not met before the fault" in result.findings[0]
    assert "t.break" not in world.calls and "t.repair" in world.calls
    data = payload(result)
    assert [s["status"] for s in data["run"]] == ["skipped", "skipped", "skipped"]
    assert data["steady_states"]["after"]["steady_state_met"] is None
    with pytest.raises(PlanbError) as caught:
        result.raise_for_outcome()
    assert caught.value.exit_code == 1


def test_failing_fault_fails_and_restores(site: SiteConfig, world: World) -> None:
    world.fail.add("t.break")
    runner, scenario = drill(site, world)
    result = runner.run(scenario)
    assert result.outcome == "failed"
    assert "the fault could not be injected" in result.findings[0]
    assert world.calls[-3:] == ["t.repair", "t.deactivate", "t.check_up"]
    data = payload(result)
    assert data["run"][0]["status"] == "error"
    assert "hunter2" not in data["run"][0]["error"]
    assert verified(site) == 1


def test_failed_activation_deviates(site: SiteConfig, world: World) -> None:
    world.fail.add("t.activate")
    runner, scenario = drill(site, world)
    result = runner.run(scenario)
    assert result.outcome == "deviated" and "activation failed" in result.findings[0]
    assert "t.probe" not in world.calls and "t.deactivate" in world.calls


def test_failing_restore_step_fails_the_drill_but_others_still_run(site: SiteConfig,
                                                                    world: World) -> None:
    world.fail.add("t.repair")
    runner, scenario = drill(site, world)
    result = runner.run(scenario)
    assert result.outcome == "failed"
    assert any("restore incomplete" in f for f in result.findings)
    assert "t.deactivate" in world.calls
    assert any("steady state not back" in f for f in result.findings)


def test_ctrl_c_restores_and_journals_interrupted(site: SiteConfig, world: World) -> None:
    world.interrupt.add("t.activate")
    runner, scenario = drill(site, world)
    with pytest.raises(Interrupted) as caught:
        runner.run(scenario)
    assert caught.value.exit_code == 130
    assert world.up and "t.deactivate" in world.calls
    assert world.calls[-1] == "t.deactivate"  # no steady state after an interrupt
    journals = sorted((site.state_dir / "journals").glob("0*-drill-*.json"))
    data = json.loads(journals[-1].read_bytes())["payload"]
    assert data["status"] == "interrupted"
    assert data["run"][1]["error"] == "interrupted by the operator (Ctrl-C)"
    assert verified(site) == 1


@pytest.fixture
def terminal_sigint() -> Iterator[None]:
    """Ctrl-C as at a terminal (Python's own handler), even when the tests run as a
    background job, which starts with SIGINT ignored; the old disposition put back."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("terminal_sigint")
def test_real_sigint_during_verify_restores_and_a_second_one_is_ignored(
        site: SiteConfig, world: World) -> None:
    world.sigint |= {"t.probe", "t.repair"}
    runner, scenario = drill(site, world)
    with pytest.raises(Interrupted):
        runner.run(scenario)
    assert world.calls[-2:] == ["t.repair", "t.deactivate"]  # restore went on after SIGINT
    assert world.up and not world.active
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_unavailable_action_fails_before_anything_runs(site: SiteConfig, world: World) -> None:
    runner, scenario = drill(site, world, SCENARIO.replace(
        "  - {action: t.probe, with: {seconds: 1}}", "  - {action: t.future}"))
    result = runner.run(scenario)
    assert result.outcome == "failed" and world.calls == []
    assert "t.future (needs the stack)" in result.findings[0]
    assert {s["status"] for s in payload(result)["run"]} == {"skipped"}


def test_collector_errors_do_not_lose_the_journal(site: SiteConfig, world: World) -> None:
    from planb.drills.records import Collectors, Footprint

    def broken(site: SiteConfig) -> dict[str, str | None]:
        raise OSError("ssh: no route")

    collectors = Collectors(versions=(broken,),
                            footprint=(lambda s: [Footprint("fallback", "synapse", 1024, 2048)],))
    runner, scenario = drill(site, world, collectors=collectors)
    data = payload(runner.run(scenario))
    assert data["versions"] == {"planb": None, "playbooks_commit": None, "synapse": None,
                                "slapd": None, "client": None}
    assert data["collector_errors"] == ["test_collector_errors_do_not_lose_the_journal.<locals>"
                                        ".broken: ssh: no route"]
    assert data["footprint"][0]["memory_bytes"] == 1024
