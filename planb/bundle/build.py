"""``planb bundle build``: debs + wheels + browser client + index + manifest + one tar.

Built aside, then swapped in: the new bundle is made in a hidden folder next to the
output and renamed into place only when complete, so an interrupted build never
leaves a half bundle that looks finished. When the manifest says the bundle was built
from the same inputs, nothing is rebuilt (unless ``refresh``). A lock stops two builds
of one folder at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from planb import state
from planb.bundle import client, debrepo, debs, wheels
from planb.bundle.archive import ARCHIVE_NAME, write_archive
from planb.bundle.inputs import Inputs, read_inputs
from planb.bundle.manifest import (
    MANIFEST_NAME,
    SUMS_NAME,
    Item,
    Kind,
    Manifest,
    load_manifest,
    make_manifest,
    sha256_file,
    sums_text,
)
from planb.errors import PlanbError
from planb.lab import image

log = logging.getLogger(__name__)

REQUIREMENTS_PATH = "requirements/synapse.txt"
#: planb's own dependencies for the messaging hosts' break-glass command (role
#: breakglass): a set of its own, so Synapse's virtualenv never gets them.
HOST_WHEELS_DIR = "wheels-host"
HOST_REQUIREMENTS_PATH = "requirements/planb-host.txt"
#: Release files get a fixed date so equal content gives an equal bundle id.
RELEASE_DATE = "Sat, 01 Jan 2000 00:00:00 UTC"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    """What ``build_bundle`` did: the manifest, whether it rebuilt, and how long it took."""

    path: Path
    manifest: Manifest
    rebuilt: bool
    duration_s: float
    archive_size: int


def default_output() -> Path:
    """``$PLANB_HOME/bundles/current``: the machine-wide bundle every site deploys from."""
    return state.planb_home() / "bundles" / "current"


def build_context() -> dict[str, str]:
    """What besides the lists decides the content: lab image, mirrors, package index."""

    return {
        "image": image.image_id(),
        "mirror": os.environ.get(debs.MIRROR_ENV, debs.DEFAULT_MIRROR),
        "security_mirror": os.environ.get(debs.SECURITY_MIRROR_ENV,
                                          debs.DEFAULT_SECURITY_MIRROR),
        "pypi": os.environ.get(wheels.INDEX_ENV, wheels.DEFAULT_INDEX),
        "npm": os.environ.get(client.REGISTRY_ENV, client.DEFAULT_REGISTRY),
    }


def is_current(output: Path, inputs: Inputs) -> Manifest | None:
    """The bundle's manifest if it was built from ``inputs`` and its files are all there."""
    try:
        manifest = load_manifest(output)
    except PlanbError:
        return None
    if manifest.inputs != inputs.fingerprint() or not (output / ARCHIVE_NAME).is_file():
        return None
    for item in manifest.items:
        path = output / item.file
        if not path.is_file() or path.stat().st_size != item.size:
            return None
    return manifest


def build_bundle(output: Path | None = None, *, refresh: bool = False,
                 progress: Progress = lambda _msg: None) -> BuildResult:
    """Build (or reuse) the bundle in ``output`` (default :func:`default_output`)."""
    started = time.monotonic()
    output = (output or default_output()).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    inputs = read_inputs(context=build_context())
    with open(output.parent / f".{output.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = None if refresh else is_current(output, inputs)
        if current is not None:
            log.info("bundle %s is up to date (same inputs)", current.bundle_id)
            return BuildResult(output, current, False, time.monotonic() - started,
                               (output / ARCHIVE_NAME).stat().st_size)
        manifest = _build_into(output, inputs, progress)
    return BuildResult(output, manifest, True, time.monotonic() - started,
                       (output / ARCHIVE_NAME).stat().st_size)


def _build_into(output: Path, inputs: Inputs, progress: Progress) -> Manifest:

    staging = output.with_name(f".{output.name}.building")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    cache = state.planb_home() / "cache" / "bundle"
    try:
        progress("preparing the lab image (built once, then cached)")
        rootfs = image.ensure_image()
        deb_files = debs.download_debs(
            rootfs, inputs.debs, staging / "debs", seed=output / "debs",
            lists_cache=cache / "apt-lists", progress=progress)
        progress(f"indexing {len(deb_files)} Debian packages")
        infos = [debrepo.read_deb(path) for path in deb_files]
        index = debrepo.write_index(staging / "debs", infos, date=RELEASE_DATE)
        requirements = staging / "requirements.in"
        requirements.write_text(inputs.requirements, encoding="utf-8")
        built = wheels.build_wheels(requirements, staging / "wheels", cache=cache / "pip",
                                    progress=progress)
        requirements.write_text(inputs.host_requirements, encoding="utf-8")
        host_built = wheels.build_wheels(requirements, staging / HOST_WHEELS_DIR,
                                         cache=cache / "pip", progress=progress)
        requirements.unlink()
        web = client.build_client(staging, cache=cache / "client", progress=progress)
        progress(f"hashing {len(built)} wheels and writing the manifest")
        items = [Item("deb", d.package, d.version, f"debs/{d.file}", d.sha256, d.size)
                 for d in infos]
        items += [_item(staging, f"wheels/{w.file}", "wheel", w.name, w.version)
                  for w in built]
        items += [_item(staging, f"{HOST_WHEELS_DIR}/{w.file}", "wheel", w.name, w.version)
                  for w in host_built]
        hashes = {w.file: _sha(items, f"wheels/{w.file}") for w in built}
        req = staging / REQUIREMENTS_PATH
        req.parent.mkdir()
        req.write_text(wheels.requirements_text(built, hashes), encoding="utf-8")
        host_hashes = {w.file: _sha(items, f"{HOST_WHEELS_DIR}/{w.file}") for w in host_built}
        (staging / HOST_REQUIREMENTS_PATH).write_text(
            wheels.requirements_text(host_built, host_hashes, "planb-host.txt"),
            encoding="utf-8")
        items += [_item(staging, file, "client", *web.component(file)) for file in web.files]
        items += [_item(staging, f"debs/{p.name}", "index", p.name, "") for p in index]
        items.append(_item(staging, REQUIREMENTS_PATH, "index", "synapse.txt", ""))
        items.append(_item(staging, HOST_REQUIREMENTS_PATH, "index", "planb-host.txt", ""))
        (staging / SUMS_NAME).write_text(sums_text(sorted(items, key=lambda i: i.file)),
                                         encoding="utf-8")
        items.append(_item(staging, SUMS_NAME, "index", SUMS_NAME, ""))
        created = datetime.now(UTC).isoformat(timespec="seconds")
        manifest = make_manifest(items, created=created, inputs=inputs.fingerprint())
        (staging / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        progress("writing the bundle archive")
        write_archive(staging, [i.file for i in manifest.items], staging / ARCHIVE_NAME)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap(staging, output)
    log.info("bundle %s: %d debs, %d wheels, %d client files, %.1f MiB", manifest.bundle_id,
             manifest.count("deb"), manifest.count("wheel"), manifest.count("client"),
             manifest.size / 2**20)
    return manifest


def _item(root: Path, file: str, kind: Kind, name: str, version: str) -> Item:
    path = root / file
    return Item(kind, name, version, file, sha256_file(path), path.stat().st_size)


def _sha(items: list[Item], file: str) -> str:
    return next(item.sha256 for item in items if item.file == file)


def _swap(staging: Path, output: Path) -> None:
    old = output.with_name(f".{output.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if output.exists():
        output.rename(old)
    staging.rename(output)
    shutil.rmtree(old, ignore_errors=True)
