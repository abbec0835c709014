"""Backups over SSH on the fallback hosts: ``systemctl start``, ``planb-borg`` (the
backup role's wrapper: the host's repository, SSH key and passphrase file)."""

from __future__ import annotations

import json
import logging
import re
import shlex
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from planb.commands import run_command
from planb.config import SiteConfig
from planb.errors import ConfigError, PlanbError
from planb.files import write_atomic
from planb.inventory import BACKUP, InventoryHost, load_hosts

log = logging.getLogger(__name__)

#: The backup role's names on the fallback hosts (roles/backup/defaults/main.yml).
SERVICE = "planb-backup.service"
BORG = "/usr/local/sbin/planb-borg"
VERIFY = "/usr/local/sbin/planb-backup-verify"
VERIFIED_DIR = "/var/lib/planb/backup/verified"
#: The dump hook writes it when it skipped the backup: the host never held data.
SKIPPED = "/var/lib/planb/backup/skipped"
#: Journal lines shown when a backup fails (borgmatic's own error is in the last ones).
FAILURE_LINES = 12


class BackupError(PlanbError):
    """A backup, or reading the backups, failed on a host (exit 1)."""


@dataclass(frozen=True)
class HostRun:
    """One host's backup run by ``run_now``."""

    host: str
    seconds: float
    #: The host holds no data and never did: its dump hook skipped the backup (no
    #: archive), so an empty one never comes before the real ones.
    skipped: bool = False


@dataclass(frozen=True)
class Verified:
    """One archive restored somewhere harmless by ``verify`` and found whole."""

    host: str
    archive: str
    seconds: float
    #: What the host's verify script said it restored (counts, no data).
    report: str


@dataclass(frozen=True)
class Archive:
    """One archive in a fallback host's repository."""

    host: str
    name: str
    #: When borg started it, as borg says (the host's local time, ISO 8601).
    time: str
    duration_s: float
    #: Bytes read from the host, and what the archive added to the repository.
    original_size: int
    deduplicated_size: int
    files: int
    #: When ``planb backup verify`` restored it somewhere harmless and it passed; "".
    verified: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "name": self.name, "time": self.time,
                "duration_s": self.duration_s, "original_size": self.original_size,
                "deduplicated_size": self.deduplicated_size, "files": self.files,
                "verified": bool(self.verified), "verified_at": self.verified or None}


def backup_hosts(site: SiteConfig, hosts: list[InventoryHost] | None = None,
                 ) -> list[InventoryHost]:
    """The fallback hosts that back themselves up; ConfigError if backups are off or no
    host keeps them."""
    if not site.backup.enabled:
        raise ConfigError("backups are off (backup.enabled is false)", path=str(site.source),
                          hint="set backup.enabled: true in planb.yml, add the backup host "
                               "to the inventory group 'backup', then 'planb deploy'")
    hosts = load_hosts(site) if hosts is None else hosts
    if not any(BACKUP in h.groups for h in hosts):
        raise ConfigError(f"no host in group {BACKUP}", path=str(site.inventory_dir),
                          hint="add the host that keeps the backups to the group 'backup'")
    found = [h for h in hosts if h.is_fallback and BACKUP not in h.groups]
    if not found:
        raise ConfigError("no fallback host in the inventory", path=str(site.inventory_dir))
    return found


def last_error(err: str, code: int) -> str:
    """The last line a failed command wrote to stderr, else its exit code."""
    return (err.strip().splitlines() or [f"exit {code}"])[-1]


def _ssh(host: InventoryHost, command: str, *, timeout: float, check: bool = True,
         what: str) -> tuple[int, str, str]:
    target = host.ssh
    proc = run_command(["ssh", "-o", "BatchMode=yes", *target.ssh_args(), target.destination,
                        command], check=False, timeout=timeout, error=BackupError, what=what)
    if check and proc.returncode == 255:
        raise BackupError(f"{what}: cannot reach {host.name} over SSH: "
                          f"{proc.stderr.strip().splitlines()[-1:] or ['exit 255']}")
    return proc.returncode, proc.stdout, proc.stderr


def run_now(site: SiteConfig, *, timeout: float = 3600) -> list[HostRun]:
    """Start the backup service on each fallback host and wait for it; BackupError naming
    the host and borgmatic's last lines if one fails (the others still run)."""
    runs: list[HostRun] = []
    failures: list[str] = []
    for host in backup_hosts(site):
        started = time.monotonic()
        since = f"@{int(time.time()) - 1}"
        # The timer's unit: a backup already running is joined, not doubled.
        code, out, err = _ssh(host, f"systemctl start {SERVICE} && "
                              f"{{ cat {SKIPPED} 2>/dev/null; true; }}", timeout=timeout,
                              what=f"backup of {host.name}")
        seconds = time.monotonic() - started
        if code == 0:
            skipped = bool(out.strip())
            log.info("backup of %s %s in %.1f s", host.name,
                     "skipped (no data yet)" if skipped else "done", seconds)
            runs.append(HostRun(host.name, seconds, skipped))
            continue
        _, journal, _ = _ssh(host, f"journalctl -u {SERVICE} --since {since} -o cat "
                             f"--no-pager -n {FAILURE_LINES}", timeout=60, check=False,
                             what=f"journal of {host.name}")
        failures.append(f"{host.name}: {_why(journal) or err.strip() or f'exit {code}'}")
    if failures:
        raise BackupError("backup failed on " + "; ".join(failures),
                          hint="see 'journalctl -u planb-backup' on the host; is the backup "
                               "host up and reachable from it?")
    return runs


#: Lines of borgmatic's and systemd's that say nothing about the cause.
_NOISE = ("summary:", "need some help", "error running configuration file",
          "error running actions for repository", "planb-backup.service", "failed to start")


