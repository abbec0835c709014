"""One sync apply at a time per site: an exclusive lock file in the site's state dir.

Two applies running at once (a nightly job and an administrator, two terminals)
would plan from the same state and write over each other. :func:`sync_lock` takes
``<state_dir>/sync.lock`` with ``flock`` (released by the kernel when the process
ends, even on kill -9, so a crash never leaves a stale lock) and records in it who
holds it; a second apply fails at once with :class:`SyncLocked` naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import logging
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from planb.errors import UsageError

log = logging.getLogger(__name__)

LOCK_NAME = "sync.lock"


class SyncLocked(UsageError):
    """Another sync apply of the same site is running."""


def lock_path(state_dir: Path) -> Path:
    """The site's sync lock file."""
    return state_dir / LOCK_NAME


def _holder(fd: int) -> str:
    """``pid 123 (alice@host, since ...)`` from the lock file, or a plain phrase."""
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict) or "pid" not in data:
        return "another process (it has not said who yet)"
    return (f"pid {data.get('pid')} ({data.get('user', '?')}@{data.get('host', '?')}, "
            f"since {data.get('since', '?')}: {data.get('command', 'planb sync apply')})")


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return str(os.getuid())


@contextlib.contextmanager
def sync_lock(state_dir: Path, *, command: str = "planb sync apply") -> Iterator[None]:
    """Hold the site's sync lock for the ``with`` block; SyncLocked if someone else does."""
    path = lock_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncLocked(
                f"another sync apply of this site is running: {_holder(fd)}; nothing was "
                "changed",
                hint=f"wait for it to finish (the lock is {path}; it is released when that "
                     "process ends, even if it is killed)") from None
        holder = {"pid": os.getpid(), "user": _user(), "host": socket.gethostname(),
                  "since": datetime.now(UTC).isoformat(timespec="seconds"),
                  "command": command}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode("utf-8"), 0)
        log.debug("sync lock %s taken", path)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
