"""Which enrolment codes the sync issues, renews and revokes (pure; issue 12 §2).

On each agent's fallback entry (``planbAgent``, schema in the openldap role's
``planb.ldif``) a code lives as ``planbEnrolmentCode`` (its scrypt hash: present
means a live code), ``planbEnrolmentSerial`` (which code, for
:func:`planb.enrolment_code.derive_code`), ``planbEnrolmentExpires`` and
``planbEnrolmentFailures``; ``planbEnrolledAt`` says when the agent last set a
password on the enrolment page. The rules, for an entry the plan leaves active:

- no code and never enrolled: a code is *issued* (serial + 1, from 0);
- a code that expired before being used: it is *renewed* the same way;
- enrolled (``planbEnrolledAt``) and no code: nothing (a forgotten password gets a
  new code from ``planb enrol reissue``, :func:`planb.directory.enrolment.reissue_codes`);
- a live code: nothing (a code locked by wrong tries stays locked until reissued).

An entry the plan leaves disabled (a leaver) that holds a code *loses* it (code,
expiry and failures are deleted; the serial stays, so the next code differs).
The plan carries logins and serials, never a code nor its hash: the hashes are
made when the plan is applied (:mod:`planb.directory.enrolment`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from planb.directory.model import Agent

CODE = "planbEnrolmentCode"
SERIAL = "planbEnrolmentSerial"
EXPIRES = "planbEnrolmentExpires"
FAILURES = "planbEnrolmentFailures"
ENROLLED_AT = "planbEnrolledAt"
#: What the sync reads of an entry's enrolment (the code's presence, never its use).
READ_ATTRIBUTES = (CODE, SERIAL, EXPIRES, FAILURES, ENROLLED_AT)
#: What a revocation deletes.
REVOKED_ATTRIBUTES = (CODE, EXPIRES, FAILURES)

NEW = "new"
RENEWED = "renewed"
LEAVER = "leaver"


@dataclass(frozen=True, slots=True)
class CodeState:
    """An entry's enrolment attributes as the fallback holds them (no hash: presence)."""

    has_code: bool = False
    serial: int = 0
    expires: datetime | None = None
    failures: int = 0
    enrolled_at: datetime | None = None

    @property
    def holds_anything(self) -> bool:
        """Whether a revocation has something to delete."""
        return self.has_code or self.expires is not None or self.failures > 0


@dataclass(frozen=True)
class CodeIssue:
    """A code to issue (``reason`` new) or renew (``renewed``): serial ``serial``."""

    id: str
    login: str
    serial: int
    reason: str = NEW


@dataclass(frozen=True)
class CodeRevoke:
    """A leaver's code to delete."""

    id: str
    login: str
    reason: str = LEAVER


def generalized_time(value: datetime) -> str:
    """``value`` as LDAP GeneralizedTime in UTC (``20271130052300Z``)."""
    return value.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def parse_generalized_time(text: str) -> datetime | None:
    """A GeneralizedTime (``YYYYmmddHHMMSS[.f]Z``, as slapd returns it) in UTC; None
    when empty or unreadable (an unreadable expiry counts as expired)."""
    text = text.strip()
    if not text:
        return None
    head = text.rstrip("Zz").split(".", 1)[0].split(",", 1)[0]
    for fmt in ("%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d%H"):
        try:
            return datetime.strptime(head, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _int(value: str) -> int:
    try:
        return max(0, int(value.strip() or "0"))
    except ValueError:
        return 0


def code_state(first: Mapping[str, str]) -> CodeState:
    """A CodeState from an entry's first values (lower-cased attribute names)."""
    expires_text = first.get(EXPIRES.casefold(), "")
    expires = parse_generalized_time(expires_text)
    if expires is None and expires_text:
        expires = datetime.min.replace(tzinfo=UTC)  # unreadable: expired
    return CodeState(
        has_code=bool(first.get(CODE.casefold())), serial=_int(first.get(SERIAL.casefold(), "")),
        expires=expires, failures=_int(first.get(FAILURES.casefold(), "")),
        enrolled_at=parse_generalized_time(first.get(ENROLLED_AT.casefold(), "")))


class EntryView(Protocol):
    """What the planner needs of a fallback entry (a targets.FallbackEntry)."""

    @property
    def id(self) -> str: ...
    @property
    def login(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def codes(self) -> CodeState: ...


def code_changes(adds: Iterable[Agent], entries: Iterable[EntryView],
                 deactivated: Collection[str], reactivated: Collection[str],
                 logins: Mapping[str, str], now: datetime, *, issue: bool = True
                 ) -> tuple[tuple[CodeIssue, ...], tuple[CodeRevoke, ...]]:
    """The codes to issue or renew (only when ``issue``) and to revoke, for the new
    agents ``adds`` and the ``entries`` as the plan leaves them (``deactivated`` and
    ``reactivated`` ids; ``logins``: id -> login of every agent the source gives).
    An active entry the source does not give (kept as it was) is left alone."""
    issues: list[CodeIssue] = []
    revokes: list[CodeRevoke] = []
    items = [(a.id, a.login, a.enabled, CodeState()) for a in adds]
    for entry in entries:
        active = (entry.enabled or entry.id in reactivated) and entry.id not in deactivated
        if not active or entry.id in logins:
            items.append((entry.id, logins.get(entry.id, entry.login), active, entry.codes))
    for agent_id, login, active, state in items:
        if not active:
            if state.holds_anything:
                revokes.append(CodeRevoke(agent_id, login))
        elif not issue:
            continue
        elif state.has_code:
            if state.expires is not None and state.expires <= now:
                issues.append(CodeIssue(agent_id, login, state.serial + 1, RENEWED))
        elif state.enrolled_at is None:
            issues.append(CodeIssue(agent_id, login, state.serial + 1, NEW))
    return (tuple(sorted(issues, key=lambda c: (c.login.casefold(), c.id))),
            tuple(sorted(revokes, key=lambda c: (c.login.casefold(), c.id))))
