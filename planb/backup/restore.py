"""``planb restore``: put an archive back on the fallback hosts, over SSH.

Each host runs the backup role's ``planb-backup-restore``: it extracts and checks the
archive in a staging folder first (the database dump into a fresh database, the
directory into a scratch slapd.d), so a corrupt or truncated archive fails there with
nothing running touched; only then does it stop the services, put the fresh database,
the files and the directory in place, and start them again. Before any host is
touched, planb refuses when one of them holds data (users other than planb's own,
agents in the directory), unless forced, and says how much would be lost.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from planb.backup.core import BORG, BackupError, _ssh, backup_hosts, last_error
from planb.config import SiteConfig
from planb.inventory import InventoryHost

log = logging.getLogger(__name__)

#: The backup role's scripts on the fallback hosts (roles/backup/defaults/main.yml).
RESTORE = "/usr/local/sbin/planb-backup-restore"
COUNTS = "/usr/local/sbin/planb-backup-counts"
#: What the dump hook wrote in each archive: how much data the host held.
COUNTS_IN_ARCHIVE = "var/backups/planb/counts"
#: planb-backup-restore's exit codes: the host holds data (no --force); the archive
#: failed its check (nothing changed).
HOLDS_DATA, BAD_ARCHIVE = 3, 4
#: The counts that make data (rooms and events alone are planb's own announcements).
DATA_KEYS = ("users", "agents")

Progress = Callable[[str], object]


@dataclass(frozen=True)
class Restored:
    """One archive put back on its host by ``restore``."""

    host: str
    archive: str
    seconds: float
    #: What the host's restore script said it restored (counts, no data).
    report: str


def parse_counts(text: str) -> dict[str, int]:
    """``users=3 rooms=2 ...`` (planb-backup-counts) as a dict; {} if it is not that."""
    counts: dict[str, int] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep and value.isdigit():
            counts[key] = int(value)
    return counts


def holds_data(counts: dict[str, int]) -> bool:
    """Whether counts show the organisation's data (not only planb's own accounts)."""
    return any(counts.get(key, 0) > 0 for key in DATA_KEYS)


def describe(counts: dict[str, int]) -> str:
    """Counts for people: "12 users, 3 rooms, 140 events, 60 agents"."""
    return ", ".join(f"{counts[k]} {k}" for k in ("users", "rooms", "events", "agents")
                     if k in counts)


def _archives(host: InventoryHost, timeout: float) -> list[str]:
    """The host's archives, oldest first (checkpoints of interrupted runs left out)."""
    code, out, err = _ssh(host, f"{BORG} list --short", timeout=timeout,
                          what=f"archives of {host.name}")
    if code != 0:
        last = last_error(err, code)
        raise BackupError(f"cannot list the archives of {host.name}: {last}",
                          hint="is the backup host up, and was 'planb deploy' run "
                               "with backup.enabled?")
    return [n for n in out.split() if not n.endswith(".checkpoint")]


def _archive_holds_data(host: InventoryHost, name: str, timeout: float) -> bool:
    """What the dump hook counted when it made ``name``; True for an archive made
    before the hook counted (nothing says it is empty)."""
    code, out, _ = _ssh(host, f"{BORG} extract --stdout ::{shlex.quote(name)} "
                        f"{COUNTS_IN_ARCHIVE}", timeout=timeout, what=f"counts in {name}")
    counts = parse_counts(out) if code == 0 else {}
    if not counts:
        log.info("%s on %s says nothing of its data: taken as holding some", name, host.name)
        return True
    return holds_data(counts)


def pick_archive(host: InventoryHost, *, previous: bool = False, timeout: float = 300,
                 ) -> str:
    """The host's newest archive with data; with ``previous``, the one before it.
    BackupError when there is none."""
    names = _archives(host, timeout)
    found: list[str] = []
    for name in reversed(names):
        if _archive_holds_data(host, name, timeout):
            found.append(name)
            if len(found) == (2 if previous else 1):
                return name
        else:
            log.info("skipping %s on %s: it holds no data", name, host.name)
    if previous and found:
        raise BackupError(f"no archive before {found[0]} on {host.name}",
                          hint="'planb backup list' shows the archives")
    raise BackupError(f"no archive with data to restore on {host.name}",
                      hint="'planb backup list' shows the archives; is this the right "
                           "backup host?")


