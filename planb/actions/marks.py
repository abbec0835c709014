"""Moments one drill run marks for its later steps: when the host was lost, when the
backup started (wall-clock seconds, keyed by the run's id).

``lab.destroy_host`` marks ``host_lost`` and ``backup.now`` marks ``backup_started``;
``traffic.stop`` reads both to measure the RPO. Only the current run is kept.
"""

from __future__ import annotations

import threading
import time

HOST_LOST = "host_lost"
BACKUP_STARTED = "backup_started"

_lock = threading.Lock()
_marks: dict[tuple[str | None, str], float] = {}


def mark(run_id: str | None, name: str, when: float | None = None) -> float:
    """Record ``name`` for ``run_id`` at ``when`` (default: now); returns the time."""
    moment = time.time() if when is None else when
    with _lock:
        if any(key[0] != run_id for key in _marks):
            _marks.clear()  # another run's marks: only the current run is kept
        _marks[(run_id, name)] = moment
    return moment


def marked(run_id: str | None, name: str) -> float | None:
    """When ``name`` was marked for ``run_id`` (None: not marked)."""
    with _lock:
        return _marks.get((run_id, name))
