"""The site's SSH host keys: ``<site>/known_hosts``, recorded on first contact, then enforced.

``planb init`` cannot reach the hosts, so their keys are recorded the first time planb
is told to trust them (trust on first use): ``planb hosts trust`` or ``planb deploy
--trust-new-hosts`` run ``ssh-keyscan`` and append what they find, printing each
key's SHA256 fingerprint so it can be compared with the host's console
(``ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub``). From then on every SSH
connection planb makes (Ansible, the ``planb verify`` checks, the admin API tunnel)
runs with :func:`ssh_options`: ``StrictHostKeyChecking=yes`` against that file only.
A key that changed is never replaced silently: ``planb hosts trust --replace HOST``.

``planb lab up`` records its hosts' keys the same way (they are re-created with the
hosts), so the lab tests the production path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from planb.commands import run_command
from planb.config import SiteConfig
from planb.errors import PlanbError
from planb.files import write_atomic

log = logging.getLogger(__name__)

KNOWN_HOSTS = "known_hosts"
TRUST_HINT = ("run 'planb hosts trust' (or 'planb deploy --trust-new-hosts') and compare "
              "the fingerprints it prints with each host's console "
              "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)")
#: What ssh (or Ansible, testinfra, quoting it) says when a host key does not match.
_REFUSALS = re.compile(r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed"
                       r"|No \S+ host key is known for|host key for \S+ has changed")

Key = tuple[str, str]  # (key type, base64 blob)


class HostKeyError(PlanbError):
    """An SSH host key is missing from the site's known_hosts or does not match it."""


@dataclass(frozen=True)
class KeyTarget:
    """One host to trust: its inventory name and how ssh names it (address, port)."""

    name: str
    address: str
    port: int | None = None

    @property
    def entry(self) -> str:
        """The host as known_hosts names it: ``addr``, or ``[addr]:port`` off port 22."""
        if self.port in (None, 22):
            return self.address
        return f"[{self.address}]:{self.port}"


def known_hosts_path(site: SiteConfig) -> Path:
    """``<site folder>/known_hosts``: the only host keys planb's SSH connections accept."""
    return site.base_dir / KNOWN_HOSTS


def ssh_options(known_hosts: Path) -> list[str]:
    """ssh options that accept only the keys recorded in ``known_hosts`` (never add one)."""
    return ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null"]


