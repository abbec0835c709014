"""The shipped drill scenarios on the deployed lab, through the CLI: PASS with an RTO, a
broken fallback ends FAILED naming the check, Ctrl-C restores and journals 'interrupted'."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.mode import StateFile
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab
runner = CliRunner()


def planb(session: LabSession, *args: str) -> Any:
    return runner.invoke(app, ["--config", str(session.site.base_dir / "planb.yml"), *args])


@pytest.fixture(scope="module")
def drill_lab(synced_lab: LabSession) -> LabSession:
    """The lab in standby with a signing key and the accounts synced (LDAP and Matrix)."""
    return synced_lab


def journal(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_bytes())["payload"]  # type: ignore[no-any-return]


def run_drill(session: LabSession, scenario: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    result = planb(session, "drill", "run", "--scenario", scenario, "--json")
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    return result.exit_code, summary, journal(summary["journal"])


def assert_recorded(session: LabSession, payload: dict[str, Any]) -> None:
    """Steps, RTO and objective, versions and footprint are in the journal; it verifies."""
    assert payload["run"] and payload["rollbacks"]
    assert all(s["started_at"] and s["ended_at"] for s in payload["run"] + payload["rollbacks"]
               if s["status"] != "skipped")
    assert payload["objective"]["rto_seconds"] == session.site.objectives.rto_seconds
    assert payload["versions"]["synapse"] and payload["versions"]["slapd"]
    services = {f["service"] for f in payload["footprint"] if f["memory_bytes"]}
    assert {"slapd", "synapse", "postgresql", "nginx", "coturn"} <= services
    verified = planb(session, "report", "verify")
    assert verified.exit_code == 0, verified.output
    assert StateFile(session.site.state_dir).load().mode == "standby"


def _only_slow(findings: list[str]) -> bool:
    """True when the one thing that kept a drill from passing is its RTO objective."""
    return bool(findings) and all("exceeds the objective" in f for f in findings)


def probe_output(payload: dict[str, Any]) -> str:
    return "\n".join(s["output"] for s in payload["run"] if s["action"] == "probes.run")


#: How far over its RTO objective a drill may run here before the test fails: this
#: machine (2 cores, other labs beside) is slower than a fallback host; bench/drill.py
#: holds a drill to the objective itself.
RTO_SLACK = 3


def assert_sampled_agents_saw_the_announcement(payload: dict[str, Any]) -> None:
    """Every probe round drew lab agents (not the probe accounts, which are not in the
    announcement room), and in the deciding round each of them saw the announcement."""
    rounds = [s for s in payload["run"] if s["action"] == "probes.run"]
    assert rounds, [s["action"] for s in payload["run"]]
    for step in rounds:
        assert "accounts: lab-agents (" in step["output"], step["output"]
    last = rounds[-1]
    exchanged = {p["subject"] for p in last["probes"] if p["name"] == "matrix.exchange"}
    announced = {p["subject"]: p["ok"] for p in last["probes"]
                 if p["name"] == "matrix.announcement"}
    assert len(exchanged) == 20 and set(announced) == exchanged, last["output"]
    assert all(announced.values()), last["output"]
    assert "announcement of incident " in last["output"], last["output"]


@pytest.mark.parametrize("scenario", ["primary-outage", "messaging-crash", "directory-crash"])
def test_shipped_scenarios_pass_and_record_their_rto(drill_lab: LabSession,
                                                     scenario: str) -> None:
    code, summary, payload = run_drill(drill_lab, scenario)
    rto, objective = payload["rto"]["seconds"], payload["objective"]["rto_seconds"]
    assert rto is not None and rto > 0, summary["findings"]
    assert rto <= RTO_SLACK * objective, (
        f"{scenario}: RTO {rto:.1f} s, more than {RTO_SLACK} x the {objective} s objective")
    if summary["outcome"] == "deviated" and _only_slow(summary["findings"]):
        # Within the slack: whether the recovery fits in the objective depends on how
        # busy this machine is (bench/drill.py measures it); every step and probe must
        # still have passed.
        warnings.warn(f"{scenario}: RTO {rto:.1f} s over the {objective} s objective "
                      "(busy machine?); steps and probes all passed", stacklevel=1)
        assert code == 4 and payload["rto"]["met"] is False
    else:
        assert code == 0 and summary["outcome"] == "pass", summary["findings"]
        assert payload["status"] == "pass" and payload["rto"]["met"] is True
        assert rto <= objective
    # The journal's run holds the fault, the activation and the deciding verify round.
    assert all(s["status"] == "ok" for s in payload["run"] + payload["rollbacks"]), [
        (s["name"], s["status"]) for s in payload["run"] + payload["rollbacks"]]
    output = probe_output(payload)
    assert "seed: " in output and "rate-limited" in output
    # Agents' logins appear only pseudonymised (the public pages' probes name the host).
    logins = [p["subject"] for s in payload["run"] for p in s["probes"]
              if not p["name"].startswith("page.")]
    pages = [p for s in payload["run"] for p in s["probes"] if p["name"].startswith("page.")]
    assert {p["name"] for p in pages} == {"page.welcome", "page.client"}, pages
    assert logins and all(s.startswith("agent-") for s in logins)
    assert_sampled_agents_saw_the_announcement(payload)
    assert_recorded(drill_lab, payload)
    print(f"{scenario}: RTO {payload['rto']['seconds']:.1f} s, "
          f"duration {payload['duration_seconds']:.1f} s")


UNIT = "/etc/systemd/system/synapse.service"


def test_a_broken_fallback_fails_naming_the_check_and_still_restores(
        drill_lab: LabSession) -> None:
    lab = drill_lab.lab
    # The role installs the unit in /etc (where mask puts its link): set it aside first.
    breaking = ["systemctl stop synapse", f"mv {UNIT} {UNIT}.planb-test",
                "systemctl mask synapse", "systemctl daemon-reload"]
    repairing = ["systemctl unmask synapse", f"mv {UNIT}.planb-test {UNIT}",
                 "systemctl daemon-reload", "systemctl enable --now synapse"]
    try:
        for command in breaking:
            assert lab.run_on("fallback", ["sh", "-c", command]).returncode == 0, command
        code, summary, payload = run_drill(drill_lab, "primary-outage")
    finally:
        for command in repairing:
            lab.run_on("fallback", ["sh", "-c", command])
    assert code in (1, 4), summary
    assert summary["outcome"] in ("failed", "deviated")
    assert any("service.synapse" in f for f in summary["findings"]), summary["findings"]
    assert [s["status"] for s in payload["rollbacks"]] == ["ok", "ok"]
    assert lab.run_on("primary", ["true"]).returncode == 0  # reconnected (or never cut)
    assert lab.run_on("fallback", ["systemctl", "is-enabled", "synapse"]).returncode == 0
    assert StateFile(drill_lab.site.state_dir).load().mode == "standby"


def cut_off(session: LabSession) -> bool:
    try:
        return session.lab.run_on("primary", ["true"], timeout=8).returncode == 255
    except subprocess.TimeoutExpired:
        return True


def test_ctrl_c_mid_drill_restores_and_journals_interrupted(drill_lab: LabSession) -> None:
    site = drill_lab.site
    journals = site.state_dir / "journals"
    before = set(journals.glob("0*-drill-*.json"))
    env = {**os.environ, "PLANB_CONFIG": str(site.base_dir / "planb.yml")}
    # Ctrl-C as from a terminal: a test session started in the background inherits
    # SIGINT ignored (POSIX shells do that to '&' jobs), so give the drill the default.
    proc = subprocess.Popen([sys.executable, "-m", "planb.cli.main", "drill", "run",
                             "--scenario", "primary-outage", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # Wait until the primary is cut off (the fault ran), then press Ctrl-C.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not cut_off(drill_lab):
            time.sleep(0.5)
        assert time.monotonic() < deadline, "the drill never cut the primary off"
        time.sleep(2)
    finally:
        proc.send_signal(signal.SIGINT)  # also on a test failure: the drill restores
        try:
            _, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    new = sorted(set(journals.glob("0*-drill-*.json")) - before)
    assert len(new) == 1
    payload = journal(str(new[0]))
    assert payload["status"] == "interrupted"
    assert payload["rollbacks"][0]["action"] == "lab.reconnect_host"
    assert all(s["status"] == "ok" for s in payload["rollbacks"])
    assert drill_lab.lab.run_on("primary", ["true"]).returncode == 0
    assert StateFile(site.state_dir).load().mode == "standby"
    assert planb(drill_lab, "report", "verify").exit_code == 0
