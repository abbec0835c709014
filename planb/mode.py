"""Failover state on disk: the mode file, its lock, the sync freeze flag and the audit log.

Everything lives in ``<state_dir>/failover/``:

- ``state.json``: ``standby`` or ``active`` with who, when, why and the incident id;
  written atomically (temporary file + rename) under ``.lock``.
- ``sync-frozen``: present while the fallback is active. The account sync must not
  apply anything while it exists (:func:`sync_frozen` is what the sync asks).
- ``audit.log``: append-only JSON lines, one per request and per step: who, when,
  why, which step, what came of it. Tamper-evident like the journals: each line holds
  ``prev_sha256``, the SHA-256 of the line before it (null for the first), and
  ``audit-head.json`` records the number of lines, the last line's SHA-256 and the
  whole log's, signed with the journals' key and logged to the system log
  (:mod:`planb.reports.anchor`). :func:`verify_audit` names the first altered line.
  Lines written before chaining existed (no ``prev_sha256``) are still read.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from planb.errors import PlanbError, UsageError
from planb.files import write_atomic
from planb.reports.anchor import SyslogAnchor
from planb.reports.canonical import canonical_bytes
from planb.reports.keys import Signer, verify_signature
from planb.reports.store import Anchor

log = logging.getLogger(__name__)

Mode = Literal["standby", "active"]
STATE_FORMAT = "planb-failover-state/1"
FAILOVER_DIR = "failover"
FREEZE_FLAG = "sync-frozen"
AUDIT_HEAD_FORMAT = "planb-audit-head/1"
AUDIT_HEAD_NAME = "audit-head.json"


def failover_dir(state_dir: Path) -> Path:
    return state_dir / FAILOVER_DIR


def freeze_flag(state_dir: Path) -> Path:
    """The file whose presence tells the account sync to apply nothing."""
    return failover_dir(state_dir) / FREEZE_FLAG


def sync_frozen(state_dir: Path) -> bool:
    """Whether the account sync is frozen (the fallback is, or is being, activated)."""
    return freeze_flag(state_dir).exists()


def freeze_sync(state_dir: Path, *, by: str, why: str, at: str) -> bool:
    """Create the freeze flag; False when it was already there (then left as it is)."""
    flag = freeze_flag(state_dir)
    if flag.exists():
        return False
    flag.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(flag, (json.dumps({"frozen_at": at, "by": by, "why": why},
                                   ensure_ascii=False) + "\n").encode("utf-8"))
    return True


def unfreeze_sync(state_dir: Path) -> bool:
    """Remove the freeze flag; False when there was none."""
    flag = freeze_flag(state_dir)
    if not flag.exists():
        return False
    flag.unlink()
    return True


@dataclass(frozen=True)
class FailoverState:
    """Which mode the fallback is in, since when, and why."""

    mode: Mode = "standby"
    since: str | None = None
    incident_id: str | None = None
    reason: str | None = None
    operator: str | None = None
    #: True when a drill (not a real incident) activated it.
    drill: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, **asdict(self)}


class StateFile:
    """``state.json`` and its lock."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = failover_dir(state_dir)
        self.path = self.dir / "state.json"

    def load(self) -> FailoverState:
        """The recorded state; standby when nothing was ever recorded."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return FailoverState()
        except (OSError, ValueError) as exc:
            raise PlanbError(f"{self.path}: unreadable failover state: {exc}",
                             hint="see audit.log next to it for the last transition") from None
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT \
                or data.get("mode") not in ("standby", "active"):
            raise PlanbError(f"{self.path}: not a planb failover state file")
        fields = {k: data.get(k) for k in ("since", "incident_id", "reason", "operator")}
        return FailoverState(mode=data["mode"], drill=bool(data.get("drill")), **fields)

    def save(self, state: FailoverState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(state.as_json(), ensure_ascii=False, indent=2, sort_keys=True)
        write_atomic(self.path, (text + "\n").encode("utf-8"))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the failover lock: one activation or deactivation at a time."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError("another failover activation or deactivation is running "
                                 "for this site") from None
            yield


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    at: str
    who: str
    why: str
    event: str  # activate | deactivate
    result: str  # requested | ok | failed | error | skipped | undone | completed | ...
    step: str | None = None
    incident_id: str | None = None
    detail: str = ""


class AuditLog:
    """``audit.log``: hash-chained JSON lines, only ever appended to (and fsynced).

    With a ``signer`` each append also rewrites the signed ``audit-head.json``.
    ``path``: another log than the site's (the break-glass command's on a host).
    """

    def __init__(self, state_dir: Path, signer: Signer | None = None,
                 anchor: Anchor | None = None, *, path: Path | None = None) -> None:
        self.path = path or failover_dir(state_dir) / "audit.log"
        self.head_path = self.path.with_name(AUDIT_HEAD_NAME)
        self.signer = signer
        self.anchor: Anchor = anchor if anchor is not None else SyslogAnchor()

    def append(self, entry: AuditEntry) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(".audit.lock"), "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            lines = _raw_lines(self.path)
            record = {**asdict(entry), "prev_sha256": _sha(lines[-1]) if lines else None}
            line = json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            lines.append(line)
            if self.signer is not None:
                self._write_head(lines)
        with contextlib.suppress(Exception):
            self.anchor("planb audit head", log=self.path.resolve(), entries=len(lines),
                        sha256=_sha(line))

    def entries(self) -> list[AuditEntry]:
        """Every entry, oldest first (a damaged line is logged and skipped)."""
        result = []
        for number, line in enumerate(_raw_lines(self.path), 1):
            try:
                data = json.loads(line)
                data.pop("prev_sha256", None)
                result.append(AuditEntry(**data))
            except (ValueError, TypeError, AttributeError) as exc:
                log.warning("%s:%d: not an audit entry: %s", self.path, number, exc)
        return result

    def _write_head(self, lines: list[bytes]) -> None:
        assert self.signer is not None
        body = {"format": AUDIT_HEAD_FORMAT, "entries": len(lines),
                "last_sha256": _sha(lines[-1]), "log_sha256": _sha(_joined(lines)),
                "key_fingerprint": self.signer.fingerprint,
                "updated_at": datetime.now(UTC).isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")}
        signature = base64.b64encode(self.signer.sign(canonical_bytes(body))).decode("ascii")
        write_atomic(self.head_path, canonical_bytes({"head": body, "signature": signature}))


@dataclass(frozen=True)
class AuditVerdict:
    """What :func:`verify_audit` found: the first problem (None when intact) and notes."""

    entries: int
    problem: str | None = None
    notes: tuple[str, ...] = field(default=())
    head_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_audit(state_dir: Path, keys: Mapping[str, Ed25519PublicKey] | None, *,
                 path: Path | None = None) -> AuditVerdict:
    """Check the audit log's chain and its signed head (signature with ``keys``, when given).

    Names the first line whose predecessor was changed or removed, lines added after
    the signed head, lines removed from the end, and a missing or altered head.
    ``path``: another log than the site's (a host's break-glass ``audit.log``).
    """
    audit = AuditLog(state_dir, path=path)
    lines = _raw_lines(audit.path)
    last = _sha(lines[-1]) if lines else None
    chained_from: int | None = None
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            return AuditVerdict(len(lines), f"line {number} is not JSON (altered)")
        if not isinstance(record, dict) or "prev_sha256" not in record:
            if chained_from is not None:
                return AuditVerdict(len(lines), f"line {number} has no prev_sha256 after "
                                    f"chained lines: added or altered by hand")
            continue
        chained_from = chained_from or number
        expected = _sha(lines[number - 2]) if number > 1 else None
        if record["prev_sha256"] != expected:
            return AuditVerdict(len(lines), f"line {number} does not follow line "
                                f"{number - 1}: a line before it was altered, removed or "
                                "inserted")
    try:
        outer = json.loads(audit.head_path.read_bytes())
    except FileNotFoundError:
        if chained_from is None:
            return AuditVerdict(len(lines), None, ("the audit log predates its chain and "
                                                   "signed head: alterations cannot be seen",)
                                if lines else (), last)
        return AuditVerdict(len(lines), f"{AUDIT_HEAD_NAME} is missing: cannot tell whether "
                            "the newest lines were removed")
    except (OSError, ValueError) as exc:
        return AuditVerdict(len(lines), f"{AUDIT_HEAD_NAME} is unreadable: {exc}")
    return _check_audit_head(outer, lines, keys, last)


def _check_audit_head(outer: Any, lines: list[bytes],
                      keys: Mapping[str, Ed25519PublicKey] | None, last: str | None
                      ) -> AuditVerdict:
    body = outer.get("head") if isinstance(outer, dict) else None
    if not isinstance(body, dict) or body.get("format") != AUDIT_HEAD_FORMAT \
            or not isinstance(body.get("entries"), int):
        return AuditVerdict(len(lines), f"{AUDIT_HEAD_NAME} is not an audit head")
    if keys is not None:
        key = keys.get(str(body.get("key_fingerprint")))
        if key is None:
            return AuditVerdict(len(lines), f"{AUDIT_HEAD_NAME} is signed with "
                                f"{body.get('key_fingerprint')}, not a trusted key")
        try:
            signature = base64.b64decode(str(outer.get("signature")), validate=True)
            valid = verify_signature(key, signature, canonical_bytes(body))
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            return AuditVerdict(len(lines), f"{AUDIT_HEAD_NAME}: its signature does not "
                                "match its content (altered)")
    count = body["entries"]
    if count > len(lines):
        return AuditVerdict(len(lines), f"lines {len(lines) + 1} to {count} were removed: "
                            f"the signed head records {count} lines, the log has {len(lines)}")
    if count < len(lines):
        return AuditVerdict(len(lines), f"lines {count + 1} to {len(lines)} come after the "
                            "signed head: added without the signing key (or a write was "
                            "interrupted; the next failover request re-signs the head)")
    if body.get("last_sha256") != last or body.get("log_sha256") != _sha(_joined(lines)):
        return AuditVerdict(len(lines), "the log differs from what its signed head records "
                            "(a line was altered)")
    return AuditVerdict(len(lines), None, (), last)


def _raw_lines(path: Path) -> list[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [line for line in data.split(b"\n") if line.strip()]


def _joined(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
