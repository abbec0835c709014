"""The normalised agent every source is read into, and what a source read returns.

An :class:`Agent` is the same whether it came from OpenLDAP, Active Directory or a
CSV export. Its password hash is a :class:`~planb.schema.Secret`: never in a repr,
a log line, a plan file or an exception.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from planb.schema import Secret

#: Fields compared between the source and the fallback, one update each.
COMPARED_FIELDS = (
    "login", "given_name", "surname", "display_name", "mail", "department", "title",
    "mobile", "employee_number", "groups",
)

TRUE_WORDS = frozenset({"1", "true", "vrai", "yes", "y", "oui", "o", "actif", "active",
                        "enabled", "activé"})
FALSE_WORDS = frozenset({"0", "false", "faux", "no", "n", "non", "inactif", "inactive",
                         "disabled", "désactivé", "desactive", "parti", "sorti", "leaver"})

_MAIL = re.compile(r"^[^@\s\"(),:;<>\[\\\]]+@[^@\s\"(),:;<>\[\\\]]+\.[^@\s\"(),:;<>\[\\\].]+$")


@dataclass(frozen=True, slots=True)
class Agent:
    """One person's account, as the primary directory describes it."""

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
    #: ``{SCHEME}...`` as stored by OpenLDAP; hidden from repr and never serialised.
    password_hash: Secret | None = field(default=None, repr=False,
                                         metadata={"secret": True})

    def public(self) -> dict[str, object]:
        """The agent as plain data without the password hash (groups sorted)."""
        data: dict[str, object] = {}
        for f in fields(self):
            if f.name == "password_hash":
                continue
            value = getattr(self, f.name)
            data[f.name] = sorted(value) if isinstance(value, frozenset) else value
        data["password"] = self.password_hash is not None
        return data


def password_fingerprint(password_hash: str | None) -> str | None:
    """A SHA-256 of the hash: lets apply record *which* hash it wrote without keeping it."""
    if password_hash is None:
        return None
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()


def parse_bool(text: str) -> bool:
    """``oui/non``, ``true/false``, ``1/0``, ``actif/inactif`` (and a few more) -> bool."""
    word = text.strip().casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(
        f"{text!r} is neither true ({', '.join(sorted(TRUE_WORDS))}) "
        f"nor false ({', '.join(sorted(FALSE_WORDS))})"
    )


def check_mail(mail: str) -> str:
    """Return ``mail`` if it looks like one address (``x@domain.tld``), else ValueError."""
    if mail and not _MAIL.match(mail):
        raise ValueError(f"invalid mail {mail!r}")
    return mail


def display_name_for(given_name: str, surname: str, login: str) -> str:
    """``Given Surname``, or the login when the source has neither."""
    return " ".join(p for p in (given_name, surname) if p) or login


@dataclass(frozen=True)
class Rejection:
    """A source record that was not turned into an agent, and why.

    ``line`` is the physical line where a CSV record starts; ``entry`` names an LDAP
    entry (its DN). ``id``/``login`` are given when known, so the planner never
    deactivates an agent just because their record was rejected. ``disabled`` is set
    when the record, unusable as it is, still says the agent is disabled (a ppolicy
    lock, ``userAccountControl``'s ACCOUNTDISABLE, ``enabled: false``, the leaver
    filter): the planner then deactivates them rather than keep them as they were.
    """

    source: str
    reason: str
    line: int | None = None
    entry: str | None = None
    id: str | None = None
    login: str | None = None
    disabled: bool = False

    def where(self) -> str:
        """``file:line`` or the entry DN, for messages."""
        if self.line is not None:
            return f"{self.source}:{self.line}"
        return self.entry or self.source


@dataclass(frozen=True)
class SourceResult:
    """What reading the primary gave: the agents, and the records that were rejected."""

    source: str
    agents: tuple[Agent, ...]
    rejections: tuple[Rejection, ...] = ()

    def summary(self) -> str:
        """``9000 agents, 3 rejected``."""
        return f"{len(self.agents)} agents, {len(self.rejections)} rejected"


class AgentCollector:
    """Accepts agents one by one, rejecting duplicate ids and (case-insensitive) logins.

    The first record with an id or login wins; later ones are rejected with a reason
    that names where the first one was.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._agents: list[Agent] = []
        self._rejections: list[Rejection] = []
        self._ids: dict[str, str] = {}
        self._logins: dict[str, str] = {}

    def reject(self, reason: str, *, line: int | None = None, entry: str | None = None,
               id: str | None = None, login: str | None = None,
               disabled: bool = False) -> None:
        """Record a rejected record (``disabled``: it says the agent is disabled)."""
        self._rejections.append(
            Rejection(self.source, reason, line=line, entry=entry, id=id or None,
                      login=login or None, disabled=disabled)
        )

    def add(self, agent: Agent, *, line: int | None = None, entry: str | None = None) -> None:
        """Accept ``agent`` unless its id or login was already seen."""
        where = f"line {line}" if line is not None else (entry or "an earlier entry")
        key = agent.login.casefold()
        if agent.id in self._ids:
            self.reject(f"duplicate id {agent.id!r} (first seen at {self._ids[agent.id]})",
                        line=line, entry=entry, id=agent.id, login=agent.login)
        elif key in self._logins:
            self.reject(f"duplicate login {agent.login!r} (first seen at {self._logins[key]})",
                        line=line, entry=entry, id=agent.id, login=agent.login)
        else:
            self._ids[agent.id] = where
            self._logins[key] = where
            self._agents.append(agent)

    def result(self) -> SourceResult:
        """The agents accepted so far and every rejection."""
        return SourceResult(self.source, tuple(self._agents), tuple(self._rejections))


def rejection_lines(rejections: Iterable[Rejection], limit: int = 20) -> str:
    """A readable list of rejections for an error message (at most ``limit`` lines)."""
    items = list(rejections)
    lines = [f"  {r.where()}: {r.reason}" for r in items[:limit]]
    if len(items) > limit:
        lines.append(f"  ... and {len(items) - limit} more")
    return "\n".join(lines)
