"""The journal store: append signed, chained journals; list and find them.

Producers (drills, failover activations, report annotations) hand :meth:`JournalStore.append`
a kind and a JSON-able payload; the store does the envelope, the chain, the signature
and the head. Load the signer *before* starting work (a drill should know its journal
can be signed before it injects a fault)::

    store = JournalStore.for_state_dir(config.state_dir, load_signer(KeyPaths.for_state_dir(
        config.state_dir), PassphraseSource(file=..., env=...)))
    store.append("drill", {"scenario": "primary-outage", "status": "pass", ...})

Appends from several processes are serialised with an ``fcntl`` lock on
``journals/.lock``; each file is written atomically (temporary file + rename), the
journal first, then its signature, then the head (one file holding its own
signature). Each new head is also logged to the controller's system log
(:mod:`planb.reports.anchor`), outside the folder, so that putting back an older
head after deleting journals is caught by ``planb report verify --head HASH``.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import contextlib
import fcntl
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from planb.errors import PlanbError, UsageError
from planb.files import write_atomic
from planb.reports.anchor import SyslogAnchor
from planb.reports.canonical import canonical_bytes
from planb.reports.journal import (
    HEAD_FORMAT,
    HEAD_NAME,
    Envelope,
    JsonObject,
    MalformedJournal,
    StoredJournal,
    new_id,
    parse_filename,
    valid_kind,
)
from planb.reports.keys import Signer, verify_signature

log = logging.getLogger(__name__)

JOURNALS_DIR_NAME = "journals"

#: Called with ``("planb journal head", folder=…, seq=…, sha256=…, file=…)`` after each
#: append; returns whether a log outside the folder took it. Never raises.
Anchor = Callable[..., bool]


class JournalNotFound(PlanbError):
    """No journal matches what was asked for."""


def journals_dir(state_dir: Path) -> Path:
    """The site's journals folder."""
    return state_dir / JOURNALS_DIR_NAME


def utc_now() -> str:
    """The current UTC time as journals write it: ``2025-03-01T09:30:00.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_signature(signature: bytes) -> bytes:
    """The content of a ``.sig`` file: base64 and a newline."""
    return base64.b64encode(signature) + b"\n"


def decode_signature(text: bytes) -> bytes | None:
    """The raw signature in a ``.sig`` file, or None when it is not base64 of 64 bytes."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 64 else None


