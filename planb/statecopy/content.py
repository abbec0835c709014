"""What the copy of the controller's state holds, and which parts of it are secret.

Files are named in the copy by where they live in the site, so a restore can put each
back relative to the restored ``planb.yml``:

- ``site/<path>``: the site folder (``planb.yml``, ``known_hosts``, ``locale/``,
  ``runbooks/``, and the files planb.yml names with a relative path: the primary's
  bind password file and CA, a CSV source);
- ``state/<path>``: the state dir (journals, host journals, the audit log, keys, pki,
  scenarios, templates...), without ``runs/`` (Ansible's artifacts, large and
  rebuilt by the next run), lock files and the copy key itself;
- ``inventory/<path>``: the inventory folder.

A file is **public** only when it is known to hold nothing secret (journals and their
signatures, the audit log, public keys, certificates, the configuration, the
inventory's files with no secret-looking variable). Everything else is **secret**
(private keys, the vault, tokens, the lab's SSH key, anything unknown) and only ever
leaves the controller encrypted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from planb.config import SiteConfig

log = logging.getLogger(__name__)

#: The copy key in the state dir: never copied (its wrapped form is).
COPY_KEY = PurePosixPath("keys/copy.key")
#: The copy key wrapped by the crisis cell's passphrase (copied: useless without it).
WRAPPED_KEY = PurePosixPath("keys/copy-key.json")
#: State-dir entries never copied: Ansible's run artifacts, the copy key, and a lab's
#: machines (lab/hosts/..., their disks are gigabytes; lab.json says which machines
#: this controller runs: a rebuilt one must not think it owns them). Folders under
#: drills/ are a drill's scratch (a controller rebuilt there, for one). The lab's own
#: small files (its SSH key, which the lab inventory names; the primary's passwords)
#: are kept, as secrets.
_STATE_SKIP = {"runs", "lab/lab.json", str(COPY_KEY)}
_STATE_SKIP_UNDER = ("drills/", "lab/")
#: A file larger than this is left out of the copy (the copy is pushed after every
#: command; the lab's generated agents and bench data are large and rebuilt anyway).
MAX_FILE_BYTES = 8 * 2**20
#: The copy stops growing past this (the newest journals are never the ones dropped:
#: journals, audit log, keys and configuration come first).
MAX_TOTAL_BYTES = 32 * 2**20
_PUBLIC_STATE = (
    re.compile(r"^journals/(hosts/[^/]+/)?(head\.json|\d{6,}-[a-z0-9-]+-[0-9a-f]{8}\.(json|sig))$"),
    re.compile(r"^journals/hosts/[^/]+/(failover/)?(audit\.log|audit-head\.json)$"),
    re.compile(r"^failover/(audit\.log|audit-head\.json|state\.json|sync-frozen)$"),
    re.compile(r"^keys/(retired/|hosts/)?[^/]+\.pub$"),
    re.compile(r"^keys/copy-key\.json$"),
    re.compile(r"^pki/[^/]+\.crt$"),
    re.compile(r"^(scenarios|templates|runbooks)/"),
)
#: The site folder's own files and folders in the copy (all public).
_SITE_FILES = ("planb.yml", "known_hosts")
_SITE_FOLDERS = ("locale", "runbooks")
_SECRET_KEY = re.compile(r"(?im)^\s*-?\s*[\"']?([A-Za-z0-9_]*(vault_|password|passwd|secret|"
                         r"token|passphrase|_pass\b|private_key\b)[A-Za-z0-9_]*)[\"']?\s*[:=]")


@dataclass(frozen=True)
class Entry:
    """One file of the copy: its name in the copy, where it is, whether it is secret."""

    name: str
    path: Path
    secret: bool

    def read(self) -> bytes:
        return self.path.read_bytes()

    @property
    def mode(self) -> int:
        return self.path.stat().st_mode & 0o777


def _walk(root: Path, skip: frozenset[str] = frozenset(),
          skip_under: tuple[str, ...] = ()) -> list[tuple[str, Path]]:
    """Regular files under ``root`` as (posix relative path, path): no dot files, no
    lock files, nothing under a ``skip`` entry or in a folder under ``skip_under``,
    symbolic links not followed."""
    found: list[tuple[str, Path]] = []
    if not root.is_dir():
        return found
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        rel_dir = base.relative_to(root).as_posix()
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and _join(rel_dir, d) not in skip
                         and not _join(rel_dir, d).startswith(skip_under))
        for name in sorted(files):
            rel = _join(rel_dir, name)
            path = base / name
            if name.startswith(".") or name.endswith(".lock") or rel in skip \
                    or path.is_symlink() or not path.is_file():
                continue
            found.append((rel, path))
    return found


def _join(folder: str, name: str) -> str:
    return name if folder in ("", ".") else f"{folder}/{name}"


def _inventory_secret(path: Path) -> bool:
    """An inventory file is secret when it is a vault or names a secret-looking variable."""
    if "vault" in path.name.lower():
        return True
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return True
    return text.startswith("$ANSIBLE_VAULT") or bool(_SECRET_KEY.search(text))


def _referenced(site: SiteConfig) -> list[tuple[Path, bool]]:
    """Files planb.yml names (path, secret): the primary's password file, CA, CSV."""
    found: list[tuple[Path, bool]] = []
    ldap, csv = site.primary.ldap, site.primary.csv
    if ldap is not None and ldap.bind_password_file is not None:
        found.append((ldap.bind_password_file, True))
    if ldap is not None and ldap.ca_file is not None:
        found.append((ldap.ca_file, False))
    if csv is not None:
        found.append((csv.path, True))  # agents' personal data
    return found


