"""The lab's Debian 12 root file system: made once with debootstrap, then cached.

Every lab host boots from this image through an overlay, so a warm ``lab up`` only
mounts and boots. The image is built in a temporary folder and renamed into place,
so an interrupted build never leaves a half image that looks finished.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import time
from pathlib import Path

from planb import state
from planb.lab.system import run

log = logging.getLogger(__name__)

SUITE = "bookworm"
MIRROR_ENV = "PLANB_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

#: What every host has before Ansible touches it: systemd as PID 1, sshd, and what
#: Ansible's modules need on the target (python3, python3-apt for ansible.builtin.apt).
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "iproute2",
    "procps",
    "ca-certificates",
    "tzdata",
    "locales",
    "netbase",
)


def image_id() -> str:
    """A short id that changes whenever what goes into the image changes."""
    recipe = "\n".join((SUITE, *PACKAGES, "v2"))
    return f"debian-{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:10]}"


def image_dir() -> Path:
    return state.planb_home() / "images" / image_id()


def rootfs_path() -> Path:
    """Where the finished image's root file system is (it may not exist yet)."""
    return image_dir() / "rootfs"


def is_built() -> bool:
    return (image_dir() / "complete").is_file()


def ensure_image(*, rebuild: bool = False) -> Path:
    """Return the cached rootfs, building it with debootstrap if needed (about a minute)."""
    target = image_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if rebuild and target.exists():
            shutil.rmtree(target)
        if is_built():
            return rootfs_path()
        _build(target)
    return rootfs_path()


def _build(target: Path) -> None:
    mirror = os.environ.get(MIRROR_ENV, DEFAULT_MIRROR)
    work = target.with_name(f".{target.name}.building")
    if work.exists():
        shutil.rmtree(work)
    rootfs = work / "rootfs"
    rootfs.mkdir(parents=True)
    log.info("building the lab image with debootstrap from %s (about a minute)", mirror)
    started = time.monotonic()
    run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
         SUITE, str(rootfs), mirror],
        timeout=1200,
    )
    _prepare(rootfs)
    (work / "complete").write_text(f"{time.time():.0f}\n", encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    work.rename(target)
    log.info("lab image ready in %.0f s: %s", time.monotonic() - started, target)


def _prepare(rootfs: Path) -> None:
    """Make the image boot into a reachable host: networkd on, no shared host keys."""
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    networkd = wants / "systemd-networkd.service"
    if not networkd.exists():
        networkd.symlink_to("/lib/systemd/system/systemd-networkd.service")
    # Host keys are made per host, so no two lab hosts share an identity.
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # Nothing in the lab has a route out; apt lists would only be stale.
    (rootfs / "etc/apt/sources.list").write_text(
        f"# The lab has no route to the internet; roles install from the planb bundle.\n"
        f"# deb {DEFAULT_MIRROR} {SUITE} main\n",
        encoding="utf-8",
    )
    (rootfs / "etc/locale.gen").write_text("fr_FR.UTF-8 UTF-8\nen_US.UTF-8 UTF-8\n",
                                           encoding="utf-8")
    run(["chroot", str(rootfs), "locale-gen"], timeout=300)
    (rootfs / "etc/machine-id").write_text("", encoding="utf-8")
