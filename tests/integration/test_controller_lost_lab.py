"""The controller-lost drill on the session lab (issue 16): the primary is cut off, the
fallback is activated only through planb-breakglass over SSH with the break-glass key
(the commands the activate-failover runbook prints), sampled agents work and see the
announcement, the controller's own record is left untouched, and a controller rebuilt
from the fallback's copy verifies the whole chain with the host-signed journals. A wrong
break-glass key is refused with a clear message and changes nothing.

Leaves the lab as it found it: fallback in standby, primary connected.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from planb.actions.breakglass import KEY_ENV, breakglass_hosts, host_state
from planb.actions.controller import PASSPHRASE_ENV
from planb.breakglass.paths import COMMAND
from planb.mode import StateFile
from planb.provisioning.deploy import run_deploy
from planb.reports.store import journals_dir
from tests.integration import lab_state
from tests.integration.conftest import LabSession
from tests.integration.lab_state import planb_cli
from tests.integration.test_drills_scenarios import (
    RTO_SLACK,
    assert_sampled_agents_saw_the_announcement,
    journal,
)

pytestmark = pytest.mark.lab
SCENARIO = "controller-lost"
#: The crisis cell's passphrase for the lab's copies (a test value, not a secret).
PASSPHRASE = "lab crisis cell passphrase, not a secret"


@pytest.fixture(scope="module")
def lost_lab(synced_lab: LabSession, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[LabSession, Path, Path]]:
    """The synced lab with a new break-glass key made and deployed (as the runbook
    says) and the crisis cell's passphrase set, so the copy on the fallback holds the
    secrets, encrypted. Afterwards: standby, and the copy key as it was before."""
    site = synced_lab.site
    safe = tmp_path_factory.mktemp("safe")
    code, out = planb_cli(synced_lab, "keys", "breakglass", "--out", str(safe), "--force")
    assert code == 0, out
    deployed = run_deploy(site, tags=("bundle", "breakglass"))
    assert deployed.ok, deployed
    keys = site.state_dir / "keys"
    saved = {p: p.read_bytes() for p in (keys / "copy.key", keys / "copy-key.json")
             if p.exists()}
    secret = safe / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    code, out = planb_cli(synced_lab, "controller", "passphrase", "--passphrase-file",
                          str(secret))
    assert code == 0, out
    try:
        yield synced_lab, safe / "planb-breakglass", secret
    finally:
        lab_state.ensure_hosts_up(synced_lab)
        mode = synced_lab.lab.run_on("fallback", [COMMAND, "status", "--json"])
        if json.loads(mode.stdout or "{}").get("mode") == "active":
            synced_lab.lab.run_on("fallback", [COMMAND, "deactivate", "--operator", "tests",
                                               "--reason", "controller-lost test: standby"])
        lab_state.ensure_standby(synced_lab)
        for path in (keys / "copy.key", keys / "copy-key.json"):
            path.unlink(missing_ok=True)
        for path, data in saved.items():
            path.write_bytes(data)
            path.chmod(0o600)
        planb_cli(synced_lab, "controller", "push")


def run_drill(session: LabSession) -> tuple[int, dict[str, Any], dict[str, Any]]:
    code, out = planb_cli(session, "drill", "run", "--scenario", SCENARIO, "--json")
    # The JSON summary, then (exit 4 or 1) the error line the CLI prints after it.
    summary, _ = json.JSONDecoder().raw_decode(out[out.index("{\n"):])
    return code, summary, journal(summary["journal"])


def runbook_line(session: LabSession, verb: str) -> str:
    """The runbook's break-glass command for ``verb``, as printed (in English)."""
    code, out = planb_cli(session, "runbook", "render", "activate-failover", "--language", "en")
    assert code == 0, out
    return next(line for line in out.splitlines() if line.startswith("ssh ")
                and f'"{verb} --operator' in line)


def host_journals(session: LabSession, key: Path) -> int:
    host = breakglass_hosts(session.site)[0]
    return int(host_state(session.site, host, key).data["journals"])