def site_entries(site: SiteConfig) -> list[Entry]:
    """Every file of the site's copy, in a stable order, within the size limits: a file
    over :data:`MAX_FILE_BYTES` is left out, and once :data:`MAX_TOTAL_BYTES` are taken
    the rest (secrets under lab/ and the like, after the journals, audit log, keys and
    configuration) is left out, each logged."""
    entries = _all_entries(site)
    chosen: list[Entry] = []
    total = 0
    for entry in sorted(entries, key=_priority):
        try:
            size = entry.path.stat().st_size
        except OSError:
            continue
        if size > MAX_FILE_BYTES or total + size > MAX_TOTAL_BYTES:
            log.warning("%s (%.1f MiB) left out of the copy of the controller's state: "
                        "over %s", entry.path, size / 2**20,
                        f"{MAX_FILE_BYTES // 2**20} MiB a file" if size > MAX_FILE_BYTES
                        else f"{MAX_TOTAL_BYTES // 2**20} MiB in all")
            continue
        total += size
        chosen.append(entry)
    return sorted(chosen, key=lambda e: e.name)


def _priority(entry: Entry) -> tuple[int, str]:
    """What the copy keeps first: the record and the keys, then the rest."""
    first = ("state/journals/", "state/failover/", "state/keys/", "site/", "inventory/",
             "state/pki/")
    return (0 if entry.name.startswith(first) else 1, entry.name)


def _all_entries(site: SiteConfig) -> list[Entry]:
    base, state, inventory = site.base_dir.resolve(), site.state_dir, site.inventory_dir
    entries: dict[str, Entry] = {}
    for rel, path in _walk(state, frozenset(_STATE_SKIP), _STATE_SKIP_UNDER):
        secret = not any(p.match(rel) for p in _PUBLIC_STATE)
        entries[f"state/{rel}"] = Entry(f"state/{rel}", path, secret)
    for rel, path in _walk(inventory):
        entries[f"inventory/{rel}"] = Entry(f"inventory/{rel}", path, _inventory_secret(path))
    inside = {state, inventory}
    # Only what the site folder is known to hold: it may sit in a folder with much else.
    found = [(name, base / name) for name in _SITE_FILES if (base / name).is_file()]
    for folder in _SITE_FOLDERS:
        found += [(f"{folder}/{rel}", path) for rel, path in _walk(base / folder)]
    for rel, path in found:
        if any(path.is_relative_to(folder) for folder in inside):
            continue
        entries[f"site/{rel}"] = Entry(f"site/{rel}", path, False)
    for named, secret in _referenced(site):
        path = named if named.is_absolute() else (base / named)
        path = Path(os.path.normpath(path))
        if not path.is_file():
            continue
        if not path.is_relative_to(base):
            log.warning("%s is outside the site folder %s: not in the copy of the "
                        "controller's state (keep it elsewhere)", path, base)
            continue
        if any(path.is_relative_to(folder) for folder in inside):
            continue
        rel = path.relative_to(base).as_posix()
        entries[f"site/{rel}"] = Entry(f"site/{rel}", path, secret)
    return [entries[name] for name in sorted(entries)]


def fingerprint_state(entries: list[Entry]) -> tuple[tuple[str, int, int], ...]:
    """A cheap picture of the files (name, size, mtime): what changed between two."""
    result = []
    for entry in entries:
        try:
            info = entry.path.stat()
        except OSError:
            continue
        result.append((entry.name, info.st_size, info.st_mtime_ns))
    return tuple(result)


def content_digest(hashes: dict[str, str]) -> str:
    """One SHA-256 over every file's name and SHA-256: equal digests, equal copies."""
    joined = "".join(f"{name}\0{hashes[name]}\n" for name in sorted(hashes))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()
