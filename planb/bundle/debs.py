"""Download the Debian packages the roles install, plus exactly what the lab image lacks.

apt runs inside a throwaway overlay of the cached lab image (the image itself is
never written): it sees what the hosts already have, so it downloads only the
missing packages and dependencies (``--download-only``, no recommends). Lists come
from bookworm, bookworm-updates and bookworm-security, like the controller's
``debian.sources``. Already downloaded .deb files are seeded into apt's archive
folder first, so a rebuild downloads only what changed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from planb.commands import run_command
from planb.errors import PlanbError, PrerequisiteError

log = logging.getLogger(__name__)

SUITE = "bookworm"
MIRROR_ENV = "PLANB_DEBIAN_MIRROR"
SECURITY_MIRROR_ENV = "PLANB_DEBIAN_SECURITY_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
_APT_TIMEOUT_S = 1800
ARCHIVES = "var/cache/planb-bundle/archives"
_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[([^\]]+)\]\)")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")


def sources_text(mirror: str, security_mirror: str) -> str:
    """deb822 sources for bookworm, its updates and its security updates."""
    return (
        f"Types: deb\nURIs: {mirror}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {security_mirror}\nSuites: {SUITE}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def apt_options(cache: str) -> list[str]:
    """apt-get options: only planb's sources, archives in ``cache``, no recommends."""
    return [
        "-o", "Dir::Etc::SourceList=/dev/null",
        "-o", "Dir::Etc::SourceParts=/etc/apt/planb-bundle.sources.d",
        "-o", f"Dir::Cache::archives={cache}",
        "-o", "APT::Install-Recommends=false",
        "-o", "APT::Sandbox::User=root",
        "-o", "Acquire::Languages=none",
    ]


