"""The copy of the controller's state (issue 16), without a lab: what it holds, that its
secrets are never in it in plain, that a restore gives the same site back, and that a
wrong passphrase, an altered copy or a broken chain is refused with nothing written."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from planb.cli.main import app
from planb.config import load_config
from planb.mode import AuditEntry, AuditLog
from planb.reports.keys import KeyPaths, PassphraseSource, Signer, load_signer
from planb.reports.store import JournalStore
from planb.statecopy import crypto
from planb.statecopy.archive import CopyError, build_copy, open_copy
from planb.statecopy.content import site_entries
from planb.statecopy.crypto import PassphraseRefused, set_passphrase
from planb.statecopy.push import changed, state_picture
from planb.statecopy.restore import restore_bytes
from tests.unit.statecopy_env import isolate_cli

runner = CliRunner()
PASSPHRASE = b"correct horse battery staple"
VAULT_SECRET = "s3cr3t-value-never-in-plain"


def _nothing(*_: object, **__: object) -> bool:
    return True


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_cli(tmp_path, monkeypatch)
    monkeypatch.setattr(crypto, "SCRYPT_N", 2**12)  # fast; one test uses the real cost


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A site with a signing key, three journals, an audit log and a vault secret."""
    assert runner.invoke(app, ["init", "site", "--language", "en"]).exit_code == 0
    assert runner.invoke(app, ["-c", "site/planb.yml", "keys", "init"]).exit_code == 0
    site = tmp_path / "site"
    vault = site / "inventories" / "production" / "group_vars" / "all" / "vault.yml"
    vault.write_text(vault.read_text().replace("CHANGE-ME", VAULT_SECRET, 1))
    state = site / ".planb"
    signer = load_signer(KeyPaths.for_state_dir(state), PassphraseSource())
    store = JournalStore.for_state_dir(state, signer, anchor=_nothing)
    for n in range(3):
        store.append("drill", {"scenario": "primary-outage", "status": "pass", "n": n})
    audit = AuditLog(state, signer, anchor=_nothing)
    for n in range(2):
        audit.append(AuditEntry(at=f"2026-01-0{n + 1}T00:00:00Z", who="agnès", why="drill",
                                event="activate", result="ok"))
    (state / "runs" / "x").mkdir(parents=True)
    (state / "runs" / "x" / "artifact").write_text("big ansible output")
    return site


def _state(site_dir: Path) -> Path:
    return site_dir / ".planb"


def test_secrets_are_classified_and_runs_left_out(site_dir: Path) -> None:
    entries = {e.name: e.secret for e in site_entries(load_config(site_dir / "planb.yml"))}
    assert entries["site/planb.yml"] is False
    assert entries["state/keys/signing.pub"] is False
    assert entries["state/keys/signing.key"] is True
    assert entries["inventory/group_vars/all/vault.yml"] is True
    assert entries["inventory/hosts.yml"] is False
    assert entries["state/failover/audit.log"] is False
    assert any(n.startswith("state/journals/000001-drill-") for n in entries)
    assert not any(n.startswith("state/runs/") for n in entries)


def test_large_files_and_the_lab_machines_stay_out_of_the_copy(site_dir: Path) -> None:
    """Generated data (gigabytes on a bench) must not be read into memory at each push;
    the lab's machines (their disks) are never in it."""
    big = _state(site_dir) / "snapshots"
    big.mkdir()
    (big / "agents.json").write_bytes(b"x" * (9 * 2**20))
    (big / "small.json").write_text("{}")
    lab = _state(site_dir) / "lab"
    (lab / "hosts" / "fallback" / "rootfs").mkdir(parents=True)
    (lab / "hosts" / "fallback" / "rootfs" / "disk").write_text("a machine's disk")
    (lab / "id_ed25519").write_text("the lab's SSH key")
    (lab / "lab.json").write_text("{}")
    entries = {e.name: e for e in site_entries(load_config(site_dir / "planb.yml"))}
    names = set(entries)
    assert "state/snapshots/small.json" in names
    assert "state/snapshots/agents.json" not in names
    assert entries["state/lab/id_ed25519"].secret  # the lab inventory names it
    assert not any(n.startswith("state/lab/hosts/") for n in names)
    assert "state/lab/lab.json" not in names
    assert "state/journals/head.json" in names


