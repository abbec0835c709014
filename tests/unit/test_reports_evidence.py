"""Evidence that cannot be cut short or forged with a planted key (issue 11, section 5).

Each test attacks the journals the way someone with write access to the state dir
would: cut the chain short and put back an older head, plant a key in keys/retired/,
sign with a key after its rotation; and a crash between a journal and its signature
is repaired on the record instead of failing verification forever.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.reports.anchor import SyslogAnchor
from planb.reports.journal import HEAD_NAME, StoredJournal
from planb.reports.keys import KeyPaths, Signer, init_keys, load_public_key, load_signer
from planb.reports.store import JournalStore
from planb.reports.trust import resolve_trust
from planb.reports.verify import Reason, verify_directory

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    monkeypatch.delenv("PLANB_KEY_PASSPHRASE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site made by 'planb init' with its signing key; returns its state dir."""
    assert runner.invoke(app, ["init", "site", "--language", "en"]).exit_code == 0
    state = tmp_path / "site" / ".planb"
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    return state


def _store(state: Path) -> JournalStore:
    return JournalStore.for_state_dir(state, load_signer(KeyPaths.for_state_dir(state)))


def _drills(state: Path, count: int) -> list[StoredJournal]:
    store = _store(state)
    return [store.append("drill", {"scenario": "primary-outage", "status": "pass",
                                   "rto_seconds": 30 + n}) for n in range(count)]


def _remove(journal: StoredJournal) -> None:
    journal.path.unlink()
    journal.signature_path.unlink()


# -- the head, anchored outside the folder ------------------------------------------


def test_cut_short_chain_with_an_older_head_put_back_fails_against_the_anchored_head(
        site: Path) -> None:
    first = _drills(site, 2)
    older_head = (site / "journals" / HEAD_NAME).read_bytes()
    later = _drills(site, 2)
    anchored = later[-1].sha256
    # The attack: remove the two newest journals and put back the head of the time.
    for journal in later:
        _remove(journal)
    (site / "journals" / HEAD_NAME).write_bytes(older_head)
    keys = [load_public_key(KeyPaths.for_state_dir(site).public)]
    assert verify_directory(site / "journals", keys).ok  # what it cannot see alone
    failure = verify_directory(site / "journals", keys, expected_head=anchored).failure
    assert failure is not None and failure.reason == Reason.TRUNCATED
    assert anchored in failure.message and first[-1].path.name in failure.message
    cli = runner.invoke(app, ["report", "verify", "--head", anchored])
    assert cli.exit_code == 1
    assert "truncated" in cli.output


def test_anchored_head_that_is_not_the_newest_fails_and_the_newest_passes(site: Path) -> None:
    journals = _drills(site, 3)
    keys = [load_public_key(KeyPaths.for_state_dir(site).public)]
    older = verify_directory(site / "journals", keys, expected_head=journals[0].sha256)
    assert older.failure is not None and older.failure.reason == Reason.HEAD_MISMATCH
    assert "2 journal(s) were written after it" in older.failure.message
    newest = runner.invoke(app, ["report", "verify", "--head", journals[-1].sha256])
    assert newest.exit_code == 0, newest.output
    # report verify prints the head to keep.
    assert f"Head: seq 3 sha256 {journals[-1].sha256}" in newest.output
    typo = runner.invoke(app, ["report", "verify", "--head", journals[-1].sha256[:40]])
    assert typo.exit_code == 2 and "is not a SHA-256" in typo.output


def test_runbooks_print_the_chain_head(site: Path) -> None:
    before = runner.invoke(app, ["runbook", "render", "rotate-signing-key"])
    assert before.exit_code == 0, before.output
    assert "no journal yet" in before.output
    journals = _drills(site, 2)
    after = runner.invoke(app, ["runbook", "render", "rotate-signing-key"])
    assert f"seq 2, sha256 `{journals[-1].sha256}`" in after.output