def download_debs(
    rootfs: Path,
    packages: Sequence[str],
    dest: Path,
    *,
    seed: Path | None = None,
    lists_cache: Path | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> list[Path]:
    """Download ``packages`` and their missing dependencies into ``dest``; return the files.

    ``rootfs`` is the lab image (only read); ``seed`` a folder of .deb files from the
    previous bundle (not downloaded again); ``lists_cache`` keeps apt's lists between
    builds so ``apt-get update`` only fetches what changed.
    """
    _check_root()
    if not packages:
        raise PlanbError("playbooks/bundle/debs.txt lists no package")
    dest.mkdir(parents=True, exist_ok=True)
    with _overlay(rootfs, workdir=dest.parent) as root:
        archives = root / ARCHIVES
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        if seed is not None and seed.is_dir():
            for deb in seed.glob("*.deb"):
                _link_or_copy(deb, archives / deb.name)
        _write_apt_config(root)
        lists = root / "var/lib/apt/lists"
        if lists_cache is not None and lists_cache.is_dir():
            shutil.copytree(lists_cache, lists, dirs_exist_ok=True)
        opts = apt_options("/" + ARCHIVES)
        progress("apt-get update (bookworm, bookworm-updates, bookworm-security)")
        _chroot_apt(root, [*opts, "update"])
        if lists_cache is not None:
            shutil.rmtree(lists_cache, ignore_errors=True)
            shutil.copytree(lists, lists_cache, ignore=shutil.ignore_patterns("lock", "partial"))
        progress(f"downloading {len(packages)} packages and what the lab image lacks for them")
        _chroot_apt(root, [*opts, "install", "--download-only", "--no-install-recommends",
                           "-y", *packages])
        files = []
        for name in sorted(_planned_files(root, opts, packages)):
            _link_or_copy(archives / name, dest / name)
            files.append(dest / name)
    log.info("%d .deb files for %d requested packages", len(files), len(packages))
    return files


def _planned_files(root: Path, opts: list[str], packages: Sequence[str]) -> set[str]:
    """The .deb files apt installs for ``packages``: the bundle holds these and nothing stale.

    apt's simulation prints one ``Inst NAME (VERSION SUITE [ARCH])`` line per package.
    """
    proc = _chroot_apt(root, [*opts, "install", "--no-install-recommends", "-s", "-y",
                              *packages], capture=True)
    archives = root / ARCHIVES
    names = set()
    for line in proc.stdout.splitlines():
        planned = parse_inst_line(line)
        if planned is None:
            continue
        file = deb_file_name(*planned)
        if not (archives / file).is_file():
            raise PlanbError(f"apt planned {planned[0]} {planned[1]} but did not download "
                             f"{file}")
        names.add(file)
    return names


def parse_inst_line(line: str) -> tuple[str, str, str] | None:
    """(name, version, arch) from apt's ``Inst NAME [OLD] (VERSION SUITE [ARCH])`` line."""
    match = _INST.match(line)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def deb_file_name(name: str, version: str, arch: str) -> str:
    """apt's archive file name: NAME_VERSION_ARCH.deb with ':' (an epoch) as %3a."""
    return f"{name}_{version.replace(':', '%3a')}_{arch}.deb"


def _check_root() -> None:
    if os.geteuid() != 0:
        raise PrerequisiteError(
            "building the bundle's packages needs root (it mounts an overlay of the lab image)",
            hint="run 'planb bundle build' as root")


@contextmanager
def _overlay(rootfs: Path, *, workdir: Path) -> Iterator[Path]:
    """A writable overlay of ``rootfs`` in a temporary folder, unmounted and removed after.

    Only a few device files are bound in (never all of /dev), and the folder is
    removed only once nothing is mounted under it any more.
    """
    if not (rootfs / "usr/bin/apt-get").exists():
        raise PlanbError(f"{rootfs} is not a Debian root file system (no apt-get)")
    work = Path(tempfile.mkdtemp(prefix=".planb-bundle-apt-", dir=workdir))
    mounted: list[Path] = []
    try:
        upper, scratch, root = work / "upper", work / "work", work / "root"
        for folder in (upper, scratch, root):
            folder.mkdir()
        _run(["mount", "-t", "overlay", "overlay", "-o",
              f"lowerdir={rootfs},upperdir={upper},workdir={scratch}", str(root)])
        mounted.append(root)
        for device in _DEVICES:
            target = root / device.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            target.touch()
            _run(["mount", "--bind", device, str(target)])
            mounted.append(target)
        resolv = root / "etc/resolv.conf"
        if resolv.is_symlink() or resolv.exists():
            resolv.unlink()
        shutil.copy2("/etc/resolv.conf", resolv)
        yield root
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", str(target)], capture_output=True, check=False)
        _remove_unmounted(work)


def _remove_unmounted(work: Path) -> None:
    prefix = str(work.resolve()) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        busy = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    if busy:
        log.error("not removing %s: still mounted: %s", work, ", ".join(busy))
        return
    shutil.rmtree(work, ignore_errors=True)


def _write_apt_config(root: Path) -> None:
    parts = root / "etc/apt/planb-bundle.sources.d"
    parts.mkdir(parents=True, exist_ok=True)
    mirror = os.environ.get(MIRROR_ENV, DEFAULT_MIRROR)
    security = os.environ.get(SECURITY_MIRROR_ENV, DEFAULT_SECURITY_MIRROR)
    (parts / "debian.sources").write_text(sources_text(mirror, security), encoding="utf-8")
    # The controller's own apt settings (a proxy, Check-Valid-Until for a snapshot
    # mirror) apply to the build too: it downloads on the controller's behalf.
    conf = root / "etc/apt/apt.conf.d"
    for source in sorted(Path("/etc/apt/apt.conf.d").glob("*")):
        if source.is_file() and _is_acquire_setting(source):
            shutil.copy2(source, conf / f"zz-controller-{source.name}")


def _is_acquire_setting(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.strip().startswith(("#", "//"))]
    return bool(lines) and all(ln.startswith("Acquire::") for ln in lines)


def _chroot_apt(root: Path, args: list[str], *, capture: bool = False
                ) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(["chroot", str(root), "apt-get", "-q", *args], capture_output=True,
                          text=True, env=env, timeout=_APT_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        detail = [ln for ln in (proc.stderr + proc.stdout).splitlines()
                  if ln.startswith(("E:", "W:")) or "Unable" in ln]
        raise PlanbError(
            f"apt-get {args[-1] if args[-1] == 'update' else 'install'} failed in the "
            f"bundle build: {'; '.join(detail[-3:]) or proc.returncode}",
            hint="check that the controller reaches the Debian mirror "
            f"(${MIRROR_ENV} overrides it) and that every name in "
            "playbooks/bundle/debs.txt is a bookworm package")
    return proc


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _run(argv: list[str]) -> None:
    run_command(argv)
