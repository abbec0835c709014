"""What was done on a fallback host without the controller: its break-glass journals and
audit lines, fetched into the controller's state and verified with the host's own key.

The break-glass command (``planb-breakglass`` on each fallback messaging host) keeps its
own journal chain in ``/var/lib/planb/breakglass/journals/`` signed by a key made on the
host, and its audit lines in ``/var/lib/planb/breakglass/audit.log``; deploy copies the
host key's public part to ``<state>/keys/hosts/<host>.pub``. :func:`fetch` brings them
to ``<state>/journals/hosts/<host>/`` (the audit log under ``failover/`` there, as the
controller keeps its own), **append-only**: a journal fetched once is never replaced,
so a host that rewrites its history later does not rewrite the controller's record;
what differs is kept aside under ``conflicts/`` and reported. :func:`verify_hosts`
checks each host chain trusting only that host's public key.
"""

from __future__ import annotations

import io
import logging
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from planb.config import SiteConfig
from planb.errors import PlanbError
from planb.files import write_atomic
from planb.hostkeys import known_hosts_path, read_known_hosts
from planb.inventory import FALLBACK_MESSAGING, InventoryHost, hosts_in, load_hosts
from planb.mode import AUDIT_HEAD_NAME, AuditEntry, AuditLog, AuditVerdict, verify_audit
from planb.reports.journal import HEAD_NAME, parse_filename
from planb.reports.keys import fingerprint, load_public_key
from planb.reports.store import journals_dir
from planb.reports.trust import Trust
from planb.reports.verify import VerificationResult, verify_directory
from planb.statecopy.push import ssh, ssh_error

log = logging.getLogger(__name__)

REMOTE_DIR = "/var/lib/planb/breakglass"
HOSTS_DIR = "hosts"
CONFLICTS_DIR = "conflicts"
_AUDIT_NAMES = ("audit.log", AUDIT_HEAD_NAME)


def host_journals_root(state_dir: Path) -> Path:
    """``<state>/journals/hosts``: one folder per fallback host."""
    return journals_dir(state_dir) / HOSTS_DIR


def host_key_path(state_dir: Path, host: str) -> Path:
    """Where deploy puts the public half of ``host``'s break-glass signing key."""
    return state_dir / "keys" / "hosts" / f"{host}.pub"


@dataclass(frozen=True)
class Fetched:
    """What one host's fetch brought: new journals, audit lines, conflicts, or why not."""

    host: str
    new_journals: list[str] = field(default_factory=list)
    audit_entries: int = 0
    conflicts: list[str] = field(default_factory=list)
    error: str = ""
    recent: list[AuditEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and not self.conflicts


def _remote_tar(host: InventoryHost, timeout: float) -> bytes:
    command = (f"cd {REMOTE_DIR} 2>/dev/null || exit 0; set --; "
               "for f in journals audit.log audit-head.json; do "
               '[ -e "$f" ] && set -- "$@" "$f"; done; [ $# -eq 0 ] || tar -cf - "$@"')
    proc = ssh(host, command, timeout=timeout)
    if proc.returncode != 0:
        raise PlanbError(ssh_error(host, proc))
    return proc.stdout


def _unpack(data: bytes) -> dict[str, bytes]:
    """The break-glass files by their local name under the host folder."""
    found: dict[str, bytes] = {}
    if not data:
        return found
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name.removeprefix("./")
            extracted = tar.extractfile(member)
            assert extracted is not None
            body = extracted.read()
            if name.startswith("journals/"):
                base = name.removeprefix("journals/")
                if "/" not in base and (base == HEAD_NAME or parse_filename(base)):
                    found[base] = body
            elif name in _AUDIT_NAMES:
                found[f"failover/{name}"] = body
    return found


def merge(folder: Path, files: dict[str, bytes]) -> tuple[list[str], list[str]]:
    """Add what is new to ``folder``; ``(new journal files, conflicts)``.

    A journal already fetched is kept as it is; the head and a grown audit log move
    forward; anything else that differs is kept aside under ``conflicts/``.
    """
    new: list[str] = []
    conflicts: list[str] = []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    audit = folder / "failover" / "audit.log"
    old_audit = audit.read_bytes() if audit.exists() else b""
    audit_grew = files.get("failover/audit.log", old_audit).startswith(old_audit)
    for name, body in sorted(files.items()):
        path = folder / name
        if path.exists() and path.read_bytes() == body:
            continue
        moves = name == HEAD_NAME or (name.startswith("failover/") and audit_grew)
        if path.exists() and not moves:
            aside = folder / CONFLICTS_DIR / stamp / name
            aside.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(aside, body, 0o600)
            conflicts.append(f"{name}: the host's copy differs from the one fetched before "
                             f"(kept the earlier one; the host's is in {aside})")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, body, 0o644)
        if parse_filename(name) is not None and name.endswith(".json"):
            new.append(name)
    return new, conflicts


