"""Read a journals folder into :class:`JournalDoc` objects with their verification state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from planb.reports.journal import StoredJournal
from planb.reports.render.model import JournalDoc, Verification
from planb.reports.store import JournalStore
from planb.reports.trust import Trust
from planb.reports.verify import JournalCheck, verify_directory


def load_docs(folder: Path, keys: Trust | Sequence[Ed25519PublicKey]) -> list[JournalDoc]:
    """Every readable journal of ``folder`` in seq order, each with its verdict.

    With no ``keys`` signatures are "not checked" (the chain is still checked).
    """
    if not folder.is_dir():
        return []
    checks = {c.file: c for c in verify_directory(folder, keys).journals}
    return [to_doc(j, checks.get(j.path.name)) for j in JournalStore(folder).list()]


def to_doc(journal: StoredJournal, check: JournalCheck | None) -> JournalDoc:
    """One stored journal and its check as a :class:`JournalDoc`."""
    if check is None:
        verification = Verification()
    elif check.problem is not None:
        verification = Verification(str(check.problem.reason), check.signed_by,
                                    check.problem.message)
    else:
        verification = Verification(check.signature, check.signed_by)
    return JournalDoc(data=json.loads(journal.path.read_bytes()), file=journal.path.name,
                      sha256=journal.sha256, verification=verification)