def host_counts(host: InventoryHost, timeout: float = 120) -> dict[str, int]:
    """How much data ``host`` holds now (planb-backup-counts)."""
    code, out, err = _ssh(host, COUNTS, timeout=timeout, what=f"counts on {host.name}")
    counts = parse_counts(out)
    if code != 0 or not counts:
        last = last_error(err, code)
        raise BackupError(f"cannot tell what {host.name} holds: {last}",
                          hint="run 'planb deploy' (it installs planb-backup-counts)")
    return counts


def _stream(host: InventoryHost, command: str, progress: Progress, timeout: float,
            ) -> tuple[int, list[str], str]:
    """Run ``command`` on ``host``, each stdout line to ``progress`` as it comes."""
    target = host.ssh
    argv = ["ssh", "-o", "BatchMode=yes", *target.ssh_args(), target.destination, command]
    log.debug("run: %s", " ".join(argv))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            bufsize=1)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    lines: list[str] = []
    try:
        assert proc.stdout is not None and proc.stderr is not None
        for raw in proc.stdout:
            line = raw.strip()
            if line:
                lines.append(line)
                progress(f"{host.name}: {line}")
        err = proc.stderr.read()
        code = proc.wait()
    finally:
        timer.cancel()
    if code < 0:
        raise BackupError(f"{command.split()[0]} on {host.name} did not finish within "
                          f"{timeout:g} s")
    return code, lines, err


def restore(site: SiteConfig, *, archive: str | None = None, previous: bool = False,
            force: bool = False, progress: Progress = log.info,
            timeout: float = 7200) -> list[Restored]:
    """Restore each fallback host from its newest archive with data (``archive``: that
    one, on the host that made it; ``previous``: the one before the newest, for when
    the newest failed its check). Refuses, before touching any host, when one holds
    data, unless ``force``. BackupError naming the archive on any failure."""
    hosts = backup_hosts(site)
    if archive is not None:
        if previous:
            raise BackupError("--previous picks an archive itself: not with --archive")
        hosts = [h for h in hosts if archive.startswith(f"{h.name}-")]
        if not hosts:
            raise BackupError(f"no fallback host made archive {archive!r}",
                              hint="'planb backup list' shows the archives and their hosts")
    plan = [(h, archive or pick_archive(h, previous=previous)) for h in hosts]
    if not force:
        full = [(h, name, counts) for h, name in plan
                if holds_data(counts := host_counts(h))]
        if full:
            raise BackupError(
                "refusing to restore over a fallback that holds data: " + "; ".join(
                    f"{h.name} holds {describe(c)} that restoring {name} would replace"
                    for h, name, c in full),
                hint="restore onto a freshly deployed fallback, or add --force to "
                     "replace what it holds (lost, except the database kept on the host "
                     "as synapse_before_restore)")
    done: list[Restored] = []
    for host, name in plan:
        progress(f"restoring {name} onto {host.name}")
        started = time.monotonic()
        command = f"{RESTORE}{' --force' if force else ''} {shlex.quote(name)}"
        code, lines, err = _stream(host, command, progress, timeout)
        last = last_error(err, code)
        if code == HOLDS_DATA:
            raise BackupError(f"refusing to restore {name} over {host.name}: {last}",
                              hint="add --force to replace what it holds")
        if code == BAD_ARCHIVE:
            raise BackupError(
                f"archive {name} of {host.name} failed its check; nothing was changed: "
                f"{last}",
                hint="the archive is damaged: 'planb restore --previous' restores the one "
                     "before it")
        if code != 0:
            raise BackupError(
                f"restoring {name} onto {host.name} failed after its check: {last}",
                hint=f"see the output above; on {host.name} the replaced files are kept "
                     "as <path>.planb-restore-old and services may be stopped")
        seconds = time.monotonic() - started
        report = lines[-1] if lines else ""
        log.info("restored %s onto %s in %.1f s: %s", name, host.name, seconds, report)
        done.append(Restored(host.name, name, seconds, report))
    return done
