"""Every service heals itself (issue 13), on the lab.

While the fallback is active (activated through the CLI, deactivated whatever happens),
each long-running service the playbooks install has its main process killed with
SIGKILL in turn; systemd must bring it back by itself (a new main PID, active, one
more automatic restart counted) and planb's probes (LDAP binds, Matrix logins and
messages through nginx, the public pages) must pass again. Then the other promise:
a unit systemd gave up on (a crash loop past its start limit) and one left stopped are
each started once by 'planb failover activate''s preflight, which says so in its
output and journal, and the activation succeeds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from planb.actions.stack import ProbeArgs, probes_run
from planb.engine.actions import ActionContext
from planb.inventory import hosts_in
from tests.integration.conftest import LabSession
from tests.integration.lab_state import planb_cli

pytestmark = pytest.mark.lab

#: (inventory group, unit): every long-running service of the fallback.
SERVICES = (
    ("fallback_directory", "slapd"),
    ("fallback_messaging", "postgresql@15-main"),
    ("fallback_messaging", "synapse"),
    ("fallback_proxy", "nginx"),
    ("fallback_proxy", "coturn"),
)
COME_BACK_SECONDS = 90
PROBES_SECONDS = 120


@dataclass(frozen=True)
class Unit:
    """What systemd says of a unit: state, main PID, automatic restarts so far."""

    state: str
    pid: int
    restarts: int


def host_of(lab: LabSession, group: str) -> str:
    return hosts_in(lab.site, group)[0].name


def unit(lab: LabSession, host: str, name: str) -> Unit:
    out = lab.lab.run_on(host, ["systemctl", "show", "--property=ActiveState,MainPID,NRestarts",
                                name])
    shown = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return Unit(shown.get("ActiveState", ""), int(shown.get("MainPID") or 0),
                int(shown.get("NRestarts") or 0))


def sh(lab: LabSession, host: str, command: str) -> str:
    done = lab.lab.run_on(host, ["sh", "-c", command])
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


def wait_for(what: str, seconds: float, probe):  # type: ignore[no-untyped-def]
    """Call ``probe()`` every second until it returns something true; that value."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(1)


def probes_pass(lab: LabSession) -> str | None:
    """planb's probe round (as drills run it): its output when every probe passed."""
    ctx = ActionContext(site=lab.site, operator="test", purpose="services heal lab test",
                        deadline=time.monotonic() + 90)
    result = probes_run(ctx, ProbeArgs(sample=4))
    return result.output if result.ok else None


@pytest.fixture
def activated(synced_lab: LabSession) -> Iterator[LabSession]:
    code, out = planb_cli(synced_lab, "failover", "activate", "--reason",
                          "integration tests: services heal themselves", "--yes")
    assert code == 0, out
    try:
        yield synced_lab
    finally:
        code, out = planb_cli(synced_lab, "failover", "deactivate", "--reason",
                              "integration tests: services heal done", "--yes")
        assert code == 0, out


def test_each_service_comes_back_after_sigkill_while_active(activated: LabSession) -> None:
    lab = activated
    assert wait_for("probes before any kill", PROBES_SECONDS, lambda: probes_pass(lab))
    measured: list[str] = []
    for group, name in SERVICES:
        host = host_of(lab, group)
        before = unit(lab, host, name)
        assert before.state == "active" and before.pid > 0, (name, before)
        start = time.monotonic()
        sh(lab, host, f"systemctl kill --kill-whom=main -s KILL {name}")
        try:
            after = wait_for(f"{name} back on {host} after SIGKILL", COME_BACK_SECONDS,
                             lambda h=host, n=name, old=before.pid: (
                                 u if (u := unit(lab, h, n)).state == "active"
                                 and u.pid not in (0, old) else None))
        except AssertionError:  # the next tests need it: start it by hand, then fail
            lab.lab.run_on(host, ["sh", "-c", f"systemctl reset-failed {name}; "
                                              f"systemctl start {name}"])
            raise
        back = time.monotonic() - start
        # systemd brought it back (Restart=), not something else starting it.
        assert after.restarts == before.restarts + 1, (name, before, after)
        assert wait_for(f"probes after {name} came back", PROBES_SECONDS,
                        lambda: probes_pass(lab))
        measured.append(f"{name}: active again in {back:.1f} s, probes pass "
                        f"{time.monotonic() - start:.1f} s after the kill")
        print(measured[-1])


def crash_loop_until_failed(lab: LabSession, host: str, name: str) -> int:
    """Kill ``name`` each time systemd restarts it until systemd gives up; the kills."""
    kills = 0
    while (now := unit(lab, host, name)).state != "failed":
        assert kills < 30, f"systemd never gave up on {name}: {now}"
        if now.state == "active" and now.pid:
            sh(lab, host, f"systemctl kill --kill-whom=main -s KILL {name}")
            kills += 1
        time.sleep(0.3)
    return kills


def test_preflight_starts_a_failed_and_a_stopped_unit_once(synced_lab: LabSession) -> None:
    lab = synced_lab
    proxy = host_of(lab, "fallback_proxy")
    try:
        kills = crash_loop_until_failed(lab, proxy, "nginx")
        assert kills > 1, kills  # systemd restarted it, then gave up (start limit)
        sh(lab, proxy, "systemctl stop coturn")
        assert unit(lab, proxy, "coturn").state == "inactive"
        code, out = planb_cli(lab, "failover", "activate", "--reason",
                              "integration tests: preflight starts units once", "--yes",
                              "--json")
        assert code == 0, out
        try:
            done = json.loads(out[out.index("{"):])
            preflight = next(s for s in done["steps"] if s["name"] == "preflight")
            assert preflight["status"] == "ok", preflight
            said = preflight["output"]
            assert f"started nginx on {proxy} once (it was failed): now active" in said, said
            assert f"started coturn on {proxy} once (it was inactive): now active" in said, said
            journal = done["journal"]
            assert journal and "started nginx on" in Path(journal).read_text(encoding="utf-8")
            assert unit(lab, proxy, "nginx").state == "active"
            assert unit(lab, proxy, "coturn").state == "active"
            print(f"nginx failed after {kills} kills; preflight said: "
                  + said.splitlines()[1])
        finally:
            code, out = planb_cli(lab, "failover", "deactivate", "--reason",
                                  "integration tests: preflight start-once done", "--yes")
            assert code == 0, out
    finally:
        for name in ("nginx", "coturn"):
            lab.lab.run_on(proxy, ["sh", "-c", f"systemctl reset-failed {name}; "
                                               f"systemctl start {name}"])