class JournalStore:
    """A folder of signed, hash-chained journals."""

    def __init__(self, directory: Path, signer: Signer | None = None, *,
                 anchor: Anchor | None = None) -> None:
        self.directory = directory
        self.signer = signer
        self.anchor: Anchor = anchor if anchor is not None else SyslogAnchor()

    @classmethod
    def for_state_dir(cls, state_dir: Path, signer: Signer | None = None, *,
                      anchor: Anchor | None = None) -> JournalStore:
        return cls(journals_dir(state_dir), signer, anchor=anchor)

    def append(self, kind: str, payload: JsonObject) -> StoredJournal:
        """Write a new journal after the last one, sign it and move the head; return it.

        ``payload`` must be a JSON object of plain values (canonical JSON rules); a value
        that is not is refused with its path before anything is written.
        """
        if self.signer is None:
            raise UsageError("this journal store was opened without a signing key")
        if not valid_kind(kind):
            raise ValueError(f"journal kind {kind!r}: use lower-case letters, digits and -")
        if not isinstance(payload, dict):
            payload = dict(payload)
        canonical_bytes(payload)  # refuse a bad payload before taking the lock
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked():
            seq, previous = self._tail()
            envelope = Envelope(
                seq=seq, id=new_id(), kind=kind, created_at=utc_now(),
                previous_sha256=previous, key_fingerprint=self.signer.fingerprint,
                payload=payload,
            )
            data = canonical_bytes(envelope.as_json())
            path = self.directory / envelope.filename
            write_atomic(path, data, 0o644)
            write_atomic(path.with_suffix(".sig"), encode_signature(self.signer.sign(data)))
            # Read back from the bytes, so the result is what was signed even if the
            # caller changes its payload afterwards.
            stored = StoredJournal(path=path, envelope=Envelope.from_json(json.loads(data)),
                                   sha256=sha256_hex(data))
            self._write_head(stored)
        log.info("journal %s written and signed (%s); head sha256 %s", path.name,
                 self.signer.fingerprint, stored.sha256)
        self._anchor(stored)
        return stored

    def _anchor(self, head: StoredJournal) -> None:
        try:
            self.anchor("planb journal head", folder=self.directory.resolve(), seq=head.seq,
                        sha256=head.sha256, file=head.path.name)
        except Exception:  # noqa: BLE001 - best effort: the journal is already written
            log.warning("could not anchor the journal head in the system log", exc_info=True)

    def list(self) -> builtins.list[StoredJournal]:
        """Every readable journal, in seq order (unreadable ones are logged and skipped)."""
        journals = []
        for path in self._journal_paths():
            try:
                journals.append(read_journal(path))
            except MalformedJournal as exc:
                log.warning("%s: skipped, not a journal: %s", path.name, exc)
        return sorted(journals, key=lambda j: (j.seq, j.path.name))

    def get(self, ref: str) -> StoredJournal:
        """The journal named by seq (``3``), id or id prefix, or file name (prefix)."""
        ref = ref.strip()
        if not ref:
            raise UsageError("give a journal seq, id or file name")
        journals = self.list()
        if ref.isdigit():
            # A number is a seq first; an id can also start with digits only, so a
            # longer number (4+ digits, no seq) is also tried as an id prefix.
            matches = [j for j in journals if j.seq == int(ref)]
            matches = matches or [j for j in journals if j.path.name.startswith(ref)
                                  or (len(ref) >= 4 and j.id.startswith(ref))]
        else:
            low = ref.lower()
            matches = [j for j in journals
                       if j.id.startswith(low) or j.path.name.startswith(ref)]
        if not matches:
            raise JournalNotFound(f"no journal matches {ref!r} in {self.directory}",
                                  hint="see 'planb report list'")
        if len(matches) > 1:
            names = ", ".join(j.path.name for j in matches[:5])
            raise UsageError(f"{ref!r} matches {len(matches)} journals ({names}); be more precise")
        return matches[0]

    def addenda(self, journal_id: str) -> builtins.list[StoredJournal]:
        """The addenda that annotate ``journal_id``, oldest first."""
        return [j for j in self.list() if j.addendum_target_id == journal_id]

    # -- internals -------------------------------------------------------------------

    def _journal_paths(self) -> builtins.list[Path]:
        if not self.directory.is_dir():
            return []
        return [p for p in self.directory.iterdir()
                if (parsed := parse_filename(p.name)) is not None and parsed[3] == "json"]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _tail(self) -> tuple[int, str | None]:
        """The next seq and the SHA-256 to chain to (from the files and the signed head)."""
        last_seq, last_hash = 0, None
        numbered = [(parsed[0], path) for path in self._journal_paths()
                    if (parsed := parse_filename(path.name)) is not None]
        if numbered:
            last_seq, newest = max(numbered)
            last_hash = sha256_hex(newest.read_bytes())
            if not newest.with_suffix(".sig").exists():
                log.warning("%s has no signature; verification will report it", newest.name)
        head = self._read_head()
        if head is not None and head[0] > last_seq:
            # The newest journal(s) are gone: chain to what the head recorded, so the
            # gap stays visible instead of being papered over.
            log.warning("journals after seq %d are missing (head records seq %d)",
                        last_seq, head[0])
            last_seq, last_hash = head
        return last_seq + 1, last_hash

    def _read_head(self) -> tuple[int, str] | None:
        """``(seq, sha256)`` from head.json if it verifies with this store's key."""
        assert self.signer is not None
        try:
            head = parse_head((self.directory / HEAD_NAME).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, MalformedJournal) as exc:
            log.warning("%s is unreadable (%s); chaining from the files", HEAD_NAME, exc)
            return None
        if not head.verifies_with(self.signer.public_key):
            # Signed with another key: expected once, right after a rotation.
            level = logging.INFO if head.key_fingerprint != self.signer.fingerprint \
                else logging.WARNING
            log.log(level, "%s does not verify with the signing key %s (rotated?); "
                    "chaining from the files", HEAD_NAME, self.signer.fingerprint)
            return None
        return head.seq, head.sha256

    def _write_head(self, journal: StoredJournal) -> None:
        assert self.signer is not None
        body = {"format": HEAD_FORMAT, "seq": journal.seq, "id": journal.id,
                "file": journal.path.name, "sha256": journal.sha256,
                "key_fingerprint": self.signer.fingerprint, "updated_at": utc_now()}
        signature = base64.b64encode(self.signer.sign(canonical_bytes(body))).decode("ascii")
        # One file, so a crash can never leave a head without its signature.
        write_atomic(self.directory / HEAD_NAME,
                     canonical_bytes({"head": body, "signature": signature}))


@dataclass(frozen=True)
class Head:
    """The signed record of the newest journal (``head.json``)."""

    seq: int
    sha256: str
    file: str
    key_fingerprint: str
    signed_bytes: bytes
    signature: bytes | None

    def verifies_with(self, public_key: Ed25519PublicKey) -> bool:
        return self.signature is not None and verify_signature(
            public_key, self.signature, self.signed_bytes)


def parse_head(data: bytes) -> Head:
    """Parse head.json: ``{"head": {...}, "signature": base64}`` (signature over the
    canonical bytes of ``head``); raise MalformedJournal when it is not that."""
    try:
        outer = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedJournal(f"not JSON: {exc}") from None
    body = outer.get("head") if isinstance(outer, dict) else None
    if not isinstance(body, dict) or body.get("format") != HEAD_FORMAT:
        raise MalformedJournal(f"not a {HEAD_FORMAT} record")
    seq, sha, file, fp = (body.get(k) for k in ("seq", "sha256", "file", "key_fingerprint"))
    if not (isinstance(seq, int) and isinstance(sha, str) and isinstance(file, str)
            and isinstance(fp, str)):
        raise MalformedJournal("head is missing seq, sha256, file or key_fingerprint")
    sig_text = outer.get("signature")
    signature = decode_signature(sig_text.encode("ascii", "replace")) \
        if isinstance(sig_text, str) else None
    try:
        signed = canonical_bytes(body)
    except ValueError as exc:
        raise MalformedJournal(f"head: {exc}") from None
    return Head(seq=seq, sha256=sha, file=file, key_fingerprint=fp, signed_bytes=signed,
                signature=signature)


def read_journal(path: Path) -> StoredJournal:
    """Read and parse one journal file (no signature check: see planb.reports.verify)."""
    data = path.read_bytes()
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedJournal(f"not JSON: {exc}") from None
    return StoredJournal(path=path, envelope=Envelope.from_json(parsed), sha256=sha256_hex(data))
