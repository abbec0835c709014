"""The bundle's manifest: every file it holds with its sha256, and the bundle id.

``manifest.json`` is the single record of what a bundle contains::

    {"format": 1, "bundle_id": "...", "created": "...", "inputs": "<sha256>",
     "items": [{"kind": "deb|wheel|client|index", "name": ..., "version": ..., "file": ...,
                "sha256": ..., "size": ...}]}

``client`` items are the browser client's files (``client/...``), each named after
the npm package it comes from (``hydrogen-view-sdk`` or ``olm``) with its version.

The id depends on the files only (not on when the bundle was built), so building
the same content twice gives the same id and a re-deploy changes nothing on hosts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from planb.errors import PlanbError

MANIFEST_NAME = "manifest.json"
#: ``sha256sum -c`` list, so a host can check the bundle with coreutils only.
SUMS_NAME = "SHA256SUMS"
FORMAT = 1
_CHUNK = 1 << 20

Kind = Literal["deb", "wheel", "client", "index"]
_KINDS = ("deb", "wheel", "client", "index")


@dataclass(frozen=True)
class Item:
    """One file of the bundle, by its path relative to the bundle folder."""

    kind: Kind
    name: str
    version: str
    file: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """What a bundle holds; ``inputs`` fingerprints what it was built from."""

    bundle_id: str
    created: str
    inputs: str
    items: tuple[Item, ...] = field(default_factory=tuple)

    def count(self, kind: Kind) -> int:
        return sum(1 for item in self.items if item.kind == kind)

    @property
    def size(self) -> int:
        """Total size in bytes of the files the manifest lists."""
        return sum(item.size for item in self.items)

    def to_json(self) -> str:
        data = {"format": FORMAT, "bundle_id": self.bundle_id, "created": self.created,
                "inputs": self.inputs, "items": [asdict(item) for item in self.items]}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_id(items: Iterable[Item]) -> str:
    """A short id that changes whenever any file's path or content changes."""
    lines = sorted(f"{item.file}\0{item.sha256}" for item in items)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def make_manifest(items: Iterable[Item], *, created: str, inputs: str) -> Manifest:
    """A manifest over ``items`` (sorted by file), with its content-derived id."""
    ordered = tuple(sorted(items, key=lambda item: item.file))
    files = [item.file for item in ordered]
    duplicates = sorted({f for f in files if files.count(f) > 1})
    if duplicates:
        raise PlanbError(f"bundle lists the same file twice: {', '.join(duplicates)}")
    return Manifest(bundle_id=bundle_id(ordered), created=created, inputs=inputs,
                    items=ordered)


def sums_text(items: Iterable[Item]) -> str:
    """The ``sha256sum -c`` text for ``items`` (two spaces: binary-agnostic text mode)."""
    return "".join(f"{item.sha256}  {item.file}\n" for item in items)


def parse_manifest(text: str, *, source: str = MANIFEST_NAME) -> Manifest:
    """Read a manifest; :class:`PlanbError` naming the file and entry if it is malformed."""
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r} (expected {FORMAT})")
        items = []
        for index, raw in enumerate(data["items"]):
            try:
                item = Item(kind=raw["kind"], name=str(raw["name"]),
                            version=str(raw["version"]), file=str(raw["file"]),
                            sha256=str(raw["sha256"]), size=int(raw["size"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"items[{index}]: missing or bad field {exc}") from None
            _check_item(item, index)
            items.append(item)
        return Manifest(bundle_id=str(data["bundle_id"]), created=str(data["created"]),
                        inputs=str(data["inputs"]), items=tuple(items))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PlanbError(f"{source}: not a valid planb bundle manifest: {exc}",
                         hint="rebuild it with 'planb bundle build --refresh'") from None


def _check_item(item: Item, index: int) -> None:
    if item.kind not in _KINDS:
        raise ValueError(f"items[{index}]: kind must be one of {', '.join(_KINDS)}")
    if not re.fullmatch(r"[0-9a-f]{64}", item.sha256):
        raise ValueError(f"items[{index}] ({item.file}): sha256 is not 64 hex digits")
    path = Path(item.file)
    if path.is_absolute() or ".." in path.parts or not item.file:
        raise ValueError(f"items[{index}]: file {item.file!r} must be a path inside the bundle")


def load_manifest(bundle: Path) -> Manifest:
    """The manifest of the bundle in folder ``bundle``."""
    path = bundle / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanbError(f"no bundle at {bundle} ({MANIFEST_NAME} is missing)",
                         hint="build it with 'planb bundle build'") from None
    return parse_manifest(text, source=str(path))


@dataclass(frozen=True)
class Problem:
    """One way a bundle's files differ from its manifest."""

    file: str
    reason: str


def verify(bundle: Path, manifest: Manifest, *, extra_ok: Iterable[str] = ()) -> list[Problem]:
    """Re-hash every listed file; report missing, changed and unlisted files."""
    problems: list[Problem] = []
    for item in manifest.items:
        path = bundle / item.file
        if not path.is_file():
            problems.append(Problem(item.file, "missing"))
        elif path.stat().st_size != item.size:
            problems.append(Problem(item.file, f"size {path.stat().st_size} != {item.size}"))
        elif sha256_file(path) != item.sha256:
            problems.append(Problem(item.file, "sha256 differs from the manifest"))
    listed = {item.file for item in manifest.items} | {MANIFEST_NAME, *extra_ok}
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle).as_posix()
        if rel not in listed:
            problems.append(Problem(rel, "not listed in the manifest"))
    return problems
