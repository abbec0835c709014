"""Pushing the copy to the hosts that keep it: every fallback messaging host and every
backup host, in ``/var/lib/planb/controller-copy/copy.tar`` (root only, replaced whole).

The CLI pushes after every command that changed the state (:func:`state_picture`
before, :func:`changed` after); ``planb controller push`` pushes on demand. A host that
cannot be reached is reported, never fatal: the command's own work is done.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from dataclasses import dataclass

from planb.config import SiteConfig
from planb.hostkeys import is_key_refusal, known_hosts_path, read_known_hosts
from planb.inventory import BACKUP, FALLBACK_MESSAGING, InventoryHost, load_hosts
from planb.statecopy.archive import BuiltCopy, build_copy
from planb.statecopy.content import fingerprint_state, site_entries

log = logging.getLogger(__name__)

REMOTE_DIR = "/var/lib/planb/controller-copy"
COPY_NAME = "copy.tar"
REMOTE_COPY = f"{REMOTE_DIR}/{COPY_NAME}"
#: Set to ``off`` to never push automatically (e.g. on a machine without the hosts).
AUTO_ENV = "PLANB_STATE_COPY"

Picture = tuple[tuple[str, int, int], ...]
#: The inventory as last read, by what its files were then: reading it runs
#: ansible-inventory (1.6 s), and the CLI pushes after every command that changes state.
_hosts_cache: dict[tuple[object, ...], list[InventoryHost]] = {}


@dataclass(frozen=True)
class Pushed:
    """What pushing the copy to one host did."""

    host: str
    ok: bool
    seconds: float
    size: int
    encrypted: bool
    error: str = ""

    def as_json(self) -> dict[str, object]:
        return {"host": self.host, "ok": self.ok, "seconds": round(self.seconds, 3),
                "bytes": self.size, "encrypted": self.encrypted, "error": self.error}


def _inventory_hosts(site: SiteConfig) -> list[InventoryHost]:
    """The site's hosts, read again only when a file of the inventory changed."""
    files = sorted(p for p in site.inventory_dir.rglob("*") if p.is_file()) \
        if site.inventory_dir.is_dir() else []
    key = (str(site.inventory_dir), str(known_hosts_path(site)),
           tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    if key not in _hosts_cache:
        _hosts_cache.clear()
        _hosts_cache[key] = load_hosts(site)
    return _hosts_cache[key]


def copy_targets(site: SiteConfig, hosts: list[InventoryHost] | None = None
                 ) -> list[InventoryHost]:
    """The hosts that keep a copy: fallback messaging hosts, then backup hosts (when
    backups are on: only then is the backup host part of the site)."""
    inventory = _inventory_hosts(site) if hosts is None else hosts
    chosen = [h for h in inventory if FALLBACK_MESSAGING in h.groups]
    if site.backup.enabled:
        chosen += [h for h in inventory if BACKUP in h.groups and h not in chosen]
    return [h for h in chosen if h.uses_ssh]


def ssh(host: InventoryHost, command: str, *, data: bytes | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` on ``host`` over SSH as the inventory says (site known_hosts only),
    bytes in and out; a timeout comes back as exit 255 with the reason on stderr."""
    target = host.ssh
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", *target.ssh_args(),
            target.destination, command]
    log.debug("ssh %s: %s", host.name, command)
    try:
        return subprocess.run(argv, input=data, capture_output=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 255, b"", f"no answer within {timeout:g} s"
                                           .encode())


def ssh_error(host: InventoryHost, proc: subprocess.CompletedProcess[bytes]) -> str:
    """The last line ssh or the remote command wrote, for a person."""
    text = proc.stderr.decode("utf-8", "replace")
    if is_key_refusal(text):
        return (f"its SSH host key is not the one recorded in the site's known_hosts "
                f"({host.ssh.known_hosts}): not connected")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {proc.returncode}"


def push(site: SiteConfig, *, hosts: list[InventoryHost] | None = None,
         built: BuiltCopy | None = None, timeout: float = 120) -> list[Pushed]:
    """Send the copy of the state to every host that keeps one; one result per host."""
    built = built or build_copy(site)
    directory = shlex.quote(REMOTE_DIR)
    command = (f"umask 077 && mkdir -p {directory} && chmod 700 {directory} && "
               f"cat > {directory}/.{COPY_NAME}.tmp && "
               f"mv -f {directory}/.{COPY_NAME}.tmp {shlex.quote(REMOTE_COPY)}")
    results = []
    for host in copy_targets(site, hosts):
        start = time.monotonic()
        proc = ssh(host, command, data=built.data, timeout=timeout)
        seconds = time.monotonic() - start
        error = "" if proc.returncode == 0 else ssh_error(host, proc)
        if error:
            log.warning("copy of the controller's state not pushed to %s: %s", host.name, error)
        else:
            log.info("copy of the controller's state pushed to %s:%s (%d bytes, %.1f s)",
                     host.name, REMOTE_COPY, len(built.data), seconds)
        results.append(Pushed(host.name, not error, seconds, len(built.data), built.encrypted,
                              error))
    return results


def auto_push_enabled(site: SiteConfig) -> bool:
    """Whether the CLI pushes after a change: not turned off, and some host's key is
    recorded (a site whose hosts were never reached has nowhere to push)."""
    if os.environ.get(AUTO_ENV, "").lower() in ("off", "0", "no", "false"):
        return False
    return bool(read_known_hosts(known_hosts_path(site)))


def state_picture(site: SiteConfig) -> Picture:
    """Names, sizes and times of the files the copy holds (cheap: no reading)."""
    return fingerprint_state(site_entries(site))


def changed(site: SiteConfig, before: Picture) -> bool:
    """Whether the state changed since ``before``."""
    return state_picture(site) != before
