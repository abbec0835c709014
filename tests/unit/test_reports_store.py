"""The journal store: append signed, chained journals; list and find them."""

from __future__ import annotations

import base64
import json
import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from planb.errors import PlanbError, UsageError
from planb.reports.canonical import NotCanonicalError, canonical_bytes
from planb.reports.journal import ADDENDUM_KIND, FORMAT, addendum_payload
from planb.reports.keys import KeyPaths, Signer, init_keys, load_signer, verify_signature
from planb.reports.store import JournalStore, sha256_hex
from planb.reports.verify import verify_directory


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    paths = KeyPaths.for_state_dir(tmp_path / "state")
    init_keys(paths, None)
    return load_signer(paths)


@pytest.fixture
def store(tmp_path: Path, signer: Signer) -> JournalStore:
    return JournalStore.for_state_dir(tmp_path / "state", signer)


def drill(n: int) -> dict[str, object]:
    return {"scenario": "primary-outage", "status": "pass", "rto_seconds": 40 + n,
            "operator": "Agnès Dupré"}


def test_append_writes_canonical_signed_chained_journals(store: JournalStore,
                                                         signer: Signer) -> None:
    written = [store.append("drill", drill(n)) for n in range(3)]
    assert [j.seq for j in written] == [1, 2, 3]
    previous = None
    for journal in written:
        data = journal.path.read_bytes()
        assert journal.path.name == f"{journal.seq:06d}-drill-{journal.id[:8]}.json"
        assert canonical_bytes(json.loads(data)) == data
        envelope = json.loads(data)
        assert envelope["format"] == FORMAT and envelope["kind"] == "drill"
        assert envelope["previous_sha256"] == previous
        assert envelope["key_fingerprint"] == signer.fingerprint
        assert envelope["payload"]["operator"] == "Agnès Dupré"
        created = datetime.fromisoformat(envelope["created_at"].replace("Z", "+00:00"))
        assert created.tzinfo == UTC
        signature = base64.b64decode(journal.signature_path.read_bytes())
        assert verify_signature(signer.public_key, signature, data)
        previous = sha256_hex(data)
        assert journal.sha256 == previous


def test_bad_payload_refused_before_anything_is_written(store: JournalStore) -> None:
    with pytest.raises(NotCanonicalError, match=r"\$\.started"):
        store.append("drill", {"started": datetime.now(UTC)})
    with pytest.raises(ValueError, match="kind"):
        store.append("Drill Run", {})
    assert not store.directory.exists() or not list(store.directory.glob("*.json"))


def test_store_without_signer_refuses_to_append(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="without a signing key"):
        JournalStore(tmp_path).append("drill", {})


def test_list_and_get_by_seq_id_and_file_name(store: JournalStore) -> None:
    first = store.append("drill", drill(1))
    second = store.append("failover", {"status": "active"})
    assert [j.id for j in store.list()] == [first.id, second.id]
    assert store.get("2").id == second.id
    assert store.get(first.id).id == first.id
    assert store.get(first.id[:6]).id == first.id
    assert store.get("000002-failover").id == second.id
    with pytest.raises(PlanbError, match="no journal matches"):
        store.get("99")


def test_ambiguous_reference_is_refused(store: JournalStore) -> None:
    store.append("drill", drill(1))
    store.append("drill", drill(2))
    with pytest.raises(UsageError, match="matches 2 journals"):
        store.get("00000")


def test_addendum_is_a_journal_pointing_at_its_target(store: JournalStore) -> None:
    target = store.append("drill", drill(1))
    addendum = store.append(ADDENDUM_KIND, addendum_payload(
        target, {"observations": ["le SMS est arrivé tard"], "actions": []}))
    assert addendum.addendum_target_id == target.id
    assert addendum.payload["target"] == {"id": target.id, "seq": 1, "sha256": target.sha256}
    assert [a.id for a in store.addenda(target.id)] == [addendum.id]
    assert verify_directory(store.directory, [store.signer.public_key]).ok  # type: ignore[union-attr]


def test_append_after_newest_journal_deleted_keeps_the_gap_visible(store: JournalStore) -> None:
    store.append("drill", drill(1))
    gone = store.append("drill", drill(2))
    gone.path.unlink()
    gone.signature_path.unlink()
    after = store.append("drill", drill(3))
    assert after.seq == 3
    assert after.envelope.previous_sha256 == gone.sha256
    failure = verify_directory(store.directory, [store.signer.public_key]).failure  # type: ignore[union-attr]
    assert failure is not None and failure.file == after.path.name
    assert "seq 2 is missing" in failure.message


def _append_many(directory: str, state: str, count: int) -> None:
    signer = load_signer(KeyPaths.for_state_dir(Path(state)))
    store = JournalStore(Path(directory), signer)
    for n in range(count):
        store.append("drill", drill(n))


def test_concurrent_writers_never_share_a_seq(store: JournalStore, tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many,
                               args=(str(store.directory), str(tmp_path / "state"), 5))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    journals = store.list()
    assert [j.seq for j in journals] == list(range(1, 21))
    result = verify_directory(store.directory, [store.signer.public_key])  # type: ignore[union-attr]
    assert result.ok, result.failure


def test_returned_journal_is_what_was_signed_even_if_payload_changes(
        store: JournalStore) -> None:
    payload: dict[str, object] = {"status": "pass", "steps": [{"name": "fault"}]}
    journal = store.append("drill", payload)
    payload["status"] = "failed"
    payload["steps"].append({"name": "later"})  # type: ignore[attr-defined]
    assert journal.payload == {"status": "pass", "steps": [{"name": "fault"}]}
    assert store.get(journal.id).payload == journal.payload
