"""The flat apt repository index: real .deb files in, an index apt itself accepts out."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from planb.bundle import debrepo
from planb.errors import PlanbError

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


def _make_deb(folder: Path, name: str, version: str, depends: str = "") -> Path:
    root = folder / f"src-{name}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/share/doc" / name).mkdir(parents=True)
    (root / "usr/share/doc" / name / "README").write_text(f"{name}\n")
    control = (f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
               "Maintainer: planb tests <tests@example.org>\n"
               + (f"Depends: {depends}\n" if depends else "")
               + "Description: test package\n a longer description\n .\n second paragraph\n")
    (root / "DEBIAN/control").write_text(control)
    out = folder / f"{name}_{version.replace(':', '%3a')}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(out)],
                   check=True, capture_output=True)
    shutil.rmtree(root)
    return out


def test_parse_control_keeps_multiline_fields() -> None:
    fields = dict(debrepo.parse_control("Package: a\nDescription: x\n more\n .\n end\n"))
    assert fields == {"Package": "a", "Description": "x\n more\n .\n end"}
    with pytest.raises(ValueError, match="not a control field"):
        debrepo.parse_control("Package a\n")


def test_index_lists_every_deb_with_its_hashes(tmp_path: Path) -> None:
    debs = [_make_deb(tmp_path, "beta", "1:2.0-1", "alpha (>= 1.0)"),
            _make_deb(tmp_path, "alpha", "1.0-1")]
    infos = [debrepo.read_deb(p) for p in debs]
    paths = debrepo.write_index(tmp_path, infos, date="Sat, 01 Jan 2000 00:00:00 UTC")
    assert [p.name for p in paths] == ["Packages", "Packages.gz", "Release"]
    packages = (tmp_path / "Packages").read_bytes()
    assert gzip.decompress((tmp_path / "Packages.gz").read_bytes()) == packages
    stanzas = packages.decode().split("\n\n")
    assert [s.splitlines()[0] for s in stanzas] == ["Package: alpha", "Package: beta"]
    beta = dict(debrepo.parse_control(stanzas[1]))
    data = debs[0].read_bytes()
    assert beta["Version"] == "1:2.0-1"
    assert beta["Depends"] == "alpha (>= 1.0)"
    assert beta["Filename"] == "./beta_1%3a2.0-1_all.deb"
    assert beta["SHA256"] == hashlib.sha256(data).hexdigest()
    assert beta["Size"] == str(len(data))
    release = (tmp_path / "Release").read_text()
    assert f" {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n" in release


def test_index_is_byte_identical_when_rebuilt(tmp_path: Path) -> None:
    infos = [debrepo.read_deb(_make_deb(tmp_path, "alpha", "1.0"))]
    debrepo.write_index(tmp_path, infos, date="D")
    first = {n: (tmp_path / n).read_bytes() for n in debrepo.INDEX_FILES}
    debrepo.write_index(tmp_path, list(reversed(infos)), date="D")
    assert first == {n: (tmp_path / n).read_bytes() for n in debrepo.INDEX_FILES}


def test_not_a_deb_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus_1_all.deb"
    bogus.write_bytes(b"not an archive")
    with pytest.raises(PlanbError, match="bogus_1_all.deb is not a valid Debian package"):
        debrepo.read_deb(bogus)


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt")
def test_apt_reads_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    infos = [debrepo.read_deb(_make_deb(repo, "alpha", "1.0-1")),
             debrepo.read_deb(_make_deb(repo, "beta", "2.0-1", "alpha"))]
    debrepo.write_index(repo, infos, date="Sat, 01 Jan 2000 00:00:00 UTC")
    state = tmp_path / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "etc/parts"):
        (state / sub).mkdir(parents=True)
    (state / "status").write_text("")
    (state / "etc/sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    settings = {"Dir::State::Lists": f"{state}/lists", "Dir::State::status": f"{state}/status",
                "Dir::Cache": f"{state}/cache", "Dir::Etc::SourceList": f"{state}/etc/sources.list",
                "Dir::Etc::SourceParts": f"{state}/etc/parts", "Debug::NoLocking": "1",
                "APT::Sandbox::User": "root"}
    opts = [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]
    update = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True,
                            check=False)
    assert update.returncode == 0, update.stderr
    assert "Release" not in update.stderr, update.stderr  # no missing/unsigned Release error
    plan = subprocess.run(["apt-get", *opts, "install", "-s", "beta"], capture_output=True,
                          text=True, check=False)
    assert plan.returncode == 0, plan.stderr
    assert "Inst alpha (1.0-1" in plan.stdout and "Inst beta (2.0-1" in plan.stdout
