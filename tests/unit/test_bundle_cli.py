"""'planb bundle show/verify/build' on a bundle made in a temporary folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.bundle import build as build_mod
from planb.bundle.archive import ARCHIVE_NAME, write_archive
from planb.bundle.inputs import read_inputs
from planb.bundle.manifest import MANIFEST_NAME, Item, make_manifest
from planb.cli.main import app

runner = CliRunner()


def _fake_bundle(root: Path, inputs: str = "0" * 64) -> str:
    items = []
    for rel, data in (("debs/a_1_all.deb", b"a"), ("debs/b_2_all.deb", b"bb"),
                      ("wheels/c-3-py3-none-any.whl", b"ccc")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        kind = "deb" if rel.startswith("debs") else "wheel"
        items.append(Item(kind, rel.split("/")[1].split("_")[0], "1", rel,
                          hashlib.sha256(data).hexdigest(), len(data)))
    manifest = make_manifest(items, created="2026-01-01T00:00:00+00:00", inputs=inputs)
    (root / MANIFEST_NAME).write_text(manifest.to_json())
    write_archive(root, [i.file for i in items], root / ARCHIVE_NAME)
    return manifest.bundle_id


def test_show_json_gives_id_counts_and_size(tmp_path: Path) -> None:
    bundle_id = _fake_bundle(tmp_path)
    result = runner.invoke(app, ["bundle", "show", "--dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["bundle_id"] == bundle_id
    assert (data["debs"], data["wheels"], data["size_bytes"]) == (2, 1, 6)
    assert data["archive_size_bytes"] == (tmp_path / ARCHIVE_NAME).stat().st_size


def test_verify_passes_then_names_the_tampered_file(tmp_path: Path) -> None:
    _fake_bundle(tmp_path)
    ok = runner.invoke(app, ["bundle", "verify", "--dir", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "all 3 files match" in ok.output
    (tmp_path / "debs/b_2_all.deb").write_bytes(b"xx")
    bad = runner.invoke(app, ["bundle", "verify", "--dir", str(tmp_path)])
    assert bad.exit_code == 1
    assert "debs/b_2_all.deb: sha256 differs from the manifest" in bad.output
    assert "planb bundle build --refresh" in bad.output


def test_show_without_a_bundle_says_how_to_build_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bundle", "show", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "no bundle at" in result.output and "planb bundle build" in result.output


def test_build_with_unchanged_inputs_does_nothing(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fingerprint = read_inputs(context=build_mod.build_context()).fingerprint()
    bundle_id = _fake_bundle(tmp_path, inputs=fingerprint)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}

    def no_build(*_args: object, **_kw: object) -> None:
        raise AssertionError("must not rebuild")

    monkeypatch.setattr(build_mod, "_build_into", no_build)
    result = runner.invoke(app, ["bundle", "build", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"bundle {bundle_id} up to date" in result.output
    assert before == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    # --json: the result alone on stdout; -d and the old --output/-o name the same folder.
    for flag in ("-d", "-o", "--output"):
        as_json = runner.invoke(app, ["bundle", "build", flag, str(tmp_path), "--json"])
        assert as_json.exit_code == 0, as_json.output
        data = json.loads(as_json.stdout)
        assert data["bundle_id"] == bundle_id and data["rebuilt"] is False
        assert data["path"] == str(tmp_path) and data["debs"] == 2
    (tmp_path / "debs/a_1_all.deb").unlink()
    assert build_mod.is_current(tmp_path, read_inputs(context=build_mod.build_context())) is None


def test_build_json_keeps_progress_off_stdout(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A real build needs root and the network; the stand-in reports progress like one."""
    _fake_bundle(tmp_path)
    manifest = build_mod.load_manifest(tmp_path)

    def quick_build(_output: Path, _inputs: object, progress: build_mod.Progress) -> object:
        progress("downloading Debian packages")
        progress("building wheels")
        return manifest

    monkeypatch.setattr(build_mod, "_build_into", quick_build)
    result = runner.invoke(app, ["bundle", "build", "-d", str(tmp_path), "--refresh", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rebuilt"] is True
    assert "done downloading Debian packages" in result.stderr
