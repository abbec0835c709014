"""The letters' input: code holders from the site's fallback directory, codes from its key.

The controller binds to the fallback directory as the sync does
(:func:`planb.directory.fallback_endpoint.fallback_endpoint`), reads the agents holding
a code (:mod:`.holders`), and derives each code from the site's enrolment key
(``<state_dir>/keys/enrolment.key``, made by the first sync that issued codes). The key
is only read here, never created: a new key would print codes that match nothing.

Before anything is written, the first letter's code is checked against the hash the
directory keeps for it (one scrypt), so a key restored from the wrong backup, or another
site's state folder, fails loudly instead of printing thousands of dead codes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ldap3 import BASE, Connection

from planb.config import SiteConfig
from planb.directory.fallback_endpoint import fallback_endpoint
from planb.directory.fallback_ldap import Layout
from planb.enrolment.codes import Letter, letters_for
from planb.enrolment.holders import CODE_ATTRIBUTE, Scan, read_holders, select
from planb.enrolment_code import KEY_BYTES, KEY_PATH, verify_code
from planb.errors import PlanbError, UsageError

log = logging.getLogger(__name__)


class KeyMismatch(PlanbError):
    """The enrolment key does not derive the codes the directory holds."""


@dataclass
class Batch:
    """The letters asked for, and what the directory said about the others."""

    letters: list[Letter]
    scan: Scan
    missing: list[str] = field(default_factory=list)
    checked: bool = False


def read_key(state_dir: Path) -> bytes:
    """The site's enrolment key; UsageError when there is none or it is not one."""
    path = state_dir / KEY_PATH
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no enrolment key at {path}",
                         hint="codes are issued by 'planb sync apply' on a site with "
                              "enrolment enabled, which creates the key; if it was lost, "
                              "restore it from a backup of the state folder") from None
    if len(key) != KEY_BYTES:
        raise UsageError(f"{path} is not an enrolment key ({len(key)} bytes)",
                         hint="restore it from a backup of the state folder")
    return key


def stored_hash(conn: Connection, dn: str) -> str | None:
    """The code hash on ``dn``, or None when the account may not read it."""
    if not conn.search(dn, "(objectClass=planbAgent)", BASE, attributes=[CODE_ATTRIBUTE]):
        return None
    for item in conn.response or ():
        values = (item.get("attributes") or {}).get(CODE_ATTRIBUTE) or []
        value = values[0] if isinstance(values, list | tuple) and values else values
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        return str(value) if value else None
    return None


def check_key(conn: Connection, layout: Layout, letter: Letter) -> bool:
    """Whether ``letter``'s code verifies against the directory's hash (KeyMismatch if
    not); False when the hash cannot be read (nothing to compare)."""
    stored = stored_hash(conn, layout.person_dn(letter.login))
    if stored is None:
        log.info("the code hash of %s is not readable: the key is not checked", letter.login)
        return False
    if not verify_code(letter.code, stored):
        raise KeyMismatch(
            f"the enrolment key in this state folder does not give the code the fallback "
            f"directory holds for {letter.login}: nothing was written",
            hint="use the state folder of the site that issued the codes (its "
                 "keys/enrolment.key); if that key is lost, every agent needs a new code: "
                 "planb enrol reissue LOGIN...")
    return True


def read_batch(site: SiteConfig, *, departments: Sequence[str] = (),
               logins: Sequence[str] = (), now: datetime | None = None) -> Batch:
    """The letters of the agents asked for (all with a live code by default)."""
    key = read_key(site.state_dir)
    layout = Layout(site.fallback.ldap_suffix)
    conn = fallback_endpoint(site).connect(read_only=True)
    try:
        scan = read_holders(conn, layout, max_failures=site.enrolment.max_failures, now=now)
        chosen, missing = select(scan.live, departments=departments, logins=logins)
        letters = letters_for(chosen, key)
        checked = check_key(conn, layout, letters[0]) if letters else False
    finally:
        conn.unbind()
    return Batch(letters=letters, scan=scan, missing=missing, checked=checked)
