"""The fallback LDAP as the sync sees it: entry layout, reading it back, what to write.

Layout (suffix ``S`` from planb.yml ``fallback.ldap_suffix``):

- agents: ``uid=<login>,ou=people,S``, ``inetOrgPerson`` plus planb's auxiliary
  ``planbAgent`` (``playbooks/roles/openldap/files/planb.ldif``) holding
  ``planbSourceId`` (the primary's stable id: the entry is found by it, so a
  rename is a rename, not a leaver plus a hire), ``planbLocalpart`` (the Matrix
  localpart) and ``planbPasswordFingerprint`` (SHA-256 of the hash last copied:
  the sync account may write ``userPassword`` but never read it);
- disabled agents carry ppolicy's ``pwdAccountLockedTime: 000001010000Z`` (slapd
  then refuses their bind); entries are never deleted. Any other value is ppolicy's
  own temporary lockout after failed binds (the time it began; it heals by itself
  after the policy's ``pwdLockoutDuration``): that agent is still enabled, and the
  sync neither plans a change for it nor lifts the lock (:func:`locked_for_good`);
- enrolment codes (:mod:`planb.directory.enrolment_plan`): the code's hash, serial,
  expiry and failures on the agent's entry, written with the entry's other changes;
- departments' groups: ``cn=<group>,ou=groups,S`` (``groupOfNames``), the agents'
  ``memberOf`` maintained by slapd's memberof overlay.

Everything here but :func:`read_state` / :func:`read_groups` is pure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ldap3 import MODIFY_REPLACE, Connection
from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from planb.directory import enrolment_plan as codes
from planb.directory.identifiers import child_dn, unescape_dn_value
from planb.directory.ldap_source import paged_entries
from planb.directory.model import Agent, password_fingerprint
from planb.directory.plan import AgentUpdate, Plan
from planb.directory.targets import FallbackEntry, FallbackState

log = logging.getLogger(__name__)

AGENT_CLASSES = ("inetOrgPerson", "planbAgent")
#: ppolicy's "locked until an administrator unlocks it": how planb disables an agent.
LOCKED = "000001010000Z"
#: inetOrgPerson requires sn: an agent without a surname gets this, read back as "".
NO_SURNAME = "-"
#: Agent field -> attribute on the fallback entry (department: see moves).
FIELD_ATTRIBUTES = {
    "login": "uid", "given_name": "givenName", "surname": "sn", "display_name": "displayName",
    "mail": "mail", "department": "departmentNumber", "title": "title", "mobile": "mobile",
    "employee_number": "employeeNumber", "localpart": "planbLocalpart",
}
READ_ATTRIBUTES = sorted({*FIELD_ATTRIBUTES.values(), "planbSourceId",
                          "planbPasswordFingerprint", "pwdAccountLockedTime", "memberOf",
                          *codes.READ_ATTRIBUTES})
PAGE_SIZE = 1000

Modifications = dict[str, list[tuple[str, list[str]]]]


@dataclass(frozen=True)
class IssuedCode:
    """What apply writes for one issued code: its hash (never the code), serial, expiry."""

    stored: str = field(repr=False)
    serial: int
    expires: str  # GeneralizedTime

    def attributes(self) -> dict[str, list[str]]:
        return {codes.CODE: [self.stored], codes.SERIAL: [str(self.serial)],
                codes.EXPIRES: [self.expires]}


@dataclass(frozen=True)
class Layout:
    """Where agents and groups live under ``suffix``."""

    suffix: str

    @property
    def people(self) -> str:
        return f"ou=people,{self.suffix}"

    @property
    def groups(self) -> str:
        return f"ou=groups,{self.suffix}"

    def person_dn(self, login: str) -> str:
        return child_dn("uid", login, self.people)

    def group_dn(self, name: str) -> str:
        return child_dn("cn", name, self.groups)


# --- reading ----------------------------------------------------------------------------


def _first(attrs: Mapping[str, Any], name: str) -> str:
    value = attrs.get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, datetime):  # ldap3 parses GeneralizedTime when it knows the schema
        value = codes.generalized_time(value)
    return "" if value is None else str(value)


def locked_for_good(value: str) -> bool:
    """Whether a ``pwdAccountLockedTime`` value is planb's disable marker.

    A temporary lockout (ppolicy's ``pwdMaxFailure``) writes the lockout's start time
    instead: the agent is active, locked out for ``pwdLockoutDuration`` only."""
    return value.strip().upper() == LOCKED


def group_name(dn: str) -> str:
    """``cn=Finances,ou=groups,S`` -> ``Finances``."""
    try:
        return unescape_dn_value(parse_dn(dn)[0][1])
    except (LDAPInvalidDnError, IndexError, ValueError):
        return dn


def entry_from_ldap(dn: str, attributes: Mapping[str, Any]) -> FallbackEntry | None:
    """A FallbackEntry from an entry's attributes; None when planb does not manage it."""
    attrs = {k.casefold(): v for k, v in attributes.items()}
    source_id = _first(attrs, "planbsourceid")
    if not source_id:
        return None
    values = {f: _first(attrs, a.casefold()) for f, a in FIELD_ATTRIBUTES.items()}
    surname = values.pop("surname")
    localpart = values.pop("localpart") or None
    members = attrs.get("memberof") or []
    return FallbackEntry(
        id=source_id, **values, surname="" if surname == NO_SURNAME else surname,
        enabled=not locked_for_good(_first(attrs, "pwdaccountlockedtime")),
        groups=frozenset(group_name(str(g)) for g in members), localpart=localpart,
        password_fingerprint=_first(attrs, "planbpasswordfingerprint") or None, dn=dn,
        codes=codes.code_state({a.casefold(): _first(attrs, a.casefold())
                                for a in codes.READ_ATTRIBUTES}),
    )


def read_state(conn: Connection, layout: Layout) -> FallbackState:
    """Every planb-managed agent entry under ``ou=people`` (paged)."""
    entries = []
    for dn, attrs in paged_entries(conn, layout.people, "(objectClass=planbAgent)",
                                   READ_ATTRIBUTES, PAGE_SIZE, "the fallback directory"):
        entry = entry_from_ldap(dn, attrs)
        if entry is not None:
            entries.append(entry)
    try:
        return FallbackState.build(entries)
    except ValueError as exc:
        raise ValueError(f"the fallback directory: {exc}") from None


def read_groups(conn: Connection, layout: Layout) -> dict[str, list[str]]:
    """Group name -> member DNs, for every ``groupOfNames`` under ``ou=groups``."""
    groups: dict[str, list[str]] = {}
    for dn, attrs in paged_entries(conn, layout.groups, "(objectClass=groupOfNames)",
                                   ["cn", "member"], PAGE_SIZE, "the fallback directory"):
        groups[group_name(dn)] = [str(m) for m in attrs.get("member") or []]
    return groups


# --- writing (pure) -------------------------------------------------------------------


def add_attributes(agent: Agent, localpart: str | None, code: IssuedCode | None = None
                   ) -> dict[str, list[str]]:
    """Every attribute of a new agent entry (its enrolment code too): one add writes
    the whole entry."""
    attrs: dict[str, list[str]] = {
        "objectClass": list(AGENT_CLASSES), "uid": [agent.login],
        "cn": [agent.display_name or agent.login], "sn": [agent.surname or NO_SURNAME],
        "planbSourceId": [agent.id],
    }
    for name in ("given_name", "display_name", "mail", "department", "title", "mobile",
                 "employee_number"):
        value = getattr(agent, name)
        if value:
            attrs[FIELD_ATTRIBUTES[name]] = [value]
    if localpart:
        attrs["planbLocalpart"] = [localpart]
    if agent.password_hash is not None:
        attrs["userPassword"] = [str(agent.password_hash)]
        attrs["planbPasswordFingerprint"] = [password_fingerprint(agent.password_hash) or ""]
    if not agent.enabled:
        attrs["pwdAccountLockedTime"] = [LOCKED]
    if code is not None:
        attrs.update(code.attributes())
    return attrs


def update_modifications(update: AgentUpdate) -> Modifications:
    """Attribute-level replaces for one update (not the rename, not the groups)."""
    mods: Modifications = {}
    for change in update.changes:
        if change.field in ("login", "groups"):
            continue
        attribute = FIELD_ATTRIBUTES[change.field]
        new = change.new if isinstance(change.new, str) else ""
        if change.field == "surname":
            new = new or NO_SURNAME
        mods[attribute] = [(MODIFY_REPLACE, [new] if new else [])]
        if change.field == "display_name":
            mods["cn"] = [(MODIFY_REPLACE, [new or update.login])]
    if update.password_changed and update.password_hash is not None:
        mods["userPassword"] = [(MODIFY_REPLACE, [str(update.password_hash)])]
        mods["planbPasswordFingerprint"] = [
            (MODIFY_REPLACE, [password_fingerprint(update.password_hash) or ""])]
    return mods


def new_login(update: AgentUpdate) -> str | None:
    """The new login when the update renames the entry."""
    for change in update.changes:
        if change.field == "login" and isinstance(change.new, str):
            return change.new
    return None


@dataclass
class EntryJob:
    """Everything one existing entry needs: an optional rename, then one modify."""

    id: str
    login: str
    rename_to: str | None = None
    mods: Modifications = field(default_factory=dict)
    kinds: list[str] = field(default_factory=list)


def entry_jobs(plan: Plan, issued: Mapping[str, IssuedCode] | None = None
               ) -> dict[str, EntryJob]:
    """Updates, moves, deactivations, reactivations and enrolment codes (``issued``: by
    agent id, for the plan's code issues) merged into one job per entry."""
    jobs: dict[str, EntryJob] = {}

    def job(agent_id: str, login: str) -> EntryJob:
        return jobs.setdefault(agent_id, EntryJob(agent_id, login))

    for update in plan.ldap_updates:
        item = job(update.id, update.login)
        item.rename_to = new_login(update)
        item.mods.update(update_modifications(update))
        item.kinds.append("update")
    for move in plan.moves:
        item = job(move.id, move.login)
        item.mods["departmentNumber"] = [(MODIFY_REPLACE, [move.new] if move.new else [])]
        item.kinds.append("move")
    for change in plan.ldap_deactivations:
        item = job(change.id, change.login)
        item.mods["pwdAccountLockedTime"] = [(MODIFY_REPLACE, [LOCKED])]
        item.kinds.append("deactivate")
    for change in plan.ldap_reactivations:
        item = job(change.id, change.login)
        item.mods["pwdAccountLockedTime"] = [(MODIFY_REPLACE, [])]
        item.kinds.append("reactivate")
    added = {a.agent.id for a in plan.ldap_adds}
    for issue in plan.code_issues:
        code = (issued or {}).get(issue.id)
        if issue.id in added or code is None:
            continue  # a new entry's code is in its add; no hash: nothing to write
        item = job(issue.id, issue.login)
        item.mods.update({k: [(MODIFY_REPLACE, v)] for k, v in code.attributes().items()})
        item.mods[codes.FAILURES] = [(MODIFY_REPLACE, [])]
        item.kinds.append(f"code_{'renew' if issue.reason == codes.RENEWED else 'issue'}")
    for revoke in plan.code_revocations:
        item = job(revoke.id, revoke.login)
        item.mods.update({k: [(MODIFY_REPLACE, [])] for k in codes.REVOKED_ATTRIBUTES})
        item.kinds.append("code_revoke")
    return jobs


@dataclass(frozen=True)
class GroupJob:
    """One group write: create it, add/remove members in one modify, or drop it when empty."""

    name: str
    dn: str
    action: str  # add | modify | delete
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


def _membership_wishes(plan: Plan, layout: Layout) -> Iterator[tuple[str, str, bool]]:
    """``(group, member DN, join?)`` for every membership change the plan asks for."""
    for add in plan.ldap_adds:
        for group in sorted(add.agent.groups):
            yield group, layout.person_dn(add.agent.login), True
    for update in plan.ldap_updates:
        for change in update.changes:
            if change.field != "groups":
                continue
            old = set(change.old or ()) if not isinstance(change.old, str) else {change.old}
            new = set(change.new or ()) if not isinstance(change.new, str) else {change.new}
            dn = layout.person_dn(update.login)
            for group in sorted(new - old):
                yield group, dn, True
            for group in sorted(old - new):
                yield group, dn, False


def group_jobs(plan: Plan, layout: Layout, current: Mapping[str, Iterable[str]]
               ) -> list[GroupJob]:
    """One write per group touched, against its current members (adds already there and
    removes already gone are skipped, so a re-run after an interruption converges)."""
    joins: dict[str, dict[str, str]] = {}
    leaves: dict[str, dict[str, str]] = {}
    for group, dn, join in _membership_wishes(plan, layout):
        (joins if join else leaves).setdefault(group, {})[dn.casefold()] = dn
    jobs = []
    for group in sorted(set(joins) | set(leaves)):
        members = {m.casefold(): m for m in current.get(group, ())}
        add = {k: v for k, v in joins.get(group, {}).items() if k not in members}
        remove = {k: members[k] for k in leaves.get(group, {}) if k in members}
        remaining = (set(members) | set(add)) - set(remove)
        dn = layout.group_dn(group)
        if group not in current:
            if add:
                jobs.append(GroupJob(group, dn, "add", tuple(sorted(add.values()))))
        elif not remaining:
            jobs.append(GroupJob(group, dn, "delete"))
        elif add or remove:
            jobs.append(GroupJob(group, dn, "modify", tuple(sorted(add.values())),
                                 tuple(sorted(remove.values()))))
    return jobs