def test_without_a_passphrase_the_copy_holds_no_secret(site_dir: Path, tmp_path: Path) -> None:
    built = build_copy(load_config(site_dir / "planb.yml"))
    assert not built.encrypted
    assert VAULT_SECRET.encode() not in built.data
    assert b"PRIVATE KEY" not in built.data
    done = restore_bytes(built.data, tmp_path / "new", passphrase=None)
    assert not done.secrets and done.journals == 3 and done.audit_entries == 2
    assert not (tmp_path / "new" / ".planb" / "keys" / "signing.key").exists()
    assert (tmp_path / "new" / "planb.yml").read_bytes() == \
        (site_dir / "planb.yml").read_bytes()


def test_with_the_passphrase_the_same_site_comes_back(site_dir: Path, tmp_path: Path) -> None:
    site = load_config(site_dir / "planb.yml")
    set_passphrase(site.state_dir, PASSPHRASE)
    built = build_copy(site)
    assert built.encrypted
    assert VAULT_SECRET.encode() not in built.data
    assert b"PRIVATE KEY" not in built.data
    assert PASSPHRASE not in built.data
    into = tmp_path / "rebuilt"
    done = restore_bytes(built.data, into, passphrase=PASSPHRASE)
    assert done.secrets and done.journals == 3 and done.head_sha256
    for entry in site_entries(site):
        rel = entry.name.split("/", 1)[1]
        base = {"site": into, "state": into / ".planb",
                "inventory": into / "inventories" / "production"}[entry.name.split("/")[0]]
        assert (base / rel).read_bytes() == entry.read(), entry.name
    key = into / ".planb" / "keys" / "signing.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (into / ".planb" / "keys" / "copy.key").read_bytes() == \
        (site.state_dir / "keys" / "copy.key").read_bytes()
    result = runner.invoke(app, ["-c", str(into / "planb.yml"), "report", "verify"])
    assert result.exit_code == 0, result.output
    assert "OK: 3 journals" in result.output


def test_the_real_scrypt_cost_and_a_wrong_passphrase(site_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "SCRYPT_N", 2**17)
    site = load_config(site_dir / "planb.yml")
    set_passphrase(site.state_dir, PASSPHRASE)
    wrapped = json.loads((site.state_dir / "keys" / "copy-key.json").read_text())
    assert wrapped["n"] == 2**17 and wrapped["kdf"] == "scrypt"
    data = build_copy(site).data
    with pytest.raises(PassphraseRefused) as refused:
        restore_bytes(data, tmp_path / "new", passphrase=b"not the crisis cell's one")
    assert "wrong passphrase" in refused.value.message
    assert "not the crisis" not in str(refused.value)
    assert not (tmp_path / "new").exists()
    assert not list(tmp_path.glob(".new.restoring-*"))


def test_cli_refuses_a_wrong_passphrase_and_writes_nothing(site_dir: Path,
                                                          tmp_path: Path) -> None:
    site = load_config(site_dir / "planb.yml")
    set_passphrase(site.state_dir, PASSPHRASE)
    copy = tmp_path / "copy.tar"
    copy.write_bytes(build_copy(site).data)
    wrong = tmp_path / "wrong"
    wrong.write_text("a wrong passphrase, long\n")
    result = runner.invoke(app, ["controller", "restore", "--from-file", str(copy),
                                 "--into", str(tmp_path / "new"), "--passphrase-file",
                                 str(wrong)])
    assert result.exit_code == 1
    assert "wrong passphrase" in result.output and "nothing was written" in result.output
    assert "a wrong passphrase, long" not in result.output
    assert not (tmp_path / "new").exists()
    right = tmp_path / "right"
    right.write_bytes(PASSPHRASE + b"\n")
    result = runner.invoke(app, ["controller", "restore", "--from-file", str(copy),
                                 "--into", str(tmp_path / "new"), "--passphrase-file",
                                 str(right)])
    assert result.exit_code == 0, result.output
    assert "secrets restored" in result.output


def _retar(data: bytes, change: dict[str, bytes]) -> bytes:
    """The copy with some members' bytes replaced (and the manifest's hash made to fit)."""
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            extracted = tar.extractfile(member)
            assert extracted is not None
            members[member.name] = extracted.read()
    manifest = json.loads(members["manifest.json"])
    import hashlib

    for name, body in change.items():
        members[name] = body
        manifest["public"][name.removeprefix("public/")]["sha256"] = \
            hashlib.sha256(body).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def test_a_copy_altered_on_the_host_is_refused(site_dir: Path, tmp_path: Path) -> None:
    site = load_config(site_dir / "planb.yml")
    set_passphrase(site.state_dir, PASSPHRASE)
    data = build_copy(site).data
    planb_yml = (site_dir / "planb.yml").read_bytes()
    altered = _retar(data, {"public/site/planb.yml": planb_yml + b"# hostile\n"})
    with pytest.raises(CopyError, match="site/planb.yml was changed after the copy"):
        open_copy(altered, PASSPHRASE)
    # Without the passphrase nothing can tell: the public part alone is not authenticated.
    open_copy(altered, None, public_only=True)


