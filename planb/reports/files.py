"""The reports' file helpers now live in :mod:`planb.files`; kept so older imports work."""

from __future__ import annotations

from planb.files import fsync_dir, write_atomic

__all__ = ["fsync_dir", "write_atomic"]