def test_each_new_head_is_logged_to_syslog(tmp_path: Path) -> None:
    address = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslog:
        syslog.bind(str(address))
        syslog.settimeout(5)
        paths = KeyPaths(tmp_path / "keys")
        init_keys(paths, None)
        store = JournalStore(tmp_path / "journals", load_signer(paths),
                             anchor=SyslogAnchor(address))
        stored = store.append("drill", {"status": "pass"})
        line = syslog.recv(4096).decode()
    assert line.startswith("<13>planb[")  # facility user, severity notice
    assert f"planb journal head: folder={tmp_path / 'journals'} seq=1 " \
           f"sha256={stored.sha256} file={stored.path.name}" in line


def test_no_syslog_on_the_host_never_stops_a_journal(tmp_path: Path) -> None:
    paths = KeyPaths(tmp_path / "keys")
    init_keys(paths, None)
    anchor = SyslogAnchor(tmp_path / "no-such.sock")
    assert anchor("planb journal head", seq=1) is False
    store = JournalStore(tmp_path / "journals", load_signer(paths), anchor=anchor)
    assert store.append("drill", {"status": "pass"}).signature_path.exists()


# -- trusted keys come from outside the folder ---------------------------------------


def _planted(site: Path, tmp_path: Path) -> tuple[Signer, StoredJournal]:
    """An attacker's key dropped into keys/retired/ and a journal it signed."""
    attacker_keys = KeyPaths(tmp_path / "attacker")
    init_keys(attacker_keys, None)
    attacker = load_signer(attacker_keys)
    retired = KeyPaths.for_state_dir(site).retired
    retired.mkdir(exist_ok=True)
    shutil.copy(attacker_keys.public, retired / "signing-0123456789ab-20250101T000000Z.pub")
    forged = JournalStore.for_state_dir(site, attacker).append(
        "failover", {"status": "deactivated", "reason": "nothing happened"})
    return attacker, forged


def test_a_key_planted_in_keys_retired_is_not_trusted(site: Path, tmp_path: Path) -> None:
    _drills(site, 2)
    attacker, forged = _planted(site, tmp_path)
    result = verify_directory(site / "journals",
                              resolve_trust(site=KeyPaths.for_state_dir(site)))
    failure = result.failure
    assert failure is not None
    assert (failure.file, failure.reason) == (forged.path.name, Reason.UNKNOWN_KEY)
    assert "not trusted" in failure.message and attacker.fingerprint in failure.message
    cli = runner.invoke(app, ["report", "verify"])
    assert cli.exit_code == 1, cli.output
    assert f"{forged.path.name}: unknown key" in cli.output


def test_pinned_keys_replace_the_key_files(site: Path, tmp_path: Path) -> None:
    _drills(site, 2)
    own = load_signer(KeyPaths.for_state_dir(site)).fingerprint
    assert runner.invoke(app, ["report", "verify", "--trust", own]).exit_code == 0
    # Pinned in planb.yml: a key swapped into keys/signing.pub is not trusted.
    config = tmp_path / "site" / "planb.yml"
    config.write_text(config.read_text().replace(
        "  trusted_keys: []", f'  trusted_keys: ["{own}"]'))
    original = tmp_path / "site-signing.pub"
    shutil.copy(KeyPaths.for_state_dir(site).public, original)
    shutil.rmtree(KeyPaths.for_state_dir(site).directory)
    init_keys(KeyPaths.for_state_dir(site), None)  # the attacker's own key, in its place
    _drills(site, 1)
    swapped = runner.invoke(app, ["report", "verify"])
    assert swapped.exit_code == 1
    assert f"no public key file for the trusted fingerprint(s) {own}" in swapped.output
    # With the real public key at hand, the journal signed by the swapped key is named.
    named = runner.invoke(app, ["report", "verify", "--public-key", str(original),
                                "--public-key", str(KeyPaths.for_state_dir(site).public),
                                "--trust", own])
    assert named.exit_code == 1
    assert "000003-drill" in named.output and "unknown key" in named.output


# -- a retired key verifies only journals written before its retirement ------------