def test_a_broken_chain_in_the_copy_is_refused(site_dir: Path, tmp_path: Path) -> None:
    site = load_config(site_dir / "planb.yml")
    set_passphrase(site.state_dir, PASSPHRASE)
    second = next((site.state_dir / "journals").glob("000002-*.json"))
    second.unlink()
    second.with_suffix(".sig").unlink()
    with pytest.raises(CopyError, match="journals do not verify.*000003.*missing"):
        restore_bytes(build_copy(site).data, tmp_path / "new", passphrase=PASSPHRASE)
    assert not (tmp_path / "new").exists()


def test_restore_refuses_a_folder_in_use(site_dir: Path, tmp_path: Path) -> None:
    data = build_copy(load_config(site_dir / "planb.yml")).data
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("mine")
    with pytest.raises(Exception, match="not empty"):
        restore_bytes(data, tmp_path / "used", passphrase=None)
    assert (tmp_path / "used" / "x").read_text() == "mine"


def test_short_passphrases_are_refused(site_dir: Path) -> None:
    with pytest.raises(Exception, match="too short"):
        set_passphrase(_state(site_dir), b"short")


def test_a_change_is_seen_by_the_picture(site_dir: Path) -> None:
    site = load_config(site_dir / "planb.yml")
    before = state_picture(site)
    assert not changed(site, before)
    (site.state_dir / "runs" / "x" / "more").write_text("not state")
    assert not changed(site, before)
    signer: Signer = load_signer(KeyPaths.for_state_dir(site.state_dir), PassphraseSource())
    JournalStore.for_state_dir(site.state_dir, signer, anchor=_nothing).append("drill", {})
    assert changed(site, before)


def test_the_backup_host_keeps_a_copy_only_when_backups_are_on(site_dir: Path) -> None:
    import dataclasses

    from planb.config import BackupConfig
    from planb.inventory import InventoryHost
    from planb.statecopy.push import copy_targets

    hosts = [InventoryHost("fallback1", "192.0.2.10", ("fallback_directory",
                                                       "fallback_messaging")),
             InventoryHost("proxy1", "192.0.2.11", ("fallback_proxy",)),
             InventoryHost("backup1", "192.0.2.12", ("backup",))]
    site = load_config(site_dir / "planb.yml")
    assert [h.name for h in copy_targets(site, hosts)] == ["fallback1"]
    on = dataclasses.replace(site, backup=BackupConfig(enabled=True))
    assert [h.name for h in copy_targets(on, hosts)] == ["fallback1", "backup1"]


def test_help_of_a_subcommand_pushes_nothing(site_dir: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """'planb deploy --help' only prints: it pushes nothing, whereas a command that
    asks for the push (deploy, through statewatch.always_push) or changed the state
    pushes once. The push is spied on (no host is reachable here)."""
    import planb.statecopy.push as push_module
    from planb.cli import statewatch

    pushed: list[str] = []
    monkeypatch.setenv("PLANB_STATE_COPY", "on")
    monkeypatch.setattr(push_module, "auto_push_enabled", lambda site: True)
    monkeypatch.setattr(push_module, "push", lambda site, **_: pushed.append("push") or [])
    for args in (["deploy", "--help"], ["sync", "apply", "--help"], ["keys", "--help"]):
        result = runner.invoke(app, ["-c", "site/planb.yml", *args])
        assert result.exit_code == 0 and "Usage" in result.output, result.output
    assert pushed == []

    # The same watch on a small app: its command asks for the push, its --help does not.
    small = typer.Typer()

    @small.callback()
    def root(ctx: typer.Context) -> None:
        statewatch.watch(ctx)

    @small.command()
    def build(ctx: typer.Context) -> None:
        statewatch.always_push(ctx)

    @small.command()
    def look() -> None:
        pass

    monkeypatch.setattr(statewatch, "options", lambda ctx: _Site(site_dir))
    for args, expected in ((["build", "--help"], []), (["look"], []), (["build"], ["push"])):
        pushed.clear()
        result = runner.invoke(small, args)
        assert result.exit_code == 0, result.output
        assert pushed == expected, args


class _Site:
    def __init__(self, site_dir: Path) -> None:
        self.path = site_dir / "planb.yml"

    def load_site(self) -> object:
        return load_config(self.path)
