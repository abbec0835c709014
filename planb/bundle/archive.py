"""The bundle as one tar file, which the ``bundle`` role ships to each host in one copy.

Entries are sorted, owned by root and dated 0, so the same bundle gives the same
bytes. ``manifest.json`` is the last entry: on a host, its presence means the whole
archive was unpacked.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from planb.bundle.manifest import MANIFEST_NAME
from planb.files import replacing

ARCHIVE_NAME = "bundle.tar"


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def write_archive(bundle: Path, files: list[str], target: Path) -> Path:
    """Write ``files`` (relative to ``bundle``) and then the manifest into ``target``."""
    names = sorted(f for f in files if f != MANIFEST_NAME)
    folders = sorted({str(Path(f).parent) for f in names} - {"."})
    with replacing(target) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for folder in folders:
            tar.add(bundle / folder, arcname=folder, recursive=False, filter=_normalise)
        for name in [*names, MANIFEST_NAME]:
            tar.add(bundle / name, arcname=name, recursive=False, filter=_normalise)
    return target