def _why(journal: str) -> str:
    """The cause in the unit's journal: borgmatic's error lines without its boilerplate,
    each once and cut short (borg's own messages can carry the whole file list)."""
    lines: list[str] = []
    for raw in journal.splitlines():
        line = raw.strip().removeprefix("CRITICAL").strip()
        if line and line not in lines and not any(n in line.lower() for n in _NOISE):
            lines.append(line)
    causes = [line for line in lines if not line.startswith("Command '")] or lines
    return " | ".join(line if len(line) <= 240 else line[:240] + "…" for line in causes[-3:])


def list_archives(site: SiteConfig, *, timeout: float = 300) -> list[Archive]:
    """Every fallback host's archives, oldest first, with size and whether verified."""
    archives: list[Archive] = []
    for host in backup_hosts(site):
        # borg gives the host's local time without its offset: the host adds it.
        command = f"{BORG} info --json --glob-archives '*' && date +%:z"
        code, out, err = _ssh(host, command, timeout=timeout, what=f"archives of {host.name}")
        if code != 0:
            last = last_error(err, code)
            raise BackupError(f"cannot list the archives of {host.name}: {last}",
                              hint="is the backup host up, and was 'planb deploy' run "
                                   "with backup.enabled?")
        _, marks, _ = _ssh(host, f"cd {VERIFIED_DIR} 2>/dev/null && for f in *; do "
                           '[ -f "$f" ] && printf "%s\\t%s\\n" "$f" "$(cat "$f")"; done; true',
                           timeout=60, check=False, what=f"verified marks of {host.name}")
        verified = dict(line.split("\t", 1) for line in marks.splitlines() if "\t" in line)
        text, _, offset = out.strip().rpartition("\n")
        archives += parse_info(host.name, text, verified, offset=offset.strip())
    return sorted(archives, key=lambda a: (a.time, a.host))


def parse_info(host: str, text: str, verified: dict[str, str] | None = None, *,
               offset: str = "") -> list[Archive]:
    """The archives in ``borg info --json`` output, their start time given the host's
    UTC ``offset`` (+01:00); BackupError if it is not that."""
    if offset and not re.match(r"^[+-][0-9]{2}:[0-9]{2}$", offset):
        raise BackupError(f"unexpected UTC offset from {host}: {offset[:20]!r}")
    try:
        data = json.loads(text)
        found = [Archive(host=host, name=a["name"], time=a["start"] + offset,
                         duration_s=float(a.get("duration", 0.0)),
                         original_size=int(a["stats"]["original_size"]),
                         deduplicated_size=int(a["stats"]["deduplicated_size"]),
                         files=int(a["stats"]["nfiles"]),
                         verified=(verified or {}).get(a["name"], "").strip())
                 for a in data.get("archives", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"unexpected answer from borg on {host}: {type(exc).__name__}"
                          ) from None
    return found


def export_keys(site: SiteConfig, out_dir: Path, *, paper: bool = False,
                timeout: float = 120) -> list[Path]:
    """Write each fallback host's repository key to ``out_dir/<host>.borg-key`` (0600).

    The key is what borg keeps in the repository (repokey); with the vault's
    passphrase it opens the backups: both go to the crisis cell's safe.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    for host in backup_hosts(site):
        flag = " --paper" if paper else ""
        code, out, err = _ssh(host, f"{BORG} key export{flag}", timeout=timeout,
                              what=f"key export of {host.name}")
        if code != 0 or not out.strip():
            last = last_error(err, code)
            raise BackupError(f"cannot export the repository key of {host.name}: {last}")
        # The file is exactly borg's export, so 'borg key import' reads it back.
        path = out_dir / f"{host.name}.borg-key{'.txt' if paper else ''}"
        write_atomic(path, out, 0o600)
        log.info("exported the repository key of %s to %s (%s)", host.name, path, stamp)
        written.append(path)
    return written


def _newest(host: InventoryHost, timeout: float) -> str:
    code, out, err = _ssh(host, f"{BORG} list --short --last 1", timeout=timeout,
                          what=f"archives of {host.name}")
    names = out.split()
    if code != 0 or not names:
        last = (err.strip().splitlines() or ["no archive yet"])[-1]
        raise BackupError(f"no archive to verify on {host.name}: {last}",
                          hint="run 'planb backup now' first")
    return names[-1]


def verify(site: SiteConfig, archive: str | None = None, *, timeout: float = 1800,
           ) -> list[Verified]:
    """Restore ``archive`` (default: each host's newest) somewhere harmless on its host
    and check it: the database dump into a scratch database, the directory into a
    scratch slapd.d (the running services are not touched). BackupError naming the
    archive and what failed; a passing archive is marked verified on its host."""
    hosts = backup_hosts(site)
    if archive is not None:
        hosts = [h for h in hosts if archive.startswith(f"{h.name}-")]
        if not hosts:
            raise BackupError(f"no fallback host made archive {archive!r}",
                              hint="'planb backup list' shows the archives and their hosts")
    done: list[Verified] = []
    for host in hosts:
        name = archive or _newest(host, timeout=120)
        started = time.monotonic()
        code, out, err = _ssh(host, f"{VERIFY} {shlex.quote(name)}", timeout=timeout,
                              what=f"verify of {name}")
        if code != 0:
            last = last_error(err, code)
            raise BackupError(f"archive {name} of {host.name} failed verification: {last}",
                              hint="the archive may be damaged: take a new backup "
                                   "('planb backup now') and verify it")
        report = " / ".join(line.strip() for line in out.splitlines() if line.strip())
        done.append(Verified(host.name, name, time.monotonic() - started, report))
        log.info("verified %s on %s: %s", name, host.name, report)
    return done
