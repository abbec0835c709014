"""Writing files so a crash or a power cut never leaves half of one: the one way planb does it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` with ``mode``, atomically.

    Readers see the old file or the whole new one, never half of it; a file with a
    private ``mode`` (0600) is never readable by others, not even for a moment.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path, mode) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)


@contextlib.contextmanager
def replacing(path: Path, mode: int = 0o644) -> Iterator[Path]:
    """A same-folder temporary path to write ``path``'s new content to (for writers that
    need a file name, such as tarfile); on success it gets ``mode`` and replaces ``path``.

    The file and its folder are fsynced so the rename survives a power cut; on an error
    the temporary file is removed and ``path`` is left as it was.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Flush a folder's entries (renames) to disk; a no-op where that is not supported."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
