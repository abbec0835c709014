"""The controller's state copied to the fallback and a controller rebuilt from it (issue 16).

On the session lab: without a passphrase the copy pushed to the fallback holds no
secret and 'planb verify' says so; once the crisis cell's passphrase is set, a CLI
command that changes the state pushes a copy at once (controller.copy passes) and a
change made behind the CLI's back turns controller.copy red until the next push. On a
"fresh machine" (another PLANB_HOME, no site), 'planb controller restore' fetches the
copy over SSH: a wrong passphrase or a wrong host key fingerprint is refused with
nothing written; the right one gives the same site, journals (chain verified), audit
log, signing key and vault, and 'report verify' passes there. A host's break-glass
journals and audit lines are fetched by 'failover status', verified with the host's
key, kept append-only when the host rewrites them, and a chain signed by another key
or altered fails 'report verify' naming the host.

The module puts the lab back: the passphrase removed, the host's break-glass folder and
the site's host key and host journals as they were.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from planb.inventory import load_hosts
from planb.mode import AuditEntry, AuditLog
from planb.reports.keys import KeyPaths, PassphraseSource, Signer, load_signer, public_pem
from planb.reports.store import JournalStore, journals_dir
from planb.statecopy.hostjournals import REMOTE_DIR, host_journals_root, host_key_path
from planb.statecopy.push import REMOTE_COPY, ssh
from tests.integration.conftest import LabSession
from tests.integration.lab_state import planb_cli

pytestmark = pytest.mark.lab
HOST = "fallback"
PASSPHRASE = "la cellule de crise garde cette phrase"


def _nothing(*_: object, **__: object) -> bool:
    return True


@pytest.fixture(scope="module")
def lab(standby_lab: LabSession, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[LabSession]:
    """The standby lab; afterwards the passphrase, host keys and host journals as before."""
    site = standby_lab.site
    keys = site.state_dir / "keys"
    saved = tmp_path_factory.mktemp("saved")
    kept = [p for p in (keys / "copy.key", keys / "copy-key.json", host_key_path(
        site.state_dir, HOST)) if p.exists()]
    for path in kept:
        shutil.copy2(path, saved / path.name)
    host_dir = host_journals_root(site.state_dir) / HOST
    had_host_dir = host_dir.exists()
    if had_host_dir:
        shutil.copytree(host_dir, saved / "host-journals")
        shutil.rmtree(host_dir)
    moved = standby_lab.lab.run_on(HOST, ["sh", "-c", f"test -e {REMOTE_DIR} && mv {REMOTE_DIR} "
                                          f"{REMOTE_DIR}.saved-by-test || true"])
    assert moved.returncode == 0, moved.stderr
    yield standby_lab
    standby_lab.lab.run_on(HOST, ["sh", "-c", f"rm -rf {REMOTE_DIR}; test -e {REMOTE_DIR}"
                                  f".saved-by-test && mv {REMOTE_DIR}.saved-by-test "
                                  f"{REMOTE_DIR} || true"])
    for path in (keys / "copy.key", keys / "copy-key.json", host_key_path(site.state_dir, HOST)):
        path.unlink(missing_ok=True)
    for path in kept:
        shutil.copy2(saved / path.name, path)
    shutil.rmtree(host_dir, ignore_errors=True)
    if had_host_dir:
        shutil.copytree(saved / "host-journals", host_dir)
    planb_cli(standby_lab, "controller", "push")


@pytest.fixture(scope="module")
def passphrase_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("safe") / "passphrase"
    path.write_text(PASSPHRASE + "\n")
    path.chmod(0o600)
    return path


def _host_copy(lab: LabSession) -> bytes:
    host = next(h for h in load_hosts(lab.site) if h.name == HOST)
    proc = ssh(host, f"cat {REMOTE_COPY}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _vault_values(lab: LabSession) -> list[str]:
    vault = lab.site.inventory_dir / "group_vars" / "all" / "vault.yml"
    return [str(v) for v in yaml.safe_load(vault.read_text()).values() if v]


def _verify_copy_check(lab: LabSession) -> dict[str, object]:
    code, out = planb_cli(lab, "verify", "--only", "controller.copy", "--json")
    report = json.loads(out[out.index("{"):out.rindex("}") + 1])
    result = next(r for r in report["results"] if r["name"] == "controller.copy")
    return {"code": code, **result}


def _fresh_planb(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """planb as on a fresh machine: its own PLANB_HOME, no site, no vault password; it
    pushes no copy of its own (it is a test's throw-away controller)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PLANB_CONFIG", "ANSIBLE_VAULT_PASSWORD_FILE", "PLANB_KEY_PASSPHRASE")}
    env["PLANB_HOME"] = str(tmp / "fresh-home")
    env["PLANB_STATE_COPY"] = "off"
    return subprocess.run([sys.executable, "-m", "planb.cli.main", *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_without_a_passphrase_the_copy_is_public_and_verify_says_so(lab: LabSession) -> None:
    for path in (lab.site.state_dir / "keys" / "copy.key",
                 lab.site.state_dir / "keys" / "copy-key.json"):
        path.unlink(missing_ok=True)
    code, out = planb_cli(lab, "controller", "push")
    assert code == 0, out
    assert "public part only" in out
    data = _host_copy(lab)
    assert b"PRIVATE KEY" not in data
    for value in _vault_values(lab):
        assert value.encode() not in data
    check = _verify_copy_check(lab)
    assert check["status"] == "skip", check
    assert "no passphrase set" in str(check["message"])


def test_a_state_change_through_the_cli_pushes_the_copy(lab: LabSession,
                                                        passphrase_file: Path) -> None:
    code, out = planb_cli(lab, "controller", "passphrase", "--passphrase-file",
                          str(passphrase_file))
    assert code == 0, out
    data = _host_copy(lab)
    assert b"secrets.fernet" in data and b"PRIVATE KEY" not in data
    assert PASSPHRASE.encode() not in data
    for value in _vault_values(lab):
        assert value.encode() not in data
    assert _verify_copy_check(lab)["status"] == "pass"
    # A journal written behind the CLI's back: the host's copy is behind, and says so.
    signer = load_signer(KeyPaths.for_state_dir(lab.site.state_dir), PassphraseSource())
    stored = JournalStore.for_state_dir(lab.site.state_dir, signer, anchor=_nothing).append(
        "drill", {"scenario": "controller-copy-test", "status": "pass"})
    check = _verify_copy_check(lab)
    assert check["status"] == "fail" and "older than" in str(check["message"]), check
    # Any CLI command that changes the state pushes it.
    code, out = planb_cli(lab, "report", "annotate", str(stored.seq), "--observation",
                          "pushed by the CLI")
    assert code == 0, out
    assert _verify_copy_check(lab)["status"] == "pass"
    code, out = planb_cli(lab, "controller", "status", "--json")
    rows = json.loads(out[out.index("["):])
    assert [(r["host"], r["current"], r["encrypted"]) for r in rows] == [(HOST, True, True)]


def _fake_breakglass(lab: LabSession, tmp: Path) -> Signer:
    """A host chain as the break-glass command writes it: 2 journals, 2 audit lines,
    signed by a key of the host's own; its public half where deploy puts it."""
    shutil.rmtree(host_journals_root(lab.site.state_dir) / HOST, ignore_errors=True)
    assert lab.lab.run_on(HOST, ["rm", "-rf", REMOTE_DIR]).returncode == 0
    signer = Signer(Ed25519PrivateKey.generate())
    folder = tmp / "breakglass"
    store = JournalStore(folder / "journals", signer, anchor=_nothing)
    audit = AuditLog(folder, signer, anchor=_nothing, path=folder / "audit.log")
    for event in ("activate", "deactivate"):
        audit.append(AuditEntry(at="2026-11-30T09:00:00.000Z", who="crisis-cell",
                                why="controller gone", event=event, result="ok"))
        store.append("breakglass", {"event": event, "status": "ok"})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname="breakglass")
    put = subprocess.run(lab.lab.ssh_argv(HOST, ["tar", "-C", "/var/lib/planb", "-xf", "-"]),
                         input=buffer.getvalue(), capture_output=True, timeout=60, check=False)
    assert put.returncode == 0, put.stderr
    key = host_key_path(lab.site.state_dir, HOST)
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text(public_pem(signer.public_key))
    return signer


def test_host_journals_are_fetched_verified_and_kept(lab: LabSession, tmp_path: Path) -> None:
    signer = _fake_breakglass(lab, tmp_path)
    code, out = planb_cli(lab, "failover", "status")
    assert code == 0, out
    text = " ".join(out.split())
    assert f"host {HOST} (break-glass, signed with {signer.fingerprint}): 2 journal(s), " \
           "2 audit line(s), 2 new; chain valid" in text, text
    assert "crisis-cell" in text
    code, out = planb_cli(lab, "report", "verify")
    assert code == 0, out
    assert f"host {HOST}: 2 break-glass journal(s) and 2 audit line(s), signatures and " \
           "chain valid" in " ".join(out.split())
    # The host rewrites its first journal (re-signed with its own key): the controller
    # keeps what it fetched first and says so.
    local = host_journals_root(lab.site.state_dir) / HOST
    first = sorted(local.glob("000001-*.json"))[0]
    before = first.read_bytes()
    rewrite = lab.lab.run_on(HOST, ["sh", "-c", f"cd {REMOTE_DIR}/journals && "
                                    f"sed -i 's/\"ok\"/\"OK\"/' {first.name}"])
    assert rewrite.returncode == 0, rewrite.stderr
    code, out = planb_cli(lab, "failover", "status")
    assert code == 0, out
    assert "changed on the host" in out and first.name in out
    assert first.read_bytes() == before
    assert planb_cli(lab, "report", "verify")[0] == 0
    # Altered on the controller, or trusted with another key: report verify fails.
    first.write_bytes(before.replace(b'"ok"', b'"ko"'))
    code, out = planb_cli(lab, "report", "verify")
    assert code == 1 and f"host {HOST}" in out and "altered" in out, out
    first.write_bytes(before)
    key = host_key_path(lab.site.state_dir, HOST)
    real = key.read_text()
    key.write_text(public_pem(Ed25519PrivateKey.generate().public_key()))
    code, out = planb_cli(lab, "report", "verify")
    assert code == 1 and "not a trusted key" in out, out
    key.write_text(real)
    assert planb_cli(lab, "report", "verify")[0] == 0


def test_a_fresh_machine_rebuilds_the_controller(lab: LabSession, passphrase_file: Path,
                                                 tmp_path: Path) -> None:
    site = lab.site
    code, out = planb_cli(lab, "controller", "passphrase", "--passphrase-file",
                          str(passphrase_file))
    assert code == 0, out
    if not (host_journals_root(site.state_dir) / HOST).is_dir():
        _fake_breakglass(lab, tmp_path)
        assert planb_cli(lab, "failover", "status")[0] == 0  # fetches them, pushes the copy
    code, out = planb_cli(lab, "controller", "push")
    assert code == 0, out
    address = next(h.address for h in load_hosts(site) if h.name == HOST)
    ssh_key = str(site.state_dir / "lab" / "id_ed25519")
    into = tmp_path / "rebuilt"
    wrong = tmp_path / "wrong"
    wrong.write_text("not the crisis cell's passphrase\n")
    base = ["controller", "restore", "--from", address, "--key", ssh_key, "--into", str(into)]
    refused = _fresh_planb(tmp_path, *base, "--passphrase-file", str(wrong))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "wrong passphrase" in refused.stderr and "nothing was written" in refused.stderr
    assert "not the crisis" not in refused.stdout + refused.stderr
    assert not into.exists()
    impostor = _fresh_planb(tmp_path, *base, "--passphrase-file", str(passphrase_file),
                            "--host-fingerprint", "SHA256:" + "A" * 43)
    assert impostor.returncode == 1 and "not connected" in impostor.stderr, impostor.stderr
    assert not into.exists()
    done = _fresh_planb(tmp_path, *base, "--passphrase-file", str(passphrase_file), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    restored = json.loads(done.stdout)
    assert restored["secrets"] is True and restored["host_chains"].get(HOST, 0) >= 2
    print(f"restore: {restored['files']} files in {restored['seconds']} s")
    new_state = into / ".planb"
    for rel in ("failover/audit.log", "keys/signing.key", "keys/signing.pub",
                "journals/head.json", "keys/enrolment.key"):
        if (site.state_dir / rel).exists():
            assert (new_state / rel).read_bytes() == (site.state_dir / rel).read_bytes(), rel
    vault = Path("group_vars") / "all" / "vault.yml"
    assert (into / "inventories" / site.site / vault).read_bytes() == \
        (site.inventory_dir / vault).read_bytes()
    assert sorted(p.name for p in journals_dir(new_state).glob("*.json")) == \
        sorted(p.name for p in journals_dir(site.state_dir).glob("*.json"))
    verified = _fresh_planb(tmp_path, "--config", str(into / "planb.yml"), "report", "verify",
                            "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] and report["audit_log"]["ok"]
    assert [h["host"] for h in report["hosts"] if h["ok"]] == [HOST]
    assert str(site.base_dir) not in (into / "inventories" / site.site / "hosts.yml").read_text()
    # The rebuilt controller reaches the hosts with what the copy gave it (the lab's key,
    # moved to the new folder) and fetches their break-glass records itself.
    status = _fresh_planb(tmp_path, "--config", str(into / "planb.yml"), "failover",
                          "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    hosts = json.loads(status.stdout)["hosts"]
    assert [(h["host"], h["fetched"], h["chain_ok"]) for h in hosts] == [(HOST, True, True)], \
        hosts
