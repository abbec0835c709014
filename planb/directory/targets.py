"""Frozen snapshots of the two targets, as the planner sees them.

The fallback LDAP reader builds :class:`FallbackEntry` objects and the Synapse reader
builds a :class:`MatrixState`; the planner compares them with the source. Nothing
here does I/O.

Contract for the readers and for apply:

* a FallbackEntry's ``id`` is the primary's stable id (entryUUID / objectGUID /
  CSV id) that apply stored on the entry; ``localpart`` is the Matrix localpart
  apply stored with it (None if none was stored: the plan then adds it);
  ``password_fingerprint`` is :func:`~planb.directory.model.password_fingerprint`
  of the hash apply last wrote (the fallback never lets anyone read hashes back);
* apply writes the LDAP entry (with its localpart) *before* creating the Matrix
  user, so a Matrix account whose localpart no entry holds is one planb does not
  manage (an administrator, a bot) and is never touched;
* ``MatrixState.rooms`` maps the alias localpart of each room found to its joined
  members' localparts; a department room missing from it does not exist yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from planb.directory.enrolment_plan import CodeState
from planb.directory.model import Agent, password_fingerprint


@dataclass(frozen=True, slots=True)
class FallbackEntry:
    """An agent as the fallback LDAP holds it."""

    id: str
    login: str
    given_name: str = ""
    surname: str = ""
    display_name: str = ""
    mail: str = ""
    department: str = ""
    title: str = ""
    mobile: str = ""
    employee_number: str = ""
    enabled: bool = True
    groups: frozenset[str] = frozenset()
    localpart: str | None = None
    password_fingerprint: str | None = None
    dn: str = ""
    #: Its enrolment code's state (planb.directory.enrolment_plan).
    codes: CodeState = CodeState()


def entry_for(agent: Agent, localpart: str | None, dn: str = "") -> FallbackEntry:
    """The fallback entry an applied plan leaves for ``agent`` (what apply writes)."""
    return FallbackEntry(
        id=agent.id, login=agent.login, given_name=agent.given_name, surname=agent.surname,
        display_name=agent.display_name, mail=agent.mail, department=agent.department,
        title=agent.title, mobile=agent.mobile, employee_number=agent.employee_number,
        enabled=agent.enabled, groups=agent.groups, localpart=localpart,
        password_fingerprint=password_fingerprint(agent.password_hash), dn=dn,
    )


@dataclass(frozen=True, slots=True)
class MatrixUser:
    """A user on the fallback homeserver."""

    localpart: str
    display_name: str = ""
    deactivated: bool = False
    #: A server admin or a typed account (bot, support): never given to an agent.
    service: bool = False


@dataclass(frozen=True)
class FallbackState:
    """Every agent entry in the fallback LDAP, by stable id."""

    entries: Mapping[str, FallbackEntry] = field(default_factory=dict)

    @classmethod
    def build(cls, entries: Iterable[FallbackEntry]) -> FallbackState:
        """Index ``entries`` by id; ValueError if two entries share one."""
        by_id: dict[str, FallbackEntry] = {}
        for entry in entries:
            if entry.id in by_id:
                raise ValueError(f"two fallback entries carry id {entry.id!r}: "
                                 f"{by_id[entry.id].dn or by_id[entry.id].login} and "
                                 f"{entry.dn or entry.login}")
            by_id[entry.id] = entry
        return cls(by_id)

    def active_count(self) -> int:
        """How many entries are enabled (the base of the deactivation limit)."""
        return sum(1 for e in self.entries.values() if e.enabled)


@dataclass(frozen=True)
class MatrixState:
    """Users by localpart, and members (localparts) of each room planb manages, by alias."""

    users: Mapping[str, MatrixUser] = field(default_factory=dict)
    rooms: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Department rooms (by alias) an older planb made invite-only: to be opened.
    closed: frozenset[str] = frozenset()

    @classmethod
    def build(cls, users: Iterable[MatrixUser] = (),
              rooms: Mapping[str, Iterable[str]] | None = None,
              closed: Iterable[str] = ()) -> MatrixState:
        """Index ``users`` by localpart and freeze the room member sets."""
        return cls({u.localpart: u for u in users},
                   {alias: frozenset(members) for alias, members in (rooms or {}).items()},
                   frozenset(closed))