def fetch(site: SiteConfig, *, hosts: list[InventoryHost] | None = None,
          timeout: float = 60, recent: int = 10) -> list[Fetched]:
    """Fetch every fallback messaging host's break-glass journals and audit lines."""
    results = []
    known = read_known_hosts(known_hosts_path(site))
    for host in hosts_in(site, FALLBACK_MESSAGING, load_hosts(site) if hosts is None else hosts):
        folder = host_journals_root(site.state_dir) / host.name
        if host.uses_ssh and not known.get(host.key_target.entry):
            results.append(Fetched(host.name, error="no SSH host key recorded for it in the "
                                   "site's known_hosts ('planb hosts trust')"))
            continue
        try:
            files = _unpack(_remote_tar(host, timeout))
        except (PlanbError, tarfile.TarError) as exc:
            why = exc.message if isinstance(exc, PlanbError) else f"unreadable: {exc}"
            log.warning("break-glass records of %s not fetched: %s", host.name, why)
            results.append(Fetched(host.name, error=why))
            continue
        if not files and not folder.exists():
            results.append(Fetched(host.name))
            continue
        new, conflicts = merge(folder, files)
        entries = AuditLog(folder).entries()
        results.append(Fetched(host.name, new, len(entries), conflicts,
                               recent=entries[-recent:] if recent else []))
        if new:
            log.info("fetched %d break-glass journal(s) from %s", len(new), host.name)
    return results


@dataclass(frozen=True)
class HostChain:
    """One host's chain verified with its own key, and its audit log."""

    host: str
    result: VerificationResult | None
    audit: AuditVerdict | None
    problem: str | None = None
    fingerprint: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and (self.result is None or self.result.failure is None) \
            and (self.audit is None or self.audit.ok)

    @property
    def failure(self) -> str | None:
        if self.problem:
            return self.problem
        if self.result is not None and self.result.failure is not None:
            return str(self.result.failure)
        if self.audit is not None and self.audit.problem:
            return f"audit log: {self.audit.problem}"
        return None


def verify_hosts(state_dir: Path) -> list[HostChain]:
    """Each fetched host chain, trusting only ``keys/hosts/<host>.pub``."""
    root = host_journals_root(state_dir)
    if not root.is_dir():
        return []
    chains = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        host = folder.name
        key_path = host_key_path(state_dir, host)
        if not key_path.is_file():
            chains.append(HostChain(host, None, None, f"no public key for {host}'s "
                                    f"break-glass journals ({key_path}): 'planb deploy' "
                                    "copies it there"))
            continue
        try:
            key = load_public_key(key_path)
        except PlanbError as exc:
            chains.append(HostChain(host, None, None, exc.message))
            continue
        fp = fingerprint(key)
        journals = [p for p in folder.iterdir() if parse_filename(p.name)]
        result = verify_directory(folder, Trust(roots={fp: key})) if journals else None
        keys = dict(result.keys) if result is not None and result.keys else {fp: key}
        audit = verify_audit(folder, keys) if (folder / "failover").is_dir() else None
        chains.append(HostChain(host, result, audit, None, fp))
    return chains
