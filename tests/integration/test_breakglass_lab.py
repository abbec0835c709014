"""planb-breakglass on the lab's messaging host, reached with the break-glass key only.

The key runs the command and nothing else; a wrong key is refused by sshd; activation
switches the host, posts the site's announcement and signs a journal with the host's
key (its public part exported to the controller by deploy); a second activation and a
switch while the controller holds the host's lock are refused, naming why and who; the
controller's own failover state and journals are not touched. Leaves the fallback in
standby (the break-glass key stays authorised: the next deploy keeps it).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from planb.hostkeys import known_hosts_path, ssh_options
from planb.inventory import FALLBACK_MESSAGING, hosts_in
from planb.messaging.admin_api import quote
from planb.messaging.sync_target import target_for
from planb.mode import AuditLog, StateFile
from planb.provisioning.deploy import run_deploy
from planb.reports.keys import load_public_key
from planb.reports.store import JournalStore
from planb.reports.verify import verify_directory
from tests.integration import lab_state
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab
HOST = "fallback"
COMMAND = "/opt/planb/bin/planb-breakglass"


@pytest.fixture(scope="module")
def breakglass_lab(synced_lab: LabSession, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[LabSession, Path]]:
    """The synced lab with a new break-glass key made and deployed; standby after."""
    safe = tmp_path_factory.mktemp("safe")
    code, out = lab_state.planb_cli(synced_lab, "keys", "breakglass", "--out", str(safe),
                                    "--force")
    assert code == 0, out
    deployed = run_deploy(synced_lab.site, tags=("bundle", "breakglass"))
    assert deployed.ok, deployed
    try:
        yield synced_lab, safe / "planb-breakglass"
    finally:
        lab_state.ensure_hosts_up(synced_lab)
        mode = synced_lab.lab.run_on(HOST, [COMMAND, "status", "--json"])
        if json.loads(mode.stdout or "{}").get("mode") == "active":
            synced_lab.lab.run_on(HOST, [COMMAND, "deactivate", "--operator", "tests",
                                         "--reason", "test_breakglass_lab: back to standby"])
        lab_state.ensure_standby(synced_lab)


def ssh(session: LabSession, key: Path, remote: str, timeout: float = 180
        ) -> subprocess.CompletedProcess[str]:
    """``ssh -i KEY root@host REMOTE`` with nothing but that key (no agent, no config)."""
    address = next(h.address for h in hosts_in(session.site, FALLBACK_MESSAGING))
    argv = ["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-F", "/dev/null",
            "-o", "IdentityAgent=none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            *ssh_options(known_hosts_path(session.site)), f"root@{address}", remote]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


def host_mode(session: LabSession) -> str:
    return session.lab.run_on(HOST, ["cat", "/etc/planb/mode"]).stdout.strip()


def last_announcement(session: LabSession) -> str:
    target = target_for(session.site)
    assert target is not None
    with target.api() as api:
        room = api.resolve_alias("annonces")
        assert room
        answer: dict[str, Any] = api.request(
            "GET", f"/_synapse/admin/v1/rooms/{quote(room)}/messages?dir=b&limit=5",
            what="read the announcement room")
    bodies = [e["content"].get("body", "") for e in answer.get("chunk", [])
              if e.get("type") == "m.room.message"]
    return bodies[0] if bodies else ""


def test_the_key_runs_the_command_only_and_a_wrong_key_is_refused(
        breakglass_lab: tuple[LabSession, Path], tmp_path: Path) -> None:
    session, key = breakglass_lab
    shown = ssh(session, key, "status --json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["mode"] == "standby" and status["lock"] is None
    assert status["key_fingerprint"].startswith("SHA256:")
    for sneaky in ("cat /etc/shadow", "lock --operator x --what y", "init-key"):
        refused = ssh(session, key, sneaky)
        assert refused.returncode == 2, (sneaky, refused)
        assert "is not a break-glass command" in refused.stderr
    wrong = tmp_path / "wrong"
    wrong.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    wrong.chmod(0o600)
    denied = ssh(session, wrong, "status")
    assert denied.returncode == 255 and "Permission denied" in denied.stderr, denied


def test_activate_and_deactivate_through_the_key_without_the_controller(
        breakglass_lab: tuple[LabSession, Path], tmp_path: Path) -> None:
    session, key = breakglass_lab
    site = session.site
    controller_state = StateFile(site.state_dir).load()
    controller_journals = len(JournalStore.for_state_dir(site.state_dir).list())
    done = ssh(session, key, "activate --operator 'Agnès (cellule)' --reason 'AD chiffré' "
               "--public-message 'Messagerie de secours ouverte'")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the fallback is now active" in done.stdout
    assert "announce: ok" in done.stdout and "backup-schedule: ok" in done.stdout, done.stdout
    assert host_mode(session) == "active"
    message = session.lab.run_on(HOST, ["cat", "/etc/planb/public_message"]).stdout
    assert message.strip() == "Messagerie de secours ouverte"
    incident = json.loads(ssh(session, key, "status --json").stdout)["breakglass_state"][
        "incident_id"]
    assert incident in last_announcement(session)

    again = ssh(session, key, "activate --operator Bob --reason 'again'")
    assert again.returncode == 2 and "already active since" in again.stderr
    assert "Agnès (cellule), through break-glass" in again.stderr

    # The controller's 'planb failover' holds the host's lock while it switches.
    holder = subprocess.Popen(session.lab.ssh_argv(HOST, [
        COMMAND, "lock", "--operator", "planb controller (ops)", "--what",
        "failover deactivate"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().startswith("locked ")
        locked = ssh(session, key, "deactivate --operator Bob --reason 'fin'")
        assert locked.returncode == 2, locked
        assert "held by planb controller (ops) (failover deactivate) since" in locked.stderr
        assert host_mode(session) == "active"
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    back = ssh(session, key, "deactivate --operator Bob --reason 'fin de l''incident'")
    assert back.returncode == 0, back.stdout + back.stderr
    assert host_mode(session) == "standby"
    assert session.lab.run_on(HOST, ["test", "-e", "/etc/planb/public_message"]
                              ).returncode == 1

    # The controller did nothing: its state and journals are as they were.
    assert StateFile(site.state_dir).load() == controller_state
    assert len(JournalStore.for_state_dir(site.state_dir).list()) == controller_journals

    # The host's journals verify with the public key deploy exported to the controller.
    copy = tmp_path / "journals"
    copy.mkdir()
    tar = subprocess.run(session.lab.ssh_argv(HOST, [
        "tar", "-C", "/var/lib/planb/breakglass/journals", "-cf", "-", "."]),
        capture_output=True, check=True, timeout=60).stdout
    subprocess.run(["tar", "-C", str(copy), "-xf", "-"], input=tar, check=True)
    public = load_public_key(site.state_dir / "keys" / "hosts" / f"{HOST}.pub")
    verdict = verify_directory(copy, [public])
    assert verdict.ok, verdict.failure
    payloads = [json.loads((copy / c.file).read_text())["payload"] for c in verdict.journals]
    assert [(p["event"], p["result"], p["via"]) for p in payloads[-2:]] == [
        ("activate", "completed", "breakglass"), ("deactivate", "completed", "breakglass")]
    assert payloads[-1]["incident_id"] == incident
    site_key = load_public_key(site.state_dir / "keys" / "signing.pub")
    assert not verify_directory(copy, [site_key]).ok  # the host's own key, not the site's


def test_the_controller_is_refused_while_the_host_lock_is_held(
        breakglass_lab: tuple[LabSession, Path]) -> None:
    session, _ = breakglass_lab
    audited = len(AuditLog(session.site.state_dir).entries())
    holder = subprocess.Popen(session.lab.ssh_argv(HOST, [
        COMMAND, "lock", "--operator", "Agnès (cellule de crise)", "--what",
        "break-glass activate"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().startswith("locked ")
        code, out = lab_state.planb_cli(session, "failover", "activate", "--reason",
                                        "test: lock held on the host", "--yes")
        assert code == 2, out
        assert "held by Agnès (cellule de crise) (break-glass activate)" in " ".join(out.split())
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    assert StateFile(session.site.state_dir).load().mode == "standby"
    assert host_mode(session) == "standby"
    status = json.loads(session.lab.run_on(HOST, [COMMAND, "status", "--json"]).stdout)
    assert status["lock"] is None
    added = AuditLog(session.site.state_dir).entries()[audited:]
    assert [(e.event, e.result) for e in added] == [("activate", "refused")]
    assert "held by Agnès (cellule de crise)" in added[0].detail
