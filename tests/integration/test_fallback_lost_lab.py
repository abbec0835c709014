"""The ``fallback-lost`` drill on the backup lab (issue 13, the restore drill).

On the backup lab shared with test_backup_lab.py (tests/integration/backup_lab.py): the
fallback is activated, agents exchange numbered messages, a backup runs, the traffic
goes on, then the fallback host is destroyed (container killed, disk removed). A new
host (same name and address, new SSH host key, new machine id) is deployed and the
newest archive restored; sampled agents log in, exchange messages and see the
announcement. The journal records the RTO against objectives.restore_rto_seconds and
the RPO against objectives.rpo_seconds, with nothing sent before the backup missing and
the agents' sessions kept; the server keeps its signing key. The lab is left as found:
in standby, passing its checks, backing up to its old repository.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.hostkeys import known_hosts_path, read_known_hosts
from planb.mode import StateFile
from planb.provisioning.deploy import run_deploy
from tests.integration import lab_state
from tests.integration.conftest import LabSession
from tests.integration.lab_state import on

pytestmark = pytest.mark.lab
runner = CliRunner()
SIGNING_KEY = "/etc/synapse/keys/signing.key"


def planb(session: LabSession, *args: str) -> Any:
    return runner.invoke(app, ["--config", str(session.site.source), *args])


def identity(session: LabSession) -> tuple[str, str, frozenset[tuple[str, str]]]:
    """The fallback's machine id, Synapse's signing key digest and its recorded SSH keys."""
    read = on(session, "fallback", f"cat /etc/machine-id; sha256sum {SIGNING_KEY}")
    assert read.returncode == 0, read.stderr
    machine_id, key_sum = read.stdout.split()[:2]
    address = session.topology.host("fallback").address
    keys = read_known_hosts(known_hosts_path(session.site)).get(address, set())
    return machine_id, key_sum, frozenset(keys)


def steps(payload: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in payload["run"] + payload["rollbacks"] if s["action"] == action]


@pytest.fixture
def fallback_back(backup_lab: LabSession) -> Iterator[LabSession]:
    """The backup lab; if the drill left the fallback lost (it failed after the fault),
    a new one is stood up, deployed and synced again so the modules after this one run."""
    yield backup_lab
    paths = backup_lab.lab.host_paths("fallback")
    if not paths.upper.is_dir():
        backup_lab.lab.rebuild_host("fallback")
    if lab_state.planb_cli(backup_lab, "verify")[0] != 0:
        result = run_deploy(backup_lab.site)
        assert result.ok, result.failures
        lab_state.ensure_standby(backup_lab)
        lab_state.ensure_synced(backup_lab)


def test_fallback_lost_drill_restores_and_measures_rpo_and_rto(fallback_back: LabSession
                                                               ) -> None:
    session = fallback_back
    lab_state.ensure_standby(session)
    machine_before, signing_before, keys_before = identity(session)
    started = time.monotonic()
    result = planb(session, "drill", "run", "--scenario", "fallback-lost", "--json")
    took = time.monotonic() - started
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    payload = json.loads(Path(summary["journal"]).read_bytes())["payload"]
    print(f"fallback-lost: {summary['outcome']} in {took:.0f} s, RTO "
          f"{payload['rto']['seconds']} s, RPO {payload.get('rpo')}")
    for step in payload["run"] + payload["rollbacks"]:
        print(f"  {step['phase']:10} {step['name']}: {step['status']} in "
              f"{step['duration_seconds']:.1f} s")
    assert result.exit_code == 0 and summary["outcome"] == "pass", (
        summary["findings"], [(s["name"], s["status"], s["error"] or s["output"][-300:])
                              for s in payload["run"] + payload["rollbacks"]
                              if s["status"] != "ok"])

    # The host was lost, not stopped: a new machine, a new SSH key (known_hosts replaced),
    # and the same Matrix server (its signing key came back with the archive).
    machine_after, signing_after, keys_after = identity(session)
    assert machine_after != machine_before, "the rebuilt host kept the old disk"
    assert keys_after and keys_after != keys_before, "the rebuilt host kept its SSH key"
    assert signing_after == signing_before, "clients would see a new server"
    [destroy] = steps(payload, "lab.destroy_host")
    assert "killed, disk removed" in destroy["output"], destroy["output"]
    [rebuild] = steps(payload, "lab.rebuild_host")
    assert "known_hosts entry replaced" in rebuild["output"], rebuild["output"]
    [restored] = steps(payload, "backup.restore")
    assert "restored fallback from fallback-" in restored["output"], restored["output"]

    # RTO: loss to the first passing probe round, against the restore objective.
    objectives = session.site.objectives
    assert payload["objective"]["rto_seconds"] == objectives.restore_rto_seconds
    assert payload["rto"]["met"] is True and payload["rto"]["seconds"] > 0
    # RPO: within the objective, nothing from before the backup lost, sessions kept.
    rpo = payload["rpo"]
    assert rpo["objective_seconds"] == objectives.rpo_seconds and rpo["met"] is True, rpo
    assert rpo["sent_before_loss"] >= 10 and rpo["lost_before_backup"] == 0, rpo
    assert rpo["sessions_kept"] is True, rpo
    [stopped] = steps(payload, "traffic.stop")
    assert "first message acknowledged again" in stopped["output"], stopped["output"]

    # Logins, rooms and the announcement survived: the deciding probe round.
    [probes] = steps(payload, "probes.run")
    announced = [p for p in probes["probes"] if p["name"] == "matrix.announcement"]
    exchanged = [p for p in probes["probes"] if p["name"] == "matrix.exchange"]
    assert announced and all(p["ok"] for p in announced), probes["output"]
    assert len(exchanged) == 10 and all(p["ok"] for p in exchanged), probes["output"]

    # Left as found: standby, checks passing (steady state after), the journal verifies,
    # the report shows the RPO, and the new host backs up to its old repository.
    assert payload["steady_states"]["after"]["steady_state_met"] is True
    assert StateFile(session.site.state_dir).load().mode == "standby"
    verified = planb(session, "report", "verify")
    assert verified.exit_code == 0, verified.output
    shown = planb(session, "report", "export", Path(summary["journal"]).name, "--format",
                  "md", "--language", "en")
    assert shown.exit_code == 0 and "Data loss (RPO)" in shown.output, shown.output[-2000:]
    code, out = lab_state.planb_cli(session, "backup", "now")
    assert code == 0, out