def fingerprint(key: Key) -> str:
    """``SHA256:...`` as ssh-keygen -l prints it."""
    try:
        blob = base64.b64decode(key[1], validate=True)
    except (binascii.Error, ValueError):
        return "SHA256:(unreadable key)"
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_known_hosts(text: str) -> dict[str, set[Key]]:
    """Host name -> its keys, from known_hosts text (comments, markers, hashed names skipped)."""
    found: dict[str, set[Key]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith(("#", "@", "|")):
            continue
        for name in fields[0].split(","):
            found.setdefault(name, set()).add((fields[1], fields[2]))
    return found


def read_known_hosts(path: Path) -> dict[str, set[Key]]:
    """The recorded keys; an empty mapping when the file does not exist yet."""
    try:
        return parse_known_hosts(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def untrusted(path: Path, targets: Iterable[KeyTarget]) -> list[KeyTarget]:
    """The targets with no key recorded in ``path`` (no network)."""
    known = read_known_hosts(path)
    return [t for t in targets if not known.get(t.entry)]


def require_trusted(path: Path, targets: Iterable[KeyTarget]) -> None:
    """Raise :class:`HostKeyError` naming the hosts with no recorded key, and the fix."""
    missing = untrusted(path, targets)
    if missing:
        hosts = ", ".join(f"{t.name} ({t.entry})" for t in missing)
        raise HostKeyError(f"no SSH host key recorded in {path} for {hosts}: planb checks "
                           "SSH host keys and connects only to hosts whose key it knows",
                           hint=TRUST_HINT)


def changed_key_error(host: str, address: str, path: Path) -> HostKeyError:
    """The error for a host whose key does not match the recorded one."""
    return HostKeyError(
        f"the SSH host key of {host} ({address}) does not match the one recorded in {path}: "
        "planb did not connect (someone may be intercepting the connection, or the host "
        "was reinstalled or its key changed)",
        hint=f"if the change is expected, check the new fingerprint on {host}'s console "
             f"(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run "
             f"'planb hosts trust --replace {host}'; otherwise do not go on")


def refusal_error(target: KeyTarget, path: Path) -> HostKeyError:
    """The clear error for an SSH connection to ``target`` that ssh refused over its key:
    no key recorded yet, or a key that does not match."""
    try:
        require_trusted(path, [target])
    except HostKeyError as exc:
        return exc
    return changed_key_error(target.name, target.entry, path)


def is_key_refusal(text: str) -> bool:
    """Whether ssh's (or a tool quoting it) output says a host key was refused."""
    return bool(_REFUSALS.search(text))


def parse_keyscan(text: str) -> set[Key]:
    """The keys in ``ssh-keyscan`` output (its ``#`` comment lines skipped)."""
    return {key for keys in parse_known_hosts(text).values() for key in keys}


def keyscan(target: KeyTarget, timeout: int = 5) -> set[Key]:
    """The host keys ``target`` offers now (ssh-keyscan); empty when it does not answer."""
    argv = ["ssh-keyscan", "-T", str(timeout)]
    if target.port not in (None, 22):
        argv += ["-p", str(target.port)]
    proc = run_command([*argv, target.address], check=False, timeout=timeout * 4 + 5,
                       what=f"ssh-keyscan {target.address}")
    return parse_keyscan(proc.stdout)


@dataclass(frozen=True)
class TrustResult:
    """What trusting one host did: ``recorded`` (new), ``unchanged``, ``replaced``,
    ``changed`` (refused: the recorded key differs) or ``unreachable``."""

    target: KeyTarget
    outcome: str
    keys: tuple[Key, ...] = ()

    @property
    def fingerprints(self) -> list[str]:
        return [f"{kind} {fingerprint((kind, blob))}" for kind, blob in self.keys]


def _compare(recorded: set[Key], offered: set[Key]) -> str:
    """``unchanged`` when every recorded key type is offered with the same key."""
    offered_by_type = dict(offered)
    same = all(offered_by_type.get(kind) == blob for kind, blob in recorded)
    return "unchanged" if same and recorded & offered else "changed"


def trust(path: Path, targets: Iterable[KeyTarget], *, replace: bool = False,
          scan: Callable[[KeyTarget], set[Key]] = keyscan) -> list[TrustResult]:
    """Record the keys of ``targets`` not known yet; with ``replace``, also replace keys
    that changed. Recorded keys that differ are otherwise left and reported ``changed``."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    known = parse_known_hosts(text)
    results: list[TrustResult] = []
    drop: set[str] = set()
    add: list[str] = []
    for target in targets:
        offered = scan(target)
        if not offered:
            results.append(TrustResult(target, "unreachable"))
            continue
        keys = tuple(sorted(offered))
        recorded = known.get(target.entry, set())
        if not recorded:
            outcome = "recorded"
        else:
            outcome = _compare(recorded, offered)
            if outcome == "changed" and replace:
                outcome = "replaced"
                drop.add(target.entry)
        results.append(TrustResult(target, outcome, keys))
        if outcome in ("recorded", "replaced"):
            add += [f"{target.entry} {kind} {blob}" for kind, blob in keys]
            known[target.entry] = set(keys)
    if add or drop:
        kept = [line for line in text.splitlines()
                if not (line.split() and set(line.split()[0].split(",")) & drop)]
        write_atomic(path, "\n".join([*kept, *add]) + "\n", 0o644)
        log.info("recorded SSH host keys in %s: %s", path,
                 ", ".join(r.target.name for r in results if r.outcome in ("recorded",
                                                                           "replaced")))
    return results

