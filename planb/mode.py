"""Failover state on disk: the mode file, its lock, the sync freeze flag and the audit log.

Everything lives in ``<state_dir>/failover/``:

- ``state.json``: ``standby`` or ``active`` with who, when, why and the incident id;
  written atomically (temporary file + rename) under ``.lock``.
- ``sync-frozen``: present while the fallback is active. The account sync must not
  apply anything while it exists (:func:`sync_frozen` is what the sync asks).
- ``audit.log``: append-only JSON lines, one per request and per step: who, when,
  why, which step, what came of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from planb.errors import PlanbError, UsageError
from planb.reports.files import write_atomic

log = logging.getLogger(__name__)

Mode = Literal["standby", "active"]
STATE_FORMAT = "planb-failover-state/1"
FAILOVER_DIR = "failover"
FREEZE_FLAG = "sync-frozen"


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
    """``audit.log``: JSON lines, only ever appended to (and fsynced)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = failover_dir(state_dir) / "audit.log"

    def append(self, entry: AuditEntry) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(entry), ensure_ascii=False, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> list[AuditEntry]:
        """Every entry, oldest first (a damaged line is logged and skipped)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        result = []
        for number, line in enumerate(lines, 1):
            try:
                result.append(AuditEntry(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                log.warning("%s:%d: not an audit entry: %s", self.path, number, exc)
        return result
