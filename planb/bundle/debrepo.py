"""A flat apt repository (``deb [trusted=yes] file:/path ./``) from a folder of .deb files.

Writes ``Packages``, ``Packages.gz`` and a ``Release`` that lists their sha256, the
way ``dpkg-scanpackages`` + ``apt-ftparchive release`` would, with no tool beyond
``dpkg-deb`` (part of dpkg, present on every Debian). Output is deterministic: the
same .deb files give byte-identical index files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from planb.commands import run_command
from planb.errors import PlanbError

log = logging.getLogger(__name__)

INDEX_FILES = ("Packages", "Packages.gz", "Release")
#: Field order of a Packages stanza (the rest follow in the order dpkg-deb gives).
_FIRST_FIELDS = ("Package", "Version", "Architecture")
_FILE_FIELDS = ("Filename", "Size", "MD5sum", "SHA256")


@dataclass(frozen=True)
class DebInfo:
    """What the index needs to know about one .deb file."""

    file: str
    package: str
    version: str
    architecture: str
    control: tuple[tuple[str, str], ...]
    size: int
    md5: str
    sha256: str


def parse_control(text: str) -> tuple[tuple[str, str], ...]:
    """Fields of one control paragraph, in order; continuation lines kept as written."""
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0] in " \t":
            if not fields:
                raise ValueError(f"continuation line before any field: {line!r}")
            name, value = fields[-1]
            fields[-1] = (name, f"{value}\n{line}")
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(.*)$", line)
        if not match:
            raise ValueError(f"not a control field: {line!r}")
        fields.append((match.group(1), match.group(2).rstrip()))
    return tuple(fields)


def read_deb(path: Path, *, sha256: str | None = None) -> DebInfo:
    """Read a .deb's control fields with ``dpkg-deb --field`` and hash the file."""
    proc = run_command(["dpkg-deb", "--field", str(path)], timeout=60,
                       what=f"{path.name} is not a valid Debian package: dpkg-deb",
                       hint="remove it and rebuild with 'planb bundle build --refresh'; "
                       "building the bundle's apt index needs dpkg (Debian or Ubuntu)")
    try:
        control = parse_control(proc.stdout)
    except ValueError as exc:
        raise PlanbError(f"{path.name}: bad control data: {exc}") from None
    fields = dict(control)
    missing = [name for name in _FIRST_FIELDS if name not in fields]
    if missing:
        raise PlanbError(f"{path.name}: control data lacks {', '.join(missing)}")
    data = path.read_bytes()
    return DebInfo(
        file=path.name, package=fields["Package"], version=fields["Version"],
        architecture=fields["Architecture"], control=control, size=len(data),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
    )


def stanza(deb: DebInfo) -> str:
    """The Packages paragraph of one .deb (``Filename`` relative to the flat repo)."""
    fields = dict(deb.control)
    lines = [f"{name}: {fields[name]}" for name in _FIRST_FIELDS]
    lines += [f"{name}: {value}" for name, value in deb.control
              if name not in _FIRST_FIELDS and name not in _FILE_FIELDS]
    lines += [f"Filename: ./{deb.file}", f"Size: {deb.size}", f"MD5sum: {deb.md5}",
              f"SHA256: {deb.sha256}"]
    return "\n".join(lines) + "\n"


def packages_text(debs: list[DebInfo]) -> str:
    """The whole ``Packages`` file: one paragraph per .deb, sorted by name and version."""
    ordered = sorted(debs, key=lambda d: (d.package, d.version, d.architecture, d.file))
    return "\n".join(stanza(deb) for deb in ordered)


def release_text(files: dict[str, bytes], *, date: str) -> str:
    """A ``Release`` file listing the index files with their sizes and hashes."""
    lines = ["Origin: planb", "Label: planb offline bundle", "Suite: ./",
             "Architectures: amd64 all", f"Date: {date}", "MD5Sum:"]
    for name, data in sorted(files.items()):
        lines.append(f" {hashlib.md5(data, usedforsecurity=False).hexdigest()} "
                     f"{len(data)} {name}")
    lines.append("SHA256:")
    for name, data in sorted(files.items()):
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    return "\n".join(lines) + "\n"


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no file name and a zero timestamp, so the output is reproducible."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buffer.getvalue()


def write_index(folder: Path, debs: list[DebInfo], *, date: str) -> list[Path]:
    """Write Packages, Packages.gz and Release into ``folder``; return their paths."""
    packages = packages_text(debs).encode("utf-8")
    files = {"Packages": packages, "Packages.gz": gzip_bytes(packages)}
    files["Release"] = release_text(files, date=date).encode("utf-8")
    written = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        written.append(path)
    log.info("apt index: %d packages in %s", len(debs), folder)
    return written
