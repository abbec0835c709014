"""Rebuild a controller from a host's copy: fetch it, check it, write a working site folder.

On a fresh machine with planb installed, nothing of the site is known yet, not even the
host's SSH key. :func:`restore` records the key the host offers (or checks it against
``host_fingerprint`` / a given ``known_hosts``), fetches the copy as root with the
given SSH key, opens it with the crisis cell's passphrase, and then checks the host's
key against the ``known_hosts`` inside the copy (authenticated by the passphrase):
a host that is not the one the controller pushed to is refused.

Everything is written into a temporary folder next to ``into``, verified there (the
journals' chain and signatures with the site's key, the audit log, each host chain
with its host key) and only then moved into place: a wrong passphrase, an altered copy
or a broken chain leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from planb.config import DEFAULT_CONFIG_NAME, load_config
from planb.errors import PlanbError, UsageError
from planb.files import write_atomic
from planb.hostkeys import KeyTarget, fingerprint, keyscan, parse_known_hosts, ssh_options
from planb.mode import verify_audit
from planb.reports.keys import KeyPaths
from planb.reports.store import journals_dir
from planb.reports.trust import resolve_trust
from planb.reports.verify import verify_directory
from planb.statecopy.archive import CopyError, OpenedCopy, open_copy
from planb.statecopy.content import COPY_KEY
from planb.statecopy.hostjournals import verify_hosts
from planb.statecopy.push import REMOTE_COPY

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Restored:
    """The rebuilt site and what was checked in it."""

    config: Path
    site: str
    copy_created_at: str
    controller: str
    files: int
    secrets: bool
    journals: int
    head_sha256: str | None
    audit_entries: int
    host_chains: dict[str, int]
    seconds: float
    notes: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {"config": str(self.config), "site": self.site,
                "copy_created_at": self.copy_created_at, "controller": self.controller,
                "files": self.files, "secrets": self.secrets, "journals": self.journals,
                "head_sha256": self.head_sha256, "audit_entries": self.audit_entries,
                "host_chains": self.host_chains, "seconds": round(self.seconds, 3),
                "notes": list(self.notes)}


def fetch_copy(address: str, *, user: str = "root", key_file: Path | None = None,
               port: int | None = None, known_hosts: Path | None = None,
               host_fingerprint: str | None = None, timeout: float = 300
               ) -> tuple[bytes, set[tuple[str, str]]]:
    """The copy's bytes from ``address``, and the host keys it was reached with."""
    with tempfile.TemporaryDirectory(prefix="planb-restore-") as tmp:
        if known_hosts is None:
            offered = keyscan(KeyTarget(address, address, port))
            if not offered:
                raise PlanbError(f"{address} does not answer on SSH (port {port or 22})")
            if host_fingerprint is not None:
                prints = {fingerprint(k) for k in offered}
                if host_fingerprint.strip() not in prints:
                    raise PlanbError(f"{address} offers SSH host key(s) {', '.join(sorted(prints))}"
                                     f", not {host_fingerprint}: not connected",
                                     hint="check the fingerprint on the host's console "
                                     "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)")
            entry = KeyTarget(address, address, port).entry
            known_hosts = Path(tmp) / "known_hosts"
            known_hosts.write_text("".join(f"{entry} {kind} {blob}\n" for kind, blob in offered))
        else:
            offered = {k for keys in parse_known_hosts(known_hosts.read_text()).values()
                       for k in keys}
        argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                *ssh_options(known_hosts)]
        if key_file is not None:
            argv += ["-i", str(key_file), "-o", "IdentitiesOnly=yes"]
        if port:
            argv += ["-p", str(port)]
        argv += [f"{user}@{address}", f"cat {REMOTE_COPY}"]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PlanbError(f"{address}: the copy did not arrive within {timeout:g} s") from None
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PlanbError(f"cannot fetch {REMOTE_COPY} from {address}: "
                         f"{why[-1] if why else f'exit {proc.returncode}'}",
                         hint="the host keeps a copy once 'planb controller push' (or any "
                         "planb command that changes the state) reached it; log in as "
                         "root with an administrator's key (--user, --key)")
    return proc.stdout, offered


def restore(address: str, into: Path, *, user: str = "root", key_file: Path | None = None,
            port: int | None = None, passphrase: bytes | None = None,
            public_only: bool = False, known_hosts: Path | None = None,
            host_fingerprint: str | None = None) -> Restored:
    """Fetch the copy from ``address`` and rebuild the site in ``into`` (see module doc)."""
    start = time.monotonic()
    data, offered = fetch_copy(address, user=user, key_file=key_file, port=port,
                               known_hosts=known_hosts, host_fingerprint=host_fingerprint)
    return restore_bytes(data, into, passphrase=passphrase, public_only=public_only,
                         source=(address, port, offered), started=start)


def restore_bytes(data: bytes, into: Path, *, passphrase: bytes | None,
                  public_only: bool = False,
                  source: tuple[str, int | None, set[tuple[str, str]]] | None = None,
                  started: float | None = None) -> Restored:
    """Rebuild the site in ``into`` from a copy's bytes (e.g. ``copy.tar`` taken by hand)."""
    start = started if started is not None else time.monotonic()
    into = into.absolute()
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise UsageError(f"{into} exists and is not empty: restore writes a new site folder",
                         hint="give a new or empty folder (--into DIR)")
    opened = open_copy(data, passphrase, public_only=public_only)
    notes: list[str] = []
    if source is not None:
        notes += _check_source_key(opened, *source)
    if not opened.secrets_included:
        notes.append("the copy was opened without its secrets (no passphrase set on the "
                     "controller, or --public-only): the signing key, the vault and the "
                     "other secrets are not restored")
    into.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{into.name}.restoring-", dir=into.parent))
    try:
        notes += _write(opened, tmp, into)
        result = _verify(tmp, into, opened, notes, start)
        if into.exists():
            into.rmdir()
        tmp.rename(into)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("restored site %s into %s from the copy made %s", result.site, into,
             result.copy_created_at)
    return result


