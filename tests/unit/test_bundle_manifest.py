"""The bundle manifest: ids from content, strict parsing, verification by re-hashing."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from planb.bundle.archive import write_archive
from planb.bundle.manifest import (
    MANIFEST_NAME,
    Item,
    load_manifest,
    make_manifest,
    parse_manifest,
    sha256_file,
    sums_text,
    verify,
)
from planb.errors import PlanbError


def _write(root: Path, rel: str, data: bytes) -> Item:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    kind = "deb" if rel.endswith(".deb") else "wheel" if rel.endswith(".whl") else "index"
    return Item(kind, Path(rel).name.split("_")[0], "1.0", rel,
                hashlib.sha256(data).hexdigest(), len(data))


def _bundle(root: Path) -> list[Item]:
    items = [_write(root, "debs/pkg_1.0_amd64.deb", b"deb one"),
             _write(root, "wheels/mod-1.0-py3-none-any.whl", b"wheel one"),
             _write(root, "requirements/synapse.txt", b"mod==1.0\n")]
    manifest = make_manifest(items, created="2026-01-01T00:00:00+00:00", inputs="x" * 64)
    (root / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return items


def test_bundle_id_depends_on_content_not_order_or_time(tmp_path: Path) -> None:
    items = _bundle(tmp_path)
    first = make_manifest(items, created="2026-01-01", inputs="a")
    again = make_manifest(list(reversed(items)), created="2027-05-05", inputs="b")
    assert first.bundle_id == again.bundle_id
    changed = [*items[:-1], Item("index", "synapse.txt", "", items[-1].file, "0" * 64, 9)]
    assert make_manifest(changed, created="2026-01-01", inputs="a").bundle_id != first.bundle_id


def test_manifest_round_trips_and_counts(tmp_path: Path) -> None:
    _bundle(tmp_path)
    manifest = load_manifest(tmp_path)
    assert (manifest.count("deb"), manifest.count("wheel"), manifest.count("index")) == (1, 1, 1)
    assert manifest.size == len(b"deb one") + len(b"wheel one") + len(b"mod==1.0\n")
    assert parse_manifest(manifest.to_json()) == manifest


def test_same_file_listed_twice_is_refused(tmp_path: Path) -> None:
    item = _bundle(tmp_path)[0]
    with pytest.raises(PlanbError, match="same file twice: debs/pkg_1.0_amd64.deb"):
        make_manifest([item, item], created="now", inputs="x")


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["items"][0].update(sha256="zz"), r"items\[0\].*sha256 is not 64 hex"),
    (lambda d: d["items"][1].update(file="../etc/passwd"), r"items\[1\].*inside the bundle"),
    (lambda d: d["items"][2].pop("size"), r"items\[2\]: missing or bad field"),
    (lambda d: d.update(format=99), "unknown format 99"),
])
def test_malformed_manifest_names_the_entry(tmp_path: Path, change, message: str) -> None:
    _bundle(tmp_path)
    data = json.loads((tmp_path / MANIFEST_NAME).read_text())
    change(data)
    with pytest.raises(PlanbError, match=message):
        parse_manifest(json.dumps(data), source="m.json")


def test_missing_bundle_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(PlanbError, match="no bundle at") as info:
        load_manifest(tmp_path)
    assert "planb bundle build" in (info.value.hint or "")


def test_verify_reports_changed_missing_and_unlisted_files(tmp_path: Path) -> None:
    _bundle(tmp_path)
    manifest = load_manifest(tmp_path)
    assert verify(tmp_path, manifest) == []
    (tmp_path / "debs/pkg_1.0_amd64.deb").write_bytes(b"deb 0ne")  # same size, new content
    (tmp_path / "wheels/mod-1.0-py3-none-any.whl").unlink()
    (tmp_path / "debs/extra.deb").write_bytes(b"?")
    found = {p.file: p.reason for p in verify(tmp_path, manifest)}
    assert found == {"debs/pkg_1.0_amd64.deb": "sha256 differs from the manifest",
                     "wheels/mod-1.0-py3-none-any.whl": "missing",
                     "debs/extra.deb": "not listed in the manifest"}


def test_sums_file_is_accepted_by_sha256sum(tmp_path: Path) -> None:
    items = _bundle(tmp_path)
    (tmp_path / "SHA256SUMS").write_text(sums_text(items), encoding="utf-8")
    ok = subprocess.run(["sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"],
                        cwd=tmp_path, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "requirements/synapse.txt").write_text("tampered\n")
    bad = subprocess.run(["sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"],
                         cwd=tmp_path, capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "requirements/synapse.txt" in bad.stdout


def test_archive_is_reproducible_and_ends_with_the_manifest(tmp_path: Path) -> None:
    import tarfile

    items = _bundle(tmp_path)
    files = [i.file for i in items]
    first = write_archive(tmp_path, files, tmp_path / "a.tar")
    second = write_archive(tmp_path, list(reversed(files)), tmp_path / "b.tar")
    assert sha256_file(first) == sha256_file(second)
    with tarfile.open(first) as tar:
        names = tar.getnames()
        assert names[-1] == MANIFEST_NAME
        assert set(files) <= set(names)
        assert all(m.uid == 0 and m.mtime == 0 for m in tar.getmembers())
