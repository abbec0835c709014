"""Addenda: a person's observations and follow-up actions, signed into the chain.

ISO 22301 §8.5 and NIST SP 800-84 expect an exercise report to hold observations,
recommendations and follow-up actions that the drill cannot know. ``planb report
annotate`` adds them as an ordinary journal of kind ``addendum`` (signed and chained
like any other) whose payload pins the annotated journal by id, seq and SHA-256::

    {"format": "planb-addendum/1", "author": "agnès", "written_at": "2025-03-01T…Z",
     "observations": ["…"], "actions": ["…"], "target_kind": "drill",
     "target": {"id": "…", "seq": 3, "sha256": "…"}}

The annotated journal is never changed; reports of it show its addenda.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from planb.engine.redaction import Redactor
from planb.errors import UsageError
from planb.reports.journal import ADDENDUM_KIND, StoredJournal, addendum_payload
from planb.reports.store import JournalNotFound, JournalStore, utc_now

log = logging.getLogger(__name__)

PAYLOAD_FORMAT = "planb-addendum/1"
MAX_TEXT = 2000


def annotate(store: JournalStore, ref: str, *, observations: Sequence[str],
             actions: Sequence[str], author: str) -> StoredJournal:
    """Append a signed addendum to the journal ``ref`` (seq, id or file name); return it.

    UsageError (exit 2) when nothing is given, a text is too long, ``ref`` matches no
    journal, or ``ref`` is itself an addendum. ``password=…``-like forms are masked.
    """
    notes = _clean(observations, "--observation")
    todo = _clean(actions, "--action")
    if not notes and not todo:
        raise UsageError("give at least one --observation TEXT or --action TEXT")
    if not author.strip():
        raise UsageError("the author is empty", hint="give --author NAME")
    try:
        target = store.get(ref)
    except JournalNotFound as exc:
        raise UsageError(str(exc), hint="see 'planb report list'") from None
    if target.kind == ADDENDUM_KIND:
        raise UsageError(f"{target.path.name} is itself an addendum",
                         hint=f"annotate the journal it annotates ({target.addendum_target_id})")
    payload = addendum_payload(target, {
        "format": PAYLOAD_FORMAT, "author": author.strip(), "written_at": utc_now(),
        "observations": notes, "actions": todo, "target_kind": target.kind,
    })
    stored = store.append(ADDENDUM_KIND, payload)
    log.info("addendum %s to %s: %d observation(s), %d action(s)", stored.path.name,
             target.path.name, len(notes), len(todo))
    return stored


def _clean(texts: Sequence[str], option: str) -> list[str]:
    mask = Redactor()
    cleaned = []
    for text in texts:
        text = text.strip()
        if not text:
            raise UsageError(f"{option} is empty")
        if len(text) > MAX_TEXT:
            raise UsageError(f"{option} is {len(text)} characters long; at most {MAX_TEXT}",
                             hint="summarise it, and keep the full text elsewhere")
        cleaned.append(mask(text, MAX_TEXT + 100))
    return cleaned
