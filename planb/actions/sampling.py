"""Who a drill probes with: a seeded sample of agents, or the deployed probe accounts.

- In a lab whose agents are provisioned in Matrix (``planb.messaging`` provides the
  Matrix side of the sync), the sample is drawn from the fallback LDAP's *active*
  agents (not disabled: one in a temporary lockout after failed binds counts) with a
  seed, and each agent's password is the lab's derived one
  (:func:`planb.lab.agents.agent_password`).
- Otherwise (a production site, or Matrix users not provisioned yet, or no agent in
  the fallback LDAP yet) the deployed probe accounts
  (``<state_dir>/verify/probe-accounts``) are used. :attr:`Sample.source` and
  :attr:`Sample.why` say which, for the journal.

The seed comes from the run (drill id or incident id) unless one is given, so every
verify round of one drill probes the same agents and a drill can be replayed.
Journals never hold logins: :func:`pseudonym` is an HMAC-SHA256 of the login with a
site key kept in ``<state_dir>/drills/pseudonym-key`` (mode 0600).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from planb.config import SiteConfig
from planb.directory.fallback_endpoint import fallback_endpoint
from planb.directory.fallback_ldap import locked_for_good
from planb.directory.ldap_source import paged_entries
from planb.errors import PlanbError
from planb.lab.agents import agent_password
from planb.messaging.sync_target import target_for
from planb.verify.accounts import default_probe_file, load_probe_accounts

log = logging.getLogger(__name__)

Source = Literal["lab-agents", "probe-accounts"]
PSEUDONYM_KEY = "pseudonym-key"
#: Agents with a login; :func:`active_logins` leaves out the disabled ones.
AGENTS = "(&(objectClass=planbAgent)(uid=*))"


@dataclass(frozen=True)
class Account:
    """One account to probe with; ``dn`` when known (agents read from the LDAP)."""

    login: str
    password: str = field(repr=False)
    dn: str | None = None


@dataclass(frozen=True)
class Sample:
    """The accounts a probe round uses, where they come from, and the seed."""

    source: Source
    why: str
    accounts: tuple[Account, ...]
    seed: int | None = None
    population: int | None = None


def seed_for(run_id: str | None, explicit: int | None = None) -> int:
    """``explicit``, else a seed derived from the run id, else a fresh random one."""
    if explicit is not None:
        return explicit
    if run_id:
        return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:4], "big")
    return secrets.randbits(32)


def draw(logins: list[str], size: int, seed: int) -> list[str]:
    """``size`` logins (all when fewer) chosen with ``seed``; the same input gives the same."""
    ordered = sorted(set(logins))
    return random.Random(seed).sample(ordered, min(size, len(ordered)))


def pseudonym_key(state_dir: Path) -> bytes:
    """The site's pseudonymisation key, made on first use (mode 0600)."""
    path = state_dir / "drills" / PSEUDONYM_KEY
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def pseudonym(key: bytes, login: str) -> str:
    """``agent-`` and 12 hex digits of HMAC-SHA256(key, login): stable per site, not reversible."""
    return "agent-" + hmac.new(key, login.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


def matrix_provisioned(site: SiteConfig) -> bool:
    """Whether the sync provisions agents in Matrix (the site has a Matrix sync target)."""
    try:
        return target_for(site) is not None
    except PlanbError as exc:
        log.info("Matrix target not usable: %s", exc)
        return False


def probe_accounts(site: SiteConfig, why: str) -> Sample:
    """The deployed probe accounts; PlanbError when there are fewer than two."""

    path = default_probe_file(site)
    if not path.exists():
        raise PlanbError(f"no probe accounts at {path}", hint="run 'planb deploy' (it writes them)")
    accounts = tuple(Account(login, password) for login, password in load_probe_accounts(path))
    if len(accounts) < 2:
        raise PlanbError(f"{path} holds {len(accounts)} probe account(s); probes need two")
    return Sample("probe-accounts", why, accounts)


def active_agents(site: SiteConfig) -> dict[str, str]:
    """login -> DN of every active agent in the fallback LDAP (as the sync account reads it)."""

    conn = fallback_endpoint(site).connect(read_only=True)
    try:
        base = f"ou=people,{site.fallback.ldap_suffix}"
        return active_logins(paged_entries(conn, base, AGENTS,
                                           ["uid", "pwdAccountLockedTime"], 1000,
                                           "the fallback directory"))
    finally:
        conn.unbind()


def _first(value: object) -> str:
    """The first value as text ("" when none; ldap3 may hand a lock time as a datetime)."""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def active_logins(entries: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, str]:
    """login -> DN of the entries not disabled by planb (``000001010000Z``); an agent in
    a temporary ppolicy lockout after failed binds is active (it heals by itself)."""
    found: dict[str, str] = {}
    for dn, attributes in entries:
        attrs = {k.casefold(): v for k, v in attributes.items()}
        login = _first(attrs.get("uid"))
        if login and not locked_for_good(_first(attrs.get("pwdaccountlockedtime"))):
            found[login] = dn
    return found


def lab_secret(site: SiteConfig) -> bytes | None:
    path = site.state_dir / "lab" / "agents-secret"
    return path.read_bytes().strip() if path.is_file() else None


def choose(site: SiteConfig, size: int, seed: int, *, source: str = "auto",
           population: dict[str, str] | None = None) -> Sample:
    """The sample for one probe round (see the module docstring for the rule).

    ``population``: the active agents already read (login -> DN), else read now.
    """

    if source == "probe-accounts":
        return probe_accounts(site, "asked for in the scenario")
    secret = lab_secret(site) if site.lab is not None else None
    if source == "auto":
        if site.lab is None or secret is None:
            return probe_accounts(site, "not a lab site: production drills probe with the "
                                  "deployed probe accounts")
        if not matrix_provisioned(site):
            return probe_accounts(site, "agents are not provisioned in Matrix yet "
                                  "(planb.messaging's sync target is not built)")
    elif secret is None:
        raise PlanbError("sampling agents needs the lab's agents secret",
                         hint="only a deployed lab site knows its agents' passwords")
    agents = population if population is not None else active_agents(site)
    if len(agents) < 2:
        if source == "auto":
            return probe_accounts(site, f"the fallback LDAP holds {len(agents)} active "
                                  "agent(s): run 'planb sync apply' first")
        raise PlanbError(f"the fallback LDAP holds {len(agents)} active agent(s)",
                         hint="run 'planb sync apply --yes' first")
    chosen = draw(list(agents), size, seed)
    assert secret is not None
    accounts = tuple(Account(login, agent_password(secret, login), agents[login])
                     for login in chosen)
    return Sample("lab-agents", f"{len(chosen)} of {len(agents)} active agents of the "
                  f"fallback LDAP, seed {seed}", accounts, seed, len(agents))
