"""planb.files: the one atomic write (whole file or none, the mode asked, fsynced)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from planb.files import replacing, write_atomic


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """A umask that would hide a missing chmod (files would come out 0600)."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_bytes_or_text_with_the_mode_asked(tmp_path: Path, strict_umask: None) -> None:
    public, private = tmp_path / "site.pub", tmp_path / "signing.key"
    write_atomic(public, b"key\n")
    write_atomic(private, "clé\n", 0o600)
    assert public.read_bytes() == b"key\n" and _mode(public) == 0o644
    assert private.read_text(encoding="utf-8") == "clé\n" and _mode(private) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing.key", "site.pub"]


def test_replaces_the_whole_file_and_takes_the_new_mode(tmp_path: Path) -> None:
    path = tmp_path / "vault.yml"
    path.write_text("old and longer content\n", encoding="utf-8")
    path.chmod(0o644)
    write_atomic(path, "new\n", 0o600)
    assert path.read_text(encoding="utf-8") == "new\n" and _mode(path) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(b"the good archive")
    with pytest.raises(RuntimeError), replacing(path) as tmp:
        tmp.write_bytes(b"half of a new arch")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"the good archive"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.tar"]


def test_a_stale_temporary_from_a_crash_does_not_block_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "current-site"
    (tmp_path / ".current-site.tmp").write_text("half", encoding="utf-8")
    write_atomic(path, "/srv/site/planb.yml\n")
    assert path.read_text(encoding="utf-8") == "/srv/site/planb.yml\n"
    assert [p.name for p in tmp_path.iterdir()] == ["current-site"]
