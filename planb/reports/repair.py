"""Repair a crash between a journal and its signature: sign the orphan, on the record.

:meth:`JournalStore.append` writes the journal, then its ``.sig``, then the head. A
crash (power cut, kill -9) between the first two leaves a journal with no signature:
``report verify`` would fail on it forever. :func:`repair` signs such an orphan only
after checking it as verification would (canonical envelope, file name, its link to a
journal that verifies, written with this very key), then appends an addendum that
says so (``planb-repair/1``: who, when, with which key, which SHA-256), so the
late signature is visible in the chain instead of hidden. Nothing else is repaired:
any other failure is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from planb.errors import PlanbError, UsageError
from planb.files import write_atomic
from planb.reports.canonical import is_canonical
from planb.reports.journal import ADDENDUM_KIND, Envelope, StoredJournal, addendum_payload
from planb.reports.store import JournalStore, encode_signature, read_journal, utc_now
from planb.reports.trust import Trust
from planb.reports.verify import REPAIR_FORMAT, Reason, verify_directory

log = logging.getLogger(__name__)

#: At most this many orphans in one run (a crash leaves one; more is suspicious).
MAX_ORPHANS = 3


@dataclass(frozen=True)
class Repaired:
    """One orphan signed, and the addendum that records it."""

    journal: StoredJournal
    record: StoredJournal


def repair(store: JournalStore, trust: Trust | Sequence[Ed25519PublicKey], *,
           by: str) -> list[Repaired]:
    """Sign every journal whose only fault is a missing signature; return what was done.

    Raises UsageError when the chain fails for any other reason, or when an orphan
    was not written with the store's signing key (then it is not ours to sign).
    """
    signer = store.signer
    if signer is None:
        raise UsageError("repair needs the signing key")
    done: list[Repaired] = []
    for _ in range(MAX_ORPHANS + 1):
        result = verify_directory(store.directory, trust)
        failure = result.failure
        if failure is None:
            return done
        orphan = next((c for c in result.journals if c.problem is failure), None)
        if failure.reason != Reason.UNSIGNED or orphan is None or orphan.envelope is None:
            raise UsageError(f"cannot repair: {failure}",
                             hint="repair only signs a journal whose signature is missing "
                             "after an interrupted write; anything else is evidence to keep")
        if len(done) == MAX_ORPHANS:
            raise UsageError(f"more than {MAX_ORPHANS} journals lack a signature: not an "
                             "interrupted write; not repairing")
        journal = read_journal(store.directory / orphan.file)
        _check_orphan(journal, orphan.chain, signer.fingerprint)
        data = journal.path.read_bytes()
        write_atomic(journal.signature_path, encode_signature(signer.sign(data)))
        log.warning("signed %s after the fact (its signature was missing)", orphan.file)
        record = store.append(ADDENDUM_KIND, addendum_payload(journal, {
            "format": REPAIR_FORMAT, "author": by, "written_at": utc_now(),
            "observations": [f"{journal.path.name} was written but not signed (the write "
                             "was interrupted); 'planb report repair' checked its content "
                             "and chain link and signed it afterwards."],
            "actions": [], "target_kind": journal.kind,
            "repaired": {"by": by, "at": utc_now(), "signed_with": signer.fingerprint,
                         "reason": "signature missing after an interrupted write"},
        }))
        done.append(Repaired(journal, record))
    raise PlanbError("repair did not converge")  # pragma: no cover - bounded above


def _check_orphan(journal: StoredJournal, chain: str, fingerprint: str) -> None:
    """Refuse an orphan verification would refuse for anything but its signature."""
    name = journal.path.name
    data = journal.path.read_bytes()
    envelope = Envelope.from_json(json.loads(data))
    problems = []
    if not is_canonical(data):
        problems.append("it is not canonical JSON")
    if envelope.filename != name:
        problems.append(f"its content names another file ({envelope.filename})")
    if chain != "ok":
        problems.append("its link to the journal before it does not verify")
    if envelope.key_fingerprint != fingerprint:
        problems.append(f"it names key {envelope.key_fingerprint}, not the signing key "
                        f"{fingerprint}")
    if problems:
        raise UsageError(f"cannot repair {name}: {'; '.join(problems)}",
                         hint="only a journal this site wrote and failed to sign is repaired")