def _check_source_key(opened: OpenedCopy, address: str, port: int | None,
                      offered: set[tuple[str, str]]) -> list[str]:
    known = opened.files.get("site/known_hosts")
    if known is None:
        return [f"the copy has no known_hosts: {address}'s SSH host key could not be "
                "checked against it"]
    recorded = parse_known_hosts(known[0].decode("utf-8", "replace")).get(
        KeyTarget(address, address, port).entry)
    if not recorded:
        return [f"the copy's known_hosts does not name {address}: its SSH host key could "
                "not be checked against it"]
    if not recorded & offered:
        raise CopyError(f"{address} offered an SSH host key that the copy's known_hosts "
                        "does not record for it: not the host the controller pushed to "
                        "(or it was rebuilt): refused, nothing written",
                        hint="check the host's key on its console; restore from another "
                        "host that keeps a copy")
    return []


def _write(opened: OpenedCopy, tmp: Path, into: Path) -> list[str]:
    """Put every file in place under ``tmp`` (laid out as under ``into``)."""
    notes: list[str] = []
    site_files = {n[5:]: v for n, v in opened.files.items() if n.startswith("site/")}
    if DEFAULT_CONFIG_NAME not in site_files:
        raise CopyError(f"the copy has no {DEFAULT_CONFIG_NAME}")
    config_text = site_files[DEFAULT_CONFIG_NAME][0].decode("utf-8")
    write_atomic(tmp / DEFAULT_CONFIG_NAME, config_text)
    site = load_config(tmp / DEFAULT_CONFIG_NAME)
    for name, (body, mode) in site_files.items():
        if name != DEFAULT_CONFIG_NAME:
            _put(tmp / name, body, mode)
    places = {"state": site.paths.state_dir,
              "inventory": site.paths.inventory or Path("inventories") / site.site}
    for part, where in places.items():
        if where.is_absolute():
            raise UsageError(f"planb.yml gives an absolute path for its {part} ({where}): "
                             "restore writes the site inside --into only",
                             hint="make paths.state_dir / paths.inventory relative in "
                             "planb.yml on the controller, push again, then restore")
    old_base = str(opened.manifest.get("base_dir") or "")
    new_base = str(into)
    relocated = 0
    for name, (body, mode) in opened.files.items():
        part, _, rel = name.partition("/")
        if part not in places:
            continue
        if part == "inventory" and old_base and old_base != new_base \
                and old_base.encode() in body:
            body = body.replace(old_base.encode() + b"/", new_base.encode() + b"/")
            relocated += 1
        _put(tmp / places[part] / rel, body, mode)
    if relocated:
        notes.append(f"{relocated} inventory file(s) named paths in the old site folder "
                     f"{old_base}: now {new_base}")
    if opened.copy_key is not None:
        _put(tmp / places["state"] / COPY_KEY, opened.copy_key + b"\n", 0o600)
    keys = tmp / places["state"] / "keys"
    if keys.is_dir():
        os.chmod(keys, 0o700)
    return notes


def _put(path: Path, body: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, body, mode or 0o600)


def _verify(tmp: Path, into: Path, opened: OpenedCopy, notes: list[str],
            start: float) -> Restored:
    """Check the rebuilt site's journals, audit log and host chains (in ``tmp``)."""
    site = load_config(tmp / DEFAULT_CONFIG_NAME)
    state = site.state_dir
    folder = journals_dir(state)
    journals = 0
    head = None
    keys = {}
    if folder.is_dir() and any(p.suffix == ".json" and p.name[:1].isdigit()
                               for p in folder.iterdir()):
        trust = resolve_trust(pins=site.reports.trusted_keys, site=KeyPaths.for_state_dir(state))
        result = verify_directory(folder, trust)
        if result.failure is not None:
            raise CopyError(f"the copy's journals do not verify: {result.failure}",
                            hint="restore from another host's copy; nothing was written")
        journals, head, keys = len(result.journals), result.head_sha256, dict(result.keys)
    audit = verify_audit(state, keys or None)
    if not audit.ok:
        raise CopyError(f"the copy's audit log does not verify: {audit.problem}",
                        hint="restore from another host's copy; nothing was written")
    chains: dict[str, int] = {}
    for chain in verify_hosts(state):
        if chain.problem is not None:  # no host key to check with: said, not refused
            notes.append(f"host {chain.host}'s break-glass journals not checked: "
                         f"{chain.problem}")
            continue
        if chain.failure is not None:
            raise CopyError(f"the copy's journals of host {chain.host} do not verify: "
                            f"{chain.failure}", hint="nothing was written")
        chains[chain.host] = len(chain.result.journals) if chain.result else 0
    manifest = opened.manifest
    return Restored(config=into / DEFAULT_CONFIG_NAME, site=site.site,
                    copy_created_at=str(manifest.get("created_at")),
                    controller=str(manifest.get("controller")), files=len(opened.files),
                    secrets=opened.secrets_included, journals=journals, head_sha256=head,
                    audit_entries=audit.entries, host_chains=chains,
                    seconds=time.monotonic() - start, notes=tuple(notes))
