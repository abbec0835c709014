"""The failover preflight's start-once (planb.actions.heal): what it starts, when, how often.

The hosts are a small stand-in for systemd (unit -> state, what a start leads to); the
real units over SSH are the lab's (tests/integration/test_services_heal_lab.py).
"""

from __future__ import annotations

import pytest

from planb.actions.heal import Healer, decide, unit_for
from planb.failover.machine import ACTIVATION_STEPS
from planb.inventory import InventoryHost
from planb.verify.model import CheckResult, Status, VerifyReport

HOST = InventoryHost("fallback", "10.0.0.2", ("fallback_messaging", "fallback_proxy"),
                     {"postgresql_version": "15"})


@pytest.mark.parametrize(("state", "tried", "expected"), [
    ("failed", False, "start"),
    ("inactive", False, "start"),
    ("failed", True, "leave"),       # once, never twice
    ("inactive", True, "leave"),
    ("activating", False, "wait"),   # systemd's auto-restart is on it
    ("activating", True, "wait"),
    ("deactivating", False, "wait"),
    ("reloading", False, "wait"),
    ("active", False, "leave"),
    ("", False, "leave"),            # unknown: host unreachable
    ("unknown", False, "leave"),
])
def test_decide(state: str, tried: bool, expected: str) -> None:
    assert decide(state, tried) == expected


def test_unit_for_names_the_unit_each_service_check_looks_at() -> None:
    assert unit_for("service.postgresql", HOST) == "postgresql@15-main"
    assert unit_for("service.synapse", HOST) == "synapse"
    assert unit_for("service.nginx", HOST) == "nginx"
    assert unit_for("tls.https", HOST) is None
    other = InventoryHost("db", "10.0.0.3", ("fallback_messaging",), {"postgresql_version": "16"})
    assert unit_for("service.postgresql", other) == "postgresql@16-main"


class FakeSystemd:
    """Units' states on one host; ``start`` makes a unit what ``after_start`` says."""

    def __init__(self, states: dict[str, str], after_start: dict[str, str]) -> None:
        self.states = states
        self.after_start = after_start
        self.commands: list[str] = []

    def run(self, host: InventoryHost, command: str) -> tuple[int, str]:
        self.commands.append(command)
        unit = command.split()[-1]
        if command.startswith("systemctl is-active"):
            state = self.states.get(unit, "inactive")
            return (0 if state == "active" else 3), state + "\n"
        self.states[unit] = self.after_start.get(unit, "active")
        ok = self.states[unit] == "active"
        return (0, "") if ok else (1, f"Job for {unit}.service failed.\n")

    def starts(self) -> list[str]:
        return [c for c in self.commands if "systemctl start" in c]


def report(*results: tuple[str, Status]) -> VerifyReport:
    return VerifyReport("lab", "now", 0.1, tuple(CheckResult(name, HOST.name, status, 0.01)
                                                 for name, status in results))


def test_a_failed_unit_is_started_once_and_the_output_says_so() -> None:
    systemd = FakeSystemd({"synapse": "failed", "nginx": "active"}, {})
    healer = Healer([HOST], run=systemd.run)
    failing = report(("service.synapse", "fail"), ("service.nginx", "pass"),
                     ("tls.https", "fail"))
    assert healer.heal(failing)
    assert systemd.starts() == ["systemctl reset-failed synapse; systemctl start synapse"]
    assert healer.done == ["started synapse on fallback once (it was failed): now active"]
    assert not healer.heal(failing)  # started already: never again in this preflight
    assert len(systemd.starts()) == 1


def test_a_unit_that_will_not_start_is_tried_once_then_left() -> None:
    systemd = FakeSystemd({"postgresql@15-main": "inactive"}, {"postgresql@15-main": "failed"})
    healer = Healer([HOST], run=systemd.run)
    failing = report(("service.postgresql", "fail"))
    assert healer.heal(failing)
    assert healer.done == ["tried to start postgresql@15-main on fallback once (it was "
                           "inactive): failed (Job for postgresql@15-main.service failed.)"]
    assert not healer.heal(failing) and len(systemd.starts()) == 1


def test_a_unit_systemd_is_restarting_is_left_to_systemd() -> None:
    systemd = FakeSystemd({"nginx": "activating"}, {})
    healer = Healer([HOST], run=systemd.run)
    assert not healer.heal(report(("service.nginx", "fail")))
    assert systemd.starts() == [] and healer.done == []
    systemd.states["nginx"] = "failed"  # systemd gave up (start limit): now it is ours
    assert healer.heal(report(("service.nginx", "fail")))
    assert len(systemd.starts()) == 1


def test_checked_reruns_the_checks_after_a_start_and_only_then() -> None:
    systemd = FakeSystemd({"coturn": "failed"}, {})
    runs: list[VerifyReport] = [report(("service.coturn", "fail")),
                                report(("service.coturn", "pass"))]
    healer = Healer([HOST], run=systemd.run)
    assert healer.checked(lambda: runs.pop(0)).ok
    assert runs == [] and len(systemd.starts()) == 1
    # Nothing down to start: one run, whatever it says.
    calls = []
    still = report(("tls.https", "fail"))
    assert healer.checked(lambda: calls.append(1) or still) is still and calls == [1]


def test_disabled_healer_runs_the_checks_only() -> None:
    systemd = FakeSystemd({"synapse": "failed"}, {})
    with Healer([HOST], enabled=False, run=systemd.run) as healer:
        failing = report(("service.synapse", "fail"))
        assert healer.checked(lambda: failing) is failing
    assert systemd.commands == [] and healer.done == []


def test_a_login_user_other_than_root_starts_through_sudo() -> None:
    host = InventoryHost("fallback", "10.0.0.2", ("fallback_proxy",), {"ansible_user": "ops"})
    systemd = FakeSystemd({"nginx": "failed"}, {})
    assert Healer([host], run=systemd.run).heal(report(("service.nginx", "fail")))
    assert systemd.starts() == ["sudo -n sh -c 'systemctl reset-failed nginx; "
                                "systemctl start nginx'"]


def test_the_activation_preflight_heals() -> None:
    preflight = next(s for s in ACTIVATION_STEPS if s.name == "preflight")
    assert preflight.action == "verify.checks" and preflight.args.heal
    assert preflight.args.wait_seconds > 0