def test_journal_signed_with_a_key_after_its_rotation_fails(site: Path, tmp_path: Path) -> None:
    _drills(site, 2)
    paths = KeyPaths.for_state_dir(site)
    stolen = load_signer(paths)  # a copy of the old private key, kept by someone
    rotated = runner.invoke(app, ["keys", "init", "--force"])
    assert rotated.exit_code == 0, rotated.output
    assert "000003-key-rotation" in rotated.output
    _drills(site, 1)
    ok = runner.invoke(app, ["report", "verify"])
    assert ok.exit_code == 0, ok.output  # old journals verify through the rotation journal
    # An auditor who pins only the new key still verifies the old journals.
    new = load_signer(paths).fingerprint
    assert runner.invoke(app, ["report", "verify", "--trust", new]).exit_code == 0
    late = JournalStore.for_state_dir(site, stolen).append("drill", {"status": "pass"})
    result = verify_directory(site / "journals", resolve_trust(site=paths))
    failure = result.failure
    assert failure is not None
    assert (failure.file, failure.reason) == (late.path.name, Reason.RETIRED_KEY)
    assert "000003-key-rotation" in failure.message and "before its retirement" in \
        failure.message
    cli = runner.invoke(app, ["report", "verify"])
    assert cli.exit_code == 1 and "retired key" in cli.output


def test_a_rotation_made_before_rotation_journals_verifies_once_the_old_key_is_pinned(
        site: Path) -> None:
    _drills(site, 2)
    paths = KeyPaths.for_state_dir(site)
    old = load_signer(paths).fingerprint
    init_keys(paths, None, force=True)  # as older planb rotated: no rotation journal
    _drills(site, 1)
    unpinned = runner.invoke(app, ["report", "verify"])
    assert unpinned.exit_code == 1
    assert f"--trust {old}" in unpinned.output  # the message says how
    new = load_signer(paths).fingerprint
    pinned = runner.invoke(app, ["report", "verify", "--trust", old, "--trust", new])
    assert pinned.exit_code == 0, pinned.output


# -- a crash between a journal and its signature is repairable -----------------------


class _DiesOnSigning(Signer):
    """The process is killed right after the journal file is written."""

    def sign(self, data: bytes) -> bytes:
        raise KeyboardInterrupt


def test_crash_between_journal_and_signature_is_repaired_on_the_record(site: Path) -> None:
    _drills(site, 2)
    paths = KeyPaths.for_state_dir(site)
    with pytest.raises(KeyboardInterrupt):
        JournalStore.for_state_dir(site, _DiesOnSigning(load_signer(paths).private_key)) \
            .append("failover", {"status": "active"})
    orphan = site / "journals" / next(p.name for p in (site / "journals").glob("000003-*.json"))
    assert not orphan.with_suffix(".sig").exists()
    broken = runner.invoke(app, ["report", "verify"])
    assert broken.exit_code == 1 and "unsigned" in broken.output
    repaired = runner.invoke(app, ["report", "repair", "--author", "agnès"])
    assert repaired.exit_code == 0, repaired.output
    assert f"signed {orphan.name}" in repaired.output
    ok = runner.invoke(app, ["report", "verify", "--json"])
    assert ok.exit_code == 0, ok.output
    verdict = json.loads(ok.stdout)
    assert any("signed after the fact" in n and "agnès" in n for n in verdict["notes"])
    record = json.loads((site / "journals" / verdict["journals"][-1]["file"]).read_bytes())
    assert record["kind"] == "addendum" and record["payload"]["repaired"]["by"] == "agnès"
    assert record["payload"]["target"]["seq"] == 3
    assert runner.invoke(app, ["report", "repair"]).output.startswith("nothing to repair")


def test_repair_refuses_anything_but_a_missing_signature(site: Path) -> None:
    journals = _drills(site, 3)
    journals[2].signature_path.unlink()
    data = bytearray(journals[1].path.read_bytes())
    data[data.index(b"primary")] ^= 0x20
    journals[1].path.write_bytes(bytes(data))
    refused = runner.invoke(app, ["report", "repair"])
    assert refused.exit_code == 2
    assert f"{journals[1].path.name}: altered" in refused.output
    assert not journals[2].signature_path.exists()
