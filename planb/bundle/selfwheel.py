"""planb's own wheel, made from the planb this controller runs: no build tool, no network.

The messaging hosts run planb's break-glass command (role ``breakglass``) from a
virtualenv holding this wheel (installed ``--no-deps``) and the bundle's
``wheels-host/`` (its dependencies, ``requirements/planb-host.txt``). The wheel is
written by ``planb deploy`` from the package folder itself (a checkout or an installed
wheel alike), so the host runs exactly the code, journal format and audit format of
the controller that deployed it. It is byte-for-byte reproducible: same files, same
wheel (sorted names, fixed timestamps), so the role reinstalls it only when planb
changed.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import zipfile
from pathlib import Path

import planb
from planb.files import replacing

log = logging.getLogger(__name__)

NAME = "planb"
#: The host's console script: root's break-glass key runs it (forced command).
CONSOLE_SCRIPTS = {"planb-breakglass": "planb.breakglass.cli:main"}
_EPOCH = (2000, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


def wheel_name(version: str = planb.__version__) -> str:
    return f"{NAME}-{version}-py3-none-any.whl"


def package_files(package_dir: Path) -> list[tuple[str, Path]]:
    """``(name in the wheel, file)`` for every file of the package, sorted."""
    found = []
    for path in package_dir.rglob("*"):
        if not path.is_file() or path.suffix in _SKIP_SUFFIXES:
            continue
        relative = path.relative_to(package_dir)
        if _SKIP_DIRS & set(relative.parts):
            continue
        found.append((f"{NAME}/{relative.as_posix()}", path))
    return sorted(found)


def _metadata(version: str) -> dict[str, bytes]:
    dist = f"{NAME}-{version}.dist-info"
    scripts = "".join(f"{k} = {v}\n" for k, v in sorted(CONSOLE_SCRIPTS.items()))
    return {
        f"{dist}/METADATA": (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {version}\n"
                             "Summary: planb on a fallback host (break-glass command)\n"
                             "Requires-Python: >=3.11\n").encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: planb.bundle.selfwheel\n"
                         b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": f"[console_scripts]\n{scripts}".encode(),
    }


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def build_self_wheel(dest_dir: Path, package_dir: Path | None = None,
                     version: str = planb.__version__) -> Path:
    """Write planb's wheel into ``dest_dir`` (replacing an older one); return its path."""
    package_dir = package_dir or Path(planb.__file__).resolve().parent
    entries: list[tuple[str, bytes]] = [(name, path.read_bytes())
                                        for name, path in package_files(package_dir)]
    entries += sorted(_metadata(version).items())
    record_name = f"{NAME}-{version}.dist-info/RECORD"
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{record_name},,\n"
    entries.append((record_name, record.encode()))
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / wheel_name(version)
    with replacing(target, 0o644) as staging, \
            zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    log.info("planb's wheel for the hosts: %s (%d files)", target, len(entries))
    return target
