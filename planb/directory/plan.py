"""The sync plan: what must change on the fallback LDAP and Matrix, and why. Pure.

:func:`compute_plan` compares the source agents with snapshots of both targets
(:mod:`planb.directory.targets`) and returns a :class:`Plan`. It never deletes:
leavers (disabled at the source, or gone from it) are deactivated. An agent whose
source record was *rejected* is never treated as gone, unless the rejected record
still says they are disabled (locked, a leaver): then they are deactivated too.
Agents whose login gives a Matrix localpart someone else holds are reported as
collisions and not provisioned; so is a rename onto a login or localpart another
agent's account holds (:mod:`planb.directory.renames`): the agent keeps their login.
Everything is keyed by stable id, so 9,000 agents plan in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from planb.directory.enrolment_plan import RENEWED, CodeIssue, CodeRevoke, code_changes
from planb.directory.identifiers import (
    Collision,
    assign_localparts,
    localpart_for,
    room_aliases,
)
from planb.directory.model import (
    COMPARED_FIELDS,
    Agent,
    Rejection,
    SourceResult,
    password_fingerprint,
)
from planb.directory.renames import RenameCheck
from planb.directory.targets import FallbackEntry, FallbackState, MatrixState
from planb.schema import Secret

GONE = "no longer in the source"
DISABLED = "disabled at the source"
ENABLED_AGAIN = "enabled again at the source"
REJECTED_KEPT = "kept as is: its source record was rejected (see rejections)"
REJECTED_DISABLED = "disabled at the source (its record was also rejected: see rejections)"

Value = str | tuple[str, ...] | None


@dataclass(frozen=True)
class FieldChange:
    """One attribute of one agent: ``old`` -> ``new`` (groups as sorted tuples)."""

    field: str
    old: Value
    new: Value


@dataclass(frozen=True)
class AgentAdd:
    """A new agent entry in the fallback LDAP (``password``: a hash will be copied)."""

    agent: Agent
    localpart: str | None
    password: bool = False


@dataclass(frozen=True)
class AgentUpdate:
    """Attribute changes for one existing entry. The hash itself never leaves memory.

    A ``login`` change renames the entry (its RDN is the login: apply uses modify DN);
    a ``localpart`` change records the Matrix localpart on an entry that had none.
    """

    id: str
    login: str
    changes: tuple[FieldChange, ...]
    password_changed: bool = False
    password_hash: Secret | None = field(default=None, repr=False, compare=False,
                                         metadata={"secret": True})


@dataclass(frozen=True)
class StatusChange:
    """A deactivation or reactivation (LDAP or Matrix), with its reason."""

    id: str
    login: str
    reason: str
    localpart: str | None = None


@dataclass(frozen=True)
class Move:
    """An agent changing department: apply writes ``new`` on the LDAP entry; the room
    memberships follow through :class:`RoomChange`."""

    id: str
    login: str
    old: str
    new: str


@dataclass(frozen=True)
class MatrixCreate:
    """A Matrix user to create, without a password (agents log in through LDAP)."""

    id: str
    login: str
    localpart: str
    display_name: str


@dataclass(frozen=True)
class DisplayNameChange:
    """A Matrix display name to bring in line with the directory."""

    id: str
    localpart: str
    old: str
    new: str


@dataclass(frozen=True)
class RoomCreate:
    """A department room that does not exist yet (found again later by its alias)."""

    alias: str
    name: str


@dataclass(frozen=True)
class RoomOpen:
    """A department room an older planb made invite-only, to move to the public join
    rule (kept to its members by planb's Synapse module; see planb.messaging.rooms)."""

    alias: str
    name: str


@dataclass(frozen=True)
class RoomChange:
    """Members (localparts) to join to and remove from one room."""

    alias: str
    name: str
    joins: tuple[str, ...] = ()
    leaves: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kept:
    """A fallback entry left untouched although the source did not give it, and why."""

    id: str
    login: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """Everything a sync would change, grouped by target, in a stable order."""

    source: str
    source_agents: int
    active_before: int
    ldap_adds: tuple[AgentAdd, ...] = ()
    ldap_updates: tuple[AgentUpdate, ...] = ()
    ldap_deactivations: tuple[StatusChange, ...] = ()
    ldap_reactivations: tuple[StatusChange, ...] = ()
    moves: tuple[Move, ...] = ()
    matrix_creates: tuple[MatrixCreate, ...] = ()
    matrix_deactivations: tuple[StatusChange, ...] = ()
    matrix_reactivations: tuple[StatusChange, ...] = ()
    display_names: tuple[DisplayNameChange, ...] = ()
    room_creates: tuple[RoomCreate, ...] = ()
    room_changes: tuple[RoomChange, ...] = ()
    room_opens: tuple[RoomOpen, ...] = ()
    collisions: tuple[Collision, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    kept: tuple[Kept, ...] = ()
    #: Enrolment codes to issue or renew, and leavers' codes to delete (no code here).
    code_issues: tuple[CodeIssue, ...] = ()
    code_revocations: tuple[CodeRevoke, ...] = ()

    def summary(self) -> dict[str, int]:
        """Counts of each kind of change, for the top of the plan and the CLI."""
        return {
            "ldap_add": len(self.ldap_adds),
            "ldap_update": len(self.ldap_updates),
            "ldap_deactivate": len(self.ldap_deactivations),
            "ldap_reactivate": len(self.ldap_reactivations),
            "department_move": len(self.moves),
            "matrix_create": len(self.matrix_creates),
            "matrix_deactivate": len(self.matrix_deactivations),
            "matrix_reactivate": len(self.matrix_reactivations),
            "matrix_display_name": len(self.display_names),
            "room_create": len(self.room_creates),
            "room_join": sum(len(c.joins) for c in self.room_changes),
            "room_leave": sum(len(c.leaves) for c in self.room_changes),
            "room_open": len(self.room_opens),
            "code_issue": sum(1 for c in self.code_issues if c.reason != RENEWED),
            "code_renew": sum(1 for c in self.code_issues if c.reason == RENEWED),
            "code_revoke": len(self.code_revocations),
            "collisions": len(self.collisions),
            "rejected": len(self.rejections),
            "kept": len(self.kept),
        }

    def is_empty(self) -> bool:
        """True when applying would change nothing (collisions and rejections are reports)."""
        counts = self.summary()
        return not any(v for k, v in counts.items() if k not in ("collisions", "rejected",
                                                                   "kept"))

    def deactivated_ids(self) -> frozenset[str]:
        """Agents this plan deactivates anywhere (LDAP or Matrix)."""
        return frozenset(c.id for c in (*self.ldap_deactivations, *self.matrix_deactivations))


@dataclass(frozen=True)
class PlanOptions:
    """Choices that shape a plan: room alias prefix, the announcement room."""

    room_prefix: str = "dept-"
    #: Alias localpart of the room every active agent is in; None: not managed here.
    announcement_room: str | None = None
    announcement_name: str = "Announcements"
    #: Give an agent without a fallback entry the existing Matrix account its login
    #: gives (a rebuilt fallback directory); off: such accounts are collisions.
    adopt: bool = False
    #: Issue and renew enrolment codes (planb.yml enrolment.enabled); leavers' codes
    #: are revoked either way. ``now`` decides which codes expired (default: now).
    codes: bool = False
    now: datetime | None = None


def _value(obj: Agent | FallbackEntry, name: str) -> Value:
    value = getattr(obj, name)
    return tuple(sorted(value)) if isinstance(value, frozenset) else value


def _changes(agent: Agent, entry: FallbackEntry, localpart: str | None) -> list[FieldChange]:
    changes = [FieldChange(name, _value(entry, name), _value(agent, name))
               for name in COMPARED_FIELDS
               if name != "department" and _value(entry, name) != _value(agent, name)]
    if localpart and entry.localpart != localpart:
        changes.append(FieldChange("localpart", entry.localpart, localpart))
    return changes


def _order(item: object) -> tuple[str, str]:
    """Sort key: login (ignoring case), then id; the localpart when there is no login."""
    if isinstance(item, AgentAdd):
        return item.agent.login.casefold(), item.agent.id
    name = getattr(item, "login", None) or getattr(item, "localpart", "")
    return str(name).casefold(), str(getattr(item, "id", ""))


@dataclass(frozen=True)
class _Rejected:
    """Ids and (case-folded) logins of rejected source records."""

    ids: frozenset[str]
    logins: frozenset[str]

    @classmethod
    def of(cls, rejections: Iterable[Rejection], *, disabled: bool = False) -> _Rejected:
        """All of them; or (``disabled``) those that say the agent is disabled, matched
        by login only when the id could not be read (logins get renamed, ids do not)."""
        items = [r for r in rejections if r.disabled or not disabled]
        return cls(frozenset(r.id for r in items if r.id),
                   frozenset(r.login.casefold() for r in items
                             if r.login and not (disabled and r.id)))

    def holds(self, entry: FallbackEntry) -> bool:
        return entry.id in self.ids or entry.login.casefold() in self.logins


class _Builder:
    """Accumulates one plan; split out of compute_plan to keep each step short."""

    def __init__(self, source: SourceResult, fallback: FallbackState, matrix: MatrixState,
                 options: PlanOptions) -> None:
        self.source, self.fallback, self.matrix, self.options = source, fallback, matrix, options
        self.lists: dict[str, list[object]] = {name: [] for name in (
            "ldap_adds", "ldap_updates", "ldap_deactivations", "ldap_reactivations", "moves",
            "matrix_creates", "matrix_deactivations", "matrix_reactivations",
            "display_names", "kept")}
        entries = fallback.entries
        # An entry without a stored localpart holds the one its login gives (the plan
        # then writes it), so its Matrix account is not mistaken for an unmanaged one.
        self.held = {e.id: e.localpart or localpart_for(e.login) for e in entries.values()}
        candidates = [(a.id, a.login) for a in source.agents if a.enabled or a.id in entries
                      or (options.adopt and localpart_for(a.login) in matrix.users)]
        unmanaged = set(matrix.users) - set(self.held.values())
        if options.adopt:
            unmanaged -= self._adoptable(candidates)
        self.assignment = assign_localparts(
            candidates, self.held, unmanaged, {e.id: e.login for e in entries.values()})
        self.refused = {c.refused_id for c in self.assignment.collisions}
        self.renames = RenameCheck(fallback, matrix, {**self.held, **self.assignment.by_id},
                                   source.agents)
        self.rename_collisions: list[Collision] = []
        self.members: dict[str, set[str]] = {}  # department -> localparts of active agents

    def _adoptable(self, candidates: list[tuple[str, str]]) -> set[str]:
        """Localparts of existing accounts (not service ones) that the login of an agent
        without a fallback entry gives: ``--adopt`` hands them back to that agent (a
        leaver's is then deactivated, an active agent's kept with its rooms)."""
        users = self.matrix.users
        return {lp for agent_id, login in candidates
                if agent_id not in self.fallback.entries
                and (lp := localpart_for(login)) in users and not users[lp].service}

    def add(self, kind: str, item: object) -> None:
        self.lists[kind].append(item)

    def source_agent(self, agent: Agent) -> None:
        entry = self.fallback.entries.get(agent.id)
        if agent.id in self.refused and entry is None:
            return
        localpart = self.assignment.by_id.get(agent.id)
        if entry is None:
            if agent.enabled:
                self.add("ldap_adds", AgentAdd(agent, localpart, agent.password_hash is not None))
        else:
            self.existing_agent(agent, entry, localpart)
        if localpart is not None:
            self.matrix_user(agent, localpart)

    def existing_agent(self, agent: Agent, entry: FallbackEntry, localpart: str | None) -> None:
        if agent.enabled and not entry.enabled:
            self.add("ldap_reactivations",
                     StatusChange(agent.id, agent.login, ENABLED_AGAIN, localpart))
        elif entry.enabled and not agent.enabled:
            self.add("ldap_deactivations",
                     StatusChange(agent.id, entry.login, DISABLED, localpart))
        if not agent.enabled:
            return
        if (refused := self.renames.collision(agent.id, entry.login, agent.login)) is not None:
            self.rename_collisions.append(refused)
            agent = replace(agent, login=entry.login)  # every other change still applies
        changes = _changes(agent, entry, localpart)
        fingerprint = password_fingerprint(agent.password_hash)
        password = fingerprint is not None and fingerprint != entry.password_fingerprint
        if changes or password:
            self.add("ldap_updates", AgentUpdate(agent.id, agent.login, tuple(changes), password,
                                                 agent.password_hash if password else None))
        if entry.department != agent.department:
            self.add("moves", Move(agent.id, agent.login, entry.department, agent.department))

    def matrix_user(self, agent: Agent, localpart: str) -> None:
        user = self.matrix.users.get(localpart)
        if not agent.enabled:
            if user is not None and not user.deactivated:
                self.add("matrix_deactivations",
                         StatusChange(agent.id, agent.login, DISABLED, localpart))
            return
        self.members.setdefault(agent.department, set()).add(localpart)
        if user is None:
            self.add("matrix_creates",
                     MatrixCreate(agent.id, agent.login, localpart, agent.display_name))
            return
        if user.deactivated:
            self.add("matrix_reactivations",
                     StatusChange(agent.id, agent.login, ENABLED_AGAIN, localpart))
        if user.display_name != agent.display_name:
            self.add("display_names", DisplayNameChange(agent.id, localpart, user.display_name,
                                                        agent.display_name))

    def gone(self, entry: FallbackEntry, protected: _Rejected, disabled: _Rejected) -> None:
        localpart = self.held.get(entry.id)
        if protected.holds(entry) and not disabled.holds(entry):
            self.add("kept", Kept(entry.id, entry.login, REJECTED_KEPT))
            user = self.matrix.users.get(localpart) if localpart else None
            if entry.enabled and localpart and user is not None and not user.deactivated:
                self.members.setdefault(entry.department, set()).add(localpart)  # stays
            return
        reason = REJECTED_DISABLED if disabled.holds(entry) else GONE
        if entry.enabled:
            self.add("ldap_deactivations", StatusChange(entry.id, entry.login, reason, localpart))
        user = self.matrix.users.get(localpart) if localpart else None
        if user is not None and not user.deactivated:
            self.add("matrix_deactivations",
                     StatusChange(entry.id, entry.login, reason, localpart))

    def opens(self) -> tuple[RoomOpen, ...]:
        """Department rooms still invite-only, named after their department if it is
        still one (else the room keeps the name it has)."""
        departments = [d for d in self.members if d]
        names = {alias: d for d, alias in
                 room_aliases(departments, self.options.room_prefix).items()}
        return tuple(RoomOpen(alias, names.get(alias, ""))
                     for alias in sorted(self.matrix.closed)
                     if alias != self.options.announcement_room)

    def rooms(self) -> tuple[tuple[RoomCreate, ...], tuple[RoomChange, ...]]:
        departments = [d for d in self.members if d]
        aliases = room_aliases(departments, self.options.room_prefix)
        desired = {aliases[d]: (d, self.members[d]) for d in departments}
        if self.options.announcement_room:
            everyone = set().union(*self.members.values()) if self.members else set()
            desired[self.options.announcement_room] = (self.options.announcement_name, everyone)
        managed = set(self.assignment.by_id.values())
        managed.update(e.localpart for e in self.fallback.entries.values() if e.localpart)
        # Synapse parts a deactivated user from every room itself, in the background:
        # kicking them too would race it (and a re-read made meanwhile would still
        # list them as members), so their memberships are Synapse's business.
        leaving = {c.localpart for c in self.lists["matrix_deactivations"]
                   if isinstance(c, StatusChange)}
        leaving |= {lp for lp, user in self.matrix.users.items() if user.deactivated}
        creates, changes = [], []
        for alias in sorted(set(desired) | set(self.matrix.rooms)):
            name, wanted = desired.get(alias, ("", set()))
            current = self.matrix.rooms.get(alias)
            if current is None:
                creates.append(RoomCreate(alias, name))
                current = frozenset()
            joins = tuple(sorted(wanted - current))
            leaves = tuple(sorted((current & managed) - wanted - leaving))
            if joins or leaves:
                changes.append(RoomChange(alias, name, joins, leaves))
        return tuple(creates), tuple(changes)

    def plan(self) -> Plan:
        sorted_lists = {k: tuple(sorted(v, key=_order)) for k, v in self.lists.items()}
        creates, changes = self.rooms()
        return Plan(
            source=self.source.source, source_agents=len(self.source.agents),
            active_before=self.fallback.active_count(), room_creates=creates,
            room_changes=changes, room_opens=self.opens(), collisions=tuple(sorted(
                (*self.assignment.collisions, *self.rename_collisions),
                key=lambda c: (c.localpart, c.refused_id))),
            rejections=self.source.rejections, **sorted_lists,  # type: ignore[arg-type]
        )


def compute_plan(source: SourceResult, fallback: FallbackState, matrix: MatrixState,
                 options: PlanOptions | None = None) -> Plan:
    """The plan that brings the fallback LDAP and Matrix in line with ``source``. Pure."""
    builder = _Builder(source, fallback, matrix, options or PlanOptions())
    for agent in source.agents:
        builder.source_agent(agent)
    in_source = {a.id for a in source.agents}
    protected = _Rejected.of(source.rejections)
    disabled = _Rejected.of(source.rejections, disabled=True)
    for entry in fallback.entries.values():
        if entry.id not in in_source:
            builder.gone(entry, protected, disabled)
    plan = builder.plan()
    issues, revokes = code_changes(
        [a.agent for a in plan.ldap_adds], fallback.entries.values(),
        {c.id for c in plan.ldap_deactivations}, {c.id for c in plan.ldap_reactivations},
        {a.id: a.login for a in source.agents}, builder.options.now or datetime.now(UTC),
        issue=builder.options.codes)
    return replace(plan, code_issues=issues, code_revocations=revokes)
