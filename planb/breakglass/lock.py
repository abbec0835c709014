"""The host's failover lock: one switch at a time, whoever runs it, and who that is.

``/var/lib/planb/failover.lock`` is held with ``flock`` by the process that switches:
the break-glass command itself, or ``planb-breakglass lock`` which the controller's
``planb failover activate|deactivate`` runs over SSH for the length of its switch.
While held, the file says who holds it (JSON: who, what, since, pid). The kernel drops
the lock when its process ends, so a crash or a cut SSH connection never leaves it
stuck; a holder record left behind by such a crash is ignored (nobody holds the lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from planb.errors import UsageError
from planb.reports.store import utc_now


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, doing what, since when, from which process."""

    who: str
    what: str
    since: str
    pid: int

    def describe(self) -> str:
        return f"{self.who} ({self.what}) since {self.since}, pid {self.pid}"


class LockHeld(UsageError):
    """Someone else is switching the fallback right now."""

    def __init__(self, holder: Holder | None, path: Path) -> None:
        who = holder.describe() if holder else "a process that left no record"
        super().__init__(f"the failover lock is held by {who}: another activation or "
                         "deactivation is in progress on this host",
                         hint=f"wait for it to end ({path}); nothing was changed")
        self.holder = holder


def _read(handle: IO[str]) -> Holder | None:
    handle.seek(0)
    try:
        data = json.loads(handle.read() or "null")
        return Holder(str(data["who"]), str(data["what"]), str(data["since"]), int(data["pid"]))
    except (ValueError, TypeError, KeyError):
        return None


def holder(path: Path) -> Holder | None:
    """Who holds the lock now; None when nobody does."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(handle) or Holder("unknown", "unknown", "unknown", 0)
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None


@contextlib.contextmanager
def held(path: Path, who: str, what: str) -> Iterator[Holder]:
    """Hold the lock while the block runs; :class:`LockHeld` naming the holder if taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(_read(handle), path) from None
        me = Holder(who, what, utc_now(), os.getpid())
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(asdict(me), ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        try:
            yield me
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
