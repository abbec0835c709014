"""Verification with only a public key: every tamper case fails and names the journal."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from planb.reports.journal import HEAD_NAME, StoredJournal
from planb.reports.keys import (
    KeyPaths,
    Signer,
    init_keys,
    load_public_key,
    load_signer,
)
from planb.reports.store import JournalStore
from planb.reports.verify import Reason, verify_directory


def make_signer(state: Path) -> Signer:
    paths = KeyPaths.for_state_dir(state)
    init_keys(paths, None)
    return load_signer(paths)


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return make_signer(tmp_path / "state")


@pytest.fixture
def store(tmp_path: Path, signer: Signer) -> JournalStore:
    return JournalStore.for_state_dir(tmp_path / "state", signer)


@pytest.fixture
def chain(store: JournalStore) -> list[StoredJournal]:
    """Four journals, as after three drills and one failover."""
    return [
        store.append("drill", {"scenario": "primary-outage", "status": "pass", "rto_seconds": 41}),
        store.append("drill", {"scenario": "messaging-crash", "status": "pass", "rto_seconds": 12}),
        store.append("failover", {"status": "active", "reason": "exercice"}),
        store.append("drill", {"scenario": "directory-crash", "status": "deviated"}),
    ]


def verify(store: JournalStore, signer: Signer):  # type: ignore[no-untyped-def]
    return verify_directory(store.directory, [signer.public_key])


def test_untouched_chain_verifies(store: JournalStore, signer: Signer,
                                  chain: list[StoredJournal]) -> None:
    result = verify(store, signer)
    assert result.ok and result.failure is None
    assert [c.file for c in result.journals] == [j.path.name for j in chain]
    assert all(c.signature == "valid" and c.chain == "ok" for c in result.journals)
    assert result.head_seq == 4


@pytest.mark.parametrize("index", range(4))
def test_one_altered_byte_in_any_journal_is_named(store: JournalStore, signer: Signer,
                                                  chain: list[StoredJournal], index: int) -> None:
    target = chain[index].path
    data = bytearray(target.read_bytes())
    position = data.index(b'"status":"') + len(b'"status":"')
    data[position] ^= 0x01  # "pass" -> "qass": still valid JSON, one byte different
    target.write_bytes(bytes(data))
    failure = verify(store, signer).failure
    assert failure is not None
    assert (failure.file, failure.reason) == (target.name, Reason.ALTERED)


def test_altered_byte_that_breaks_the_json_is_still_altered(
        store: JournalStore, signer: Signer, chain: list[StoredJournal]) -> None:
    target = chain[1].path
    target.write_bytes(target.read_bytes()[:-1] + b"]")
    failure = verify(store, signer).failure
    assert failure is not None and (failure.file, failure.reason) == (target.name, Reason.ALTERED)


@pytest.mark.parametrize(("index", "named", "missing"), [(0, 1, "seq 1"), (1, 2, "seq 2"),
                                                          (2, 3, "seq 3")])
def test_deleted_journal_is_named(store: JournalStore, signer: Signer, chain: list[StoredJournal],
                                  index: int, named: int, missing: str) -> None:
    chain[index].path.unlink()
    chain[index].signature_path.unlink()
    failure = verify(store, signer).failure
    assert failure is not None and failure.reason == Reason.MISSING
    assert failure.file == chain[named].path.name
    assert f"{missing} is missing" in failure.message


def test_deleted_newest_journal_is_caught_by_the_head(
        store: JournalStore, signer: Signer, chain: list[StoredJournal]) -> None:
    chain[-1].path.unlink()
    chain[-1].signature_path.unlink()
    failure = verify(store, signer).failure
    assert failure is not None and failure.reason == Reason.MISSING
    assert failure.file == HEAD_NAME and chain[-1].path.name in failure.message


def test_deleted_head_fails(store: JournalStore, signer: Signer,
                           chain: list[StoredJournal]) -> None:
    (store.directory / HEAD_NAME).unlink()
    failure = verify(store, signer).failure
    assert failure is not None and (failure.file, failure.reason) == (HEAD_NAME, Reason.MISSING)


def test_journal_deleted_but_signature_left_is_named(
        store: JournalStore, signer: Signer, chain: list[StoredJournal]) -> None:
    chain[2].path.unlink()
    failure = verify(store, signer).failure
    assert failure is not None
    assert (failure.file, failure.reason) == (chain[2].path.name, Reason.MISSING)


def test_missing_signature_is_unsigned(store: JournalStore, signer: Signer,
                                       chain: list[StoredJournal]) -> None:
    chain[1].signature_path.unlink()
    failure = verify(store, signer).failure
    assert failure is not None
    assert (failure.file, failure.reason) == (chain[1].path.name, Reason.UNSIGNED)


def _swap(a: Path, b: Path) -> None:
    tmp = a.with_name("swap.tmp")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def test_two_journals_swapped_is_reordered(store: JournalStore, signer: Signer,
                                           chain: list[StoredJournal]) -> None:
    # Swap the contents (journal and signature) of seq 2 and 3, keeping the names.
    _swap(chain[1].path, chain[2].path)
    _swap(chain[1].signature_path, chain[2].signature_path)
    failure = verify(store, signer).failure
    assert failure is not None
    assert (failure.file, failure.reason) == (chain[1].path.name, Reason.REORDERED)
    assert "signed content is seq 3" in failure.message


def test_two_journals_renamed_into_each_others_place_is_reordered(
        store: JournalStore, signer: Signer, chain: list[StoredJournal]) -> None:
    first, second = chain[1], chain[2]
    moves = {}
    for journal, other in ((first, second), (second, first)):
        for suffix in (".json", ".sig"):
            source = journal.path.with_suffix(suffix)
            name = f"{other.seq:06d}-{journal.kind}-{journal.id[:8]}{suffix}"
            moves[source] = source.with_name(name)
    for source, target in moves.items():
        source.rename(target)
    failure = verify(store, signer).failure
    assert failure is not None and failure.reason == Reason.REORDERED
    assert failure.file == f"000002-{second.kind}-{second.id[:8]}.json"


def test_journal_from_another_key_is_unknown_key(tmp_path: Path, store: JournalStore,
                                                 signer: Signer,
                                                 chain: list[StoredJournal]) -> None:
    intruder = JournalStore(store.directory, make_signer(tmp_path / "other"))
    forged = intruder.append("drill", {"scenario": "primary-outage", "status": "pass"})
    failure = verify(store, signer).failure
    assert failure is not None
    assert (failure.file, failure.reason) == (forged.path.name, Reason.UNKNOWN_KEY)
    assert intruder.signer is not None and intruder.signer.fingerprint in failure.message


def test_journal_resigned_with_another_key_is_altered(tmp_path: Path, store: JournalStore,
                                                      signer: Signer,
                                                      chain: list[StoredJournal]) -> None:
    other = make_signer(tmp_path / "other")
    data = chain[1].path.read_bytes()
    chain[1].signature_path.write_bytes(base64.b64encode(other.sign(data)))
    failure = verify(store, signer).failure
    assert failure is not None
    assert (failure.file, failure.reason) == (chain[1].path.name, Reason.ALTERED)


def test_wrong_public_key_fails_on_the_first_journal(tmp_path: Path, store: JournalStore,
                                                     chain: list[StoredJournal]) -> None:
    stranger = make_signer(tmp_path / "stranger")
    failure = verify_directory(store.directory, [stranger.public_key]).failure
    assert failure is not None
    assert (failure.file, failure.reason) == (chain[0].path.name, Reason.UNKNOWN_KEY)


def test_copy_verifies_with_only_the_exported_public_key(
        tmp_path: Path, store: JournalStore, chain: list[StoredJournal]) -> None:
    elsewhere = tmp_path / "auditor"
    shutil.copytree(store.directory, elsewhere / "journals")
    public = elsewhere / "site.pub"
    shutil.copy(KeyPaths.for_state_dir(tmp_path / "state").public, public)
    shutil.rmtree(tmp_path / "state")
    result = verify_directory(elsewhere / "journals", [load_public_key(public)])
    assert result.ok, result.failure
    assert len(result.journals) == 4


def test_journals_signed_before_a_key_rotation_verify_with_both_keys(
        tmp_path: Path, store: JournalStore, chain: list[StoredJournal]) -> None:
    paths = KeyPaths.for_state_dir(tmp_path / "state")
    old = load_public_key(paths.public)
    init_keys(paths, None, force=True)
    JournalStore(store.directory, load_signer(paths)).append("drill", {"status": "pass"})
    assert verify_directory(store.directory, [load_public_key(paths.public), old]).ok
    result = verify_directory(store.directory, [load_public_key(paths.public)])
    assert result.failure is not None and result.failure.reason == Reason.UNKNOWN_KEY


def test_signed_but_not_canonical_is_malformed(store: JournalStore, signer: Signer,
                                               chain: list[StoredJournal]) -> None:
    target = chain[3]
    pretty = target.path.read_bytes().replace(b'","', b'", "')
    target.path.write_bytes(pretty)
    target.signature_path.write_bytes(base64.b64encode(signer.sign(pretty)))
    failure = verify(store, signer).failure
    assert failure is not None
    assert (failure.file, failure.reason) == (target.path.name, Reason.MALFORMED)


def test_garbage_signature_file_is_malformed(store: JournalStore, signer: Signer,
                                             chain: list[StoredJournal]) -> None:
    chain[0].signature_path.write_text("not base64 !!")
    failure = verify(store, signer).failure
    assert failure is not None
    assert (failure.file, failure.reason) == (chain[0].path.name, Reason.MALFORMED)


def test_altered_head_fails(store: JournalStore, signer: Signer,
                           chain: list[StoredJournal]) -> None:
    head = store.directory / HEAD_NAME
    head.write_bytes(head.read_bytes().replace(b'"seq":4', b'"seq":3'))
    failure = verify(store, signer).failure
    assert failure is not None and (failure.file, failure.reason) == (HEAD_NAME, Reason.ALTERED)


def test_head_left_behind_by_an_interrupted_write_is_a_note(
        store: JournalStore, signer: Signer, chain: list[StoredJournal]) -> None:
    head = store.directory / HEAD_NAME
    older = head.read_bytes()
    store.append("drill", {"status": "pass"})
    head.write_bytes(older)
    result = verify(store, signer)
    assert result.ok
    assert any("behind the newest journal" in note for note in result.notes)


def test_empty_folder_is_not_ok(tmp_path: Path, signer: Signer) -> None:
    (tmp_path / "empty").mkdir()
    assert not verify_directory(tmp_path / "empty", [signer.public_key]).ok
