"""The journal envelope: what every signed record looks like on disk, and how files are named.

A journal is one canonical-JSON file (see :mod:`planb.reports.canonical`)::

    {"created_at": "2025-03-01T09:30:00.123Z",   UTC, ISO 8601, millisecond precision
     "format": "planb-journal/1",
     "id": "0b6f…",                              uuid4, lower-case
     "key_fingerprint": "SHA256:…",              the signing key (see planb.reports.keys)
     "kind": "drill",                            what produced it: drill, failover, addendum…
     "payload": {…},                             whatever the producer recorded (JSON object)
     "previous_sha256": "…" | null,              SHA-256 (hex) of the previous journal file's
                                                 bytes; null only for seq 1
     "seq": 3}                                   1, 2, 3… with no gaps

named ``<seq:06d>-<kind>-<first 8 hex digits of id>.json`` (seq grows past six digits
if it must), next to a detached signature ``<same stem>.sig``: the base64 of the
Ed25519 signature over exactly the bytes of the ``.json`` file.

The chain also has a signed **head** (``head.json``: ``{"head": {seq, sha256, file,
key_fingerprint, ...}, "signature": base64}``) naming the newest journal, rewritten
after each append, so removing the newest journals is detected too.

Addenda (a person's observations added later) are ordinary journals of kind
``addendum`` whose payload holds ``target``: the id, seq and SHA-256 of the journal
they annotate (see :func:`addendum_payload`). The original journal is never touched.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

FORMAT = "planb-journal/1"
HEAD_FORMAT = "planb-journal-head/1"
HEAD_NAME = "head.json"
ADDENDUM_KIND = "addendum"

KIND_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
FILENAME_RE = re.compile(
    r"^(?P<seq>\d{6,})-(?P<kind>[a-z][a-z0-9-]*)-(?P<short>[0-9a-f]{8})\.(?P<ext>json|sig)$"
)
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_FINGERPRINT_RE = re.compile(r"^SHA256:[0-9a-f]{64}$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_ENVELOPE_KEYS = {"format", "seq", "id", "kind", "created_at", "previous_sha256",
                  "key_fingerprint", "payload"}
MAX_KIND_LENGTH = 32

#: A JSON value as the payload holds it (after json.loads: dict, list, str, int, float, ...).
JsonObject = Mapping[str, Any]


class MalformedJournal(ValueError):
    """The file is not a journal envelope; the message says which field is wrong."""


@dataclass(frozen=True)
class Envelope:
    """The signed content of one journal."""

    seq: int
    id: str
    kind: str
    created_at: str
    previous_sha256: str | None
    key_fingerprint: str
    payload: JsonObject
    format: str = FORMAT

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def filename(self) -> str:
        """The name the journal file must have."""
        return journal_filename(self.seq, self.kind, self.id)

    def as_json(self) -> dict[str, Any]:
        """The envelope as a JSON object (what is written, canonicalised)."""
        return {
            "format": self.format, "seq": self.seq, "id": self.id, "kind": self.kind,
            "created_at": self.created_at, "previous_sha256": self.previous_sha256,
            "key_fingerprint": self.key_fingerprint, "payload": self.payload,
        }

    @classmethod
    def from_json(cls, data: Any) -> Envelope:
        """Validate a parsed journal; raise :class:`MalformedJournal` naming the bad field."""
        if not isinstance(data, dict):
            raise MalformedJournal("not a JSON object")
        missing = sorted(_ENVELOPE_KEYS - data.keys())
        if missing:
            raise MalformedJournal(f"missing field(s): {', '.join(missing)}")
        extra = sorted(data.keys() - _ENVELOPE_KEYS)
        if extra:
            raise MalformedJournal(f"unknown field(s): {', '.join(extra)}")
        if data["format"] != FORMAT:
            raise MalformedJournal(f"format is {data['format']!r}, expected {FORMAT!r}")
        seq = data["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise MalformedJournal(f"seq {seq!r} is not a positive integer")
        _check(data, "id", lambda v: isinstance(v, str) and bool(_UUID_RE.match(v)), "a uuid4")
        _check(data, "kind", valid_kind, "a kind (lower-case letters, digits, -)")
        _check(data, "created_at", _is_utc_timestamp, "a UTC ISO 8601 time ending in Z")
        _check(data, "key_fingerprint",
               lambda v: isinstance(v, str) and bool(_FINGERPRINT_RE.match(v)),
               "SHA256: and 64 hex digits")
        previous = data["previous_sha256"]
        if seq == 1 and previous is not None:
            raise MalformedJournal("seq 1 must have previous_sha256 null")
        if seq > 1 and not (isinstance(previous, str) and _SHA256_RE.match(previous)):
            raise MalformedJournal(f"previous_sha256 {previous!r} is not 64 hex digits")
        if not isinstance(data["payload"], dict):
            raise MalformedJournal("payload is not a JSON object")
        return cls(seq=seq, id=data["id"], kind=data["kind"], created_at=data["created_at"],
                   previous_sha256=previous, key_fingerprint=data["key_fingerprint"],
                   payload=data["payload"], format=data["format"])


@dataclass(frozen=True)
class StoredJournal:
    """A journal read from (or just written to) a journals directory."""

    path: Path
    envelope: Envelope
    sha256: str

    @property
    def signature_path(self) -> Path:
        return signature_path(self.path)

    @property
    def seq(self) -> int:
        return self.envelope.seq

    @property
    def id(self) -> str:
        return self.envelope.id

    @property
    def kind(self) -> str:
        return self.envelope.kind

    @property
    def payload(self) -> JsonObject:
        return self.envelope.payload

    @property
    def addendum_target_id(self) -> str | None:
        """For an addendum, the id of the journal it annotates; else None."""
        if self.kind != ADDENDUM_KIND:
            return None
        target = self.payload.get("target")
        return target.get("id") if isinstance(target, dict) else None


def valid_kind(kind: object) -> bool:
    """Whether ``kind`` can name a journal (it goes into the file name)."""
    return isinstance(kind, str) and len(kind) <= MAX_KIND_LENGTH and bool(KIND_RE.match(kind))


def new_id() -> str:
    return str(uuid.uuid4())


def journal_filename(seq: int, kind: str, journal_id: str) -> str:
    return f"{seq:06d}-{kind}-{journal_id[:8]}.json"


def signature_path(journal_path: Path) -> Path:
    return journal_path.with_suffix(".sig")


def parse_filename(name: str) -> tuple[int, str, str, str] | None:
    """``(seq, kind, short id, "json"|"sig")`` for a journal or signature file name, else None."""
    match = FILENAME_RE.match(name)
    if match is None:
        return None
    return int(match["seq"]), match["kind"], match["short"], match["ext"]


def addendum_payload(target: StoredJournal, content: JsonObject) -> dict[str, Any]:
    """The payload of an addendum to ``target``: ``content`` plus the pinned target."""
    if "target" in content:
        raise ValueError("an addendum's content cannot have its own 'target' key")
    return {**content, "target": {"id": target.id, "seq": target.seq, "sha256": target.sha256}}


def _check(data: dict[str, Any], key: str, ok: Any, what: str) -> None:
    if not ok(data[key]):
        raise MalformedJournal(f"{key} {data[key]!r} is not {what}")


def _is_utc_timestamp(value: object) -> bool:
    if not isinstance(value, str) or not value.endswith("Z"):
        return False
    try:
        datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        return False
    return True
