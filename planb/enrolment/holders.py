"""Which agents hold a live enrolment code: read from the fallback directory.

The sync writes, on each agent's entry (``planbAgent``), ``planbEnrolmentCode`` (the
code's scrypt hash: present means a code was issued and not spent),
``planbEnrolmentSerial`` (which code: :func:`planb.enrolment_code.derive_code`'s
serial), ``planbEnrolmentExpires`` and ``planbEnrolmentFailures``. The agent's name,
department, mail and mobile are the fields the sync copied from the primary
(:data:`planb.directory.fallback_ldap.FIELD_ATTRIBUTES`).

Only the code's presence is asked for (a search filter), never its hash. A code is
*live* when it is present, not expired, not locked by ``max_failures`` wrong tries, and
its agent is not disabled; the others are counted, so the command can say what to do
(``planb sync`` renews expired codes, ``planb enrol reissue`` unlocks a locked one).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ldap3 import Connection

from planb.directory.fallback_ldap import FIELD_ATTRIBUTES, Layout, locked_for_good
from planb.directory.ldap_source import paged_entries

log = logging.getLogger(__name__)

CODE_ATTRIBUTE = "planbEnrolmentCode"
SERIAL_ATTRIBUTE = "planbEnrolmentSerial"
EXPIRES_ATTRIBUTE = "planbEnrolmentExpires"
FAILURES_ATTRIBUTE = "planbEnrolmentFailures"
#: Agents whose entry holds a code (the hash itself is never read).
HOLDER_FILTER = f"(&(objectClass=planbAgent)({CODE_ATTRIBUTE}=*))"
READ_ATTRIBUTES = sorted({
    "planbSourceId", "uid", "cn", "displayName", "givenName", "sn",
    FIELD_ATTRIBUTES["department"], FIELD_ATTRIBUTES["mail"], FIELD_ATTRIBUTES["mobile"],
    SERIAL_ATTRIBUTE, EXPIRES_ATTRIBUTE, FAILURES_ATTRIBUTE, "pwdAccountLockedTime",
})
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Holder:
    """An agent whose entry holds an enrolment code (and what a letter shows of them)."""

    source_id: str
    login: str
    name: str
    department: str = ""
    mail: str = ""
    mobile: str = ""
    serial: int = 0
    expires: datetime | None = None
    failures: int = 0
    enabled: bool = True


@dataclass
class Scan:
    """The agents with a live code, and the logins of those whose code is not live."""

    live: list[Holder] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def _first(attrs: Mapping[str, Any], name: str) -> str:
    value = attrs.get(name.casefold())
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return "" if value is None else str(value).strip()


def parse_generalized_time(text: str) -> datetime | None:
    """``20271130052000Z`` (GeneralizedTime, UTC) as an aware datetime; None if not one."""
    text = text.strip()
    if not text:
        return None
    for pattern in ("%Y%m%d%H%M%SZ", "%Y%m%d%H%MZ", "%Y%m%d%H%M%S.%fZ"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:  # ldap3 may hand back a datetime's text form
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def holder_from_ldap(attributes: Mapping[str, Any]) -> Holder | None:
    """A Holder from an entry's attributes; None without a source id, login or serial."""
    attrs = {k.casefold(): v for k, v in attributes.items()}
    source_id, login = _first(attrs, "planbSourceId"), _first(attrs, "uid")
    serial = _integer(_first(attrs, SERIAL_ATTRIBUTE))
    if not source_id or not login or serial is None or serial < 0:
        return None
    given, surname = _first(attrs, "givenName"), _first(attrs, "sn")
    name = (_first(attrs, "displayName") or _first(attrs, "cn")
            or " ".join(p for p in (given, surname if surname != "-" else "") if p) or login)
    return Holder(
        source_id=source_id, login=login, name=name,
        department=_first(attrs, FIELD_ATTRIBUTES["department"]),
        mail=_first(attrs, FIELD_ATTRIBUTES["mail"]),
        mobile=_first(attrs, FIELD_ATTRIBUTES["mobile"]),
        serial=serial, expires=parse_generalized_time(_first(attrs, EXPIRES_ATTRIBUTE)),
        failures=_integer(_first(attrs, FAILURES_ATTRIBUTE)) or 0,
        enabled=not locked_for_good(_first(attrs, "pwdAccountLockedTime")),
    )


def classify(entries: Iterable[Mapping[str, Any]], *, now: datetime,
             max_failures: int) -> Scan:
    """Sort code-holding entries into live codes and the rest (by login, then name)."""
    scan = Scan()
    for attrs in entries:
        holder = holder_from_ldap(attrs)
        if holder is None:
            scan.unreadable.append(_first({k.casefold(): v for k, v in attrs.items()}, "uid"))
        elif not holder.enabled:
            scan.disabled.append(holder.login)
        elif holder.expires is not None and holder.expires <= now:
            scan.expired.append(holder.login)
        elif holder.failures >= max_failures:
            scan.locked.append(holder.login)
        else:
            scan.live.append(holder)
    scan.live.sort(key=lambda h: (h.login.casefold(), h.login))
    for logins in (scan.expired, scan.locked, scan.disabled, scan.unreadable):
        logins.sort()
    return scan


def read_holders(conn: Connection, layout: Layout, *, max_failures: int,
                 now: datetime | None = None) -> Scan:
    """Every agent of the fallback directory whose entry holds an enrolment code."""
    entries = (attrs for _, attrs in paged_entries(
        conn, layout.people, HOLDER_FILTER, READ_ATTRIBUTES, PAGE_SIZE,
        "the fallback directory"))
    scan = classify(entries, now=now or datetime.now(UTC), max_failures=max_failures)
    log.info("the fallback directory: %d live code(s), %d expired, %d locked, %d disabled",
             len(scan.live), len(scan.expired), len(scan.locked), len(scan.disabled))
    return scan


def select(holders: Sequence[Holder], *, departments: Sequence[str] = (),
           logins: Sequence[str] = ()) -> tuple[list[Holder], list[str]]:
    """The holders in ``departments`` (all when empty) and with ``logins`` (all when
    empty), and the asked logins that hold no live code."""
    wanted_departments = {d.casefold() for d in departments}
    wanted_logins = {login.casefold() for login in logins}
    chosen = [h for h in holders
              if (not wanted_departments or h.department.casefold() in wanted_departments)
              and (not wanted_logins or h.login.casefold() in wanted_logins)]
    found = {h.login.casefold() for h in chosen}
    missing = [login for login in logins if login.casefold() not in found]
    return chosen, missing