def test_the_drill_switches_through_break_glass_and_a_rebuilt_controller_verifies(
        lost_lab: tuple[LabSession, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    session, key, secret = lost_lab
    monkeypatch.setenv(KEY_ENV, str(key))
    monkeypatch.setenv(PASSPHRASE_ENV, str(secret))
    state = session.site.state_dir
    audit = state / "failover" / "audit.log"
    audit_before = audit.read_bytes() if audit.exists() else b""
    journals_before = host_journals(session, key)

    code, summary, payload = run_drill(session)

    rto, objective = payload["rto"]["seconds"], payload["objective"]["rto_seconds"]
    assert rto is not None and rto <= RTO_SLACK * objective, summary["findings"]
    findings = [f for f in summary["findings"] if "exceeds the objective" not in f]
    assert not findings and code in (0, 4), summary
    steps = payload["run"] + payload["rollbacks"] + payload["steady_states"]["after"]["probes"]
    assert all(s["status"] == "ok" for s in steps), [(s["name"], s["status"], s["error"])
                                                     for s in steps if s["status"] != "ok"]
    # The switch went only through planb-breakglass, with the runbook's command.
    actions = [s["action"] for s in steps]
    assert not {"failover.activate", "failover.deactivate", "fallback.switch"} & set(actions)
    activation = next(s for s in payload["run"] if s["action"] == "breakglass.activate")
    printed = runbook_line(session, "activate")
    # The printed line with the key where the administrator put it (the drill's key).
    expected = printed.split(" -i ", 1)[1].split(" ", 1)[1].split(" --operator", 1)[0]
    assert f"ran ssh -i {key} {expected} --operator" in activation["output"], (
        printed, activation["output"])
    assert re.search(r"now active \(incident [0-9a-f-]{36}\)", activation["output"])
    # Agents worked and saw the host's announcement; the pages said active.
    assert_sampled_agents_saw_the_announcement(payload)
    pages = [p for s in payload["run"] for p in s["probes"] if p["name"].startswith("page.")]
    assert pages and all(p["ok"] and "says active" in p["detail"] for p in pages), pages
    # The rebuilt controller verified the whole chain with the host-signed journals.
    rebuilt = next(s for s in payload["steady_states"]["after"]["probes"]
                   if s["action"] == "controller.restore")
    counted = re.search(r"host-signed journals fetched and verified: (\d+)", rebuilt["output"])
    assert counted and int(counted.group(1)) >= 2, rebuilt["output"]
    assert "--passphrase-file" in rebuilt["output"] and "problem:" not in rebuilt["output"]
    assert not list((state / "drills").glob("controller-restore-*")), "scratch left behind"

    # The controller's own record was not touched by the switch; the host recorded both.
    assert (audit.read_bytes() if audit.exists() else b"") == audit_before
    assert StateFile(state).load().mode == "standby"
    assert host_journals(session, key) == journals_before + 2
    host = breakglass_hosts(session.site)[0]
    assert host_state(session.site, host, key).mode == "standby"
    # The controller back: failover status fetches what the host did; report verify.
    code, out = planb_cli(session, "failover", "status", "--json")
    assert code == 0, out
    fetched = sorted((journals_dir(state) / "hosts" / host.name).glob("0*.json"))
    assert len(fetched) >= journals_before + 2
    code, out = planb_cli(session, "report", "verify")
    assert code == 0, out
    assert session.lab.run_on("primary", ["true"]).returncode == 0
    print(f"{SCENARIO}: RTO {rto:.1f} s, duration {payload['duration_seconds']:.1f} s")


def test_a_wrong_break_glass_key_is_refused_and_changes_nothing(
        lost_lab: tuple[LabSession, Path, Path], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    session, key, _ = lost_lab
    wrong = tmp_path / "not-the-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)],
                   check=True)
    monkeypatch.setenv(KEY_ENV, str(wrong))
    before = host_journals(session, key)
    code, summary, payload = run_drill(session)
    assert code == 1 and summary["outcome"] == "failed", summary
    refused = payload["steady_states"]["before"]["probes"][1]
    assert refused["action"] == "breakglass.status" and refused["status"] == "error"
    assert "refused or could not be reached with the break-glass key" in refused["error"]
    assert "Permission denied" in refused["error"], refused["error"]
    assert [s["status"] for s in payload["run"]] == ["skipped"] * len(payload["run"])
    assert host_journals(session, key) == before
    assert StateFile(session.site.state_dir).load().mode == "standby"
