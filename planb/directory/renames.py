"""Renames onto a name someone else holds: reported as collisions, never applied. Pure.

A login change renames the agent's fallback entry (its RDN is the login) and keeps
the agent's Matrix localpart (``planbLocalpart``). A rename is refused when the new
login is one the fallback directory already gives another entry (an active agent or
a leaver, whose locked entry stays), or when the localpart the new login gives is
already someone else's: another agent's stable localpart, a localpart this plan
gives a new agent, or any Matrix account (deactivated ones included: Synapse never
frees a user ID). Anything that turns a typed login into ``@<login>`` would otherwise
open that other account, and two entries cannot share a login.

The refused agent keeps their current login on the fallback (every other change is
still applied); the collision names both agents, and stays in each plan until the
primary's login changes again or an administrator settles it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from planb.directory.identifiers import Collision, localpart_for
from planb.directory.model import Agent
from planb.directory.targets import FallbackEntry, FallbackState, MatrixState


def _who(entry: FallbackEntry) -> str:
    state = "active" if entry.enabled else "deactivated"
    return f"{entry.login!r} (id {entry.id}, {state})"


class RenameCheck:
    """Indexes of who holds which login and localpart, built once per plan."""

    def __init__(self, fallback: FallbackState, matrix: MatrixState,
                 localparts: Mapping[str, str], agents: Iterable[Agent]) -> None:
        """``localparts``: agent id -> the localpart it holds or is given by this plan;
        ``agents``: the source's (their logins name new agents in messages)."""
        self.matrix = matrix
        self.logins = {a.id: a.login for a in agents}
        self.logins.update({e.id: e.login for e in fallback.entries.values()})
        self.by_login = {e.login.casefold(): e for e in fallback.entries.values()}
        self.entries = fallback.entries
        self.holders: dict[str, str] = {}
        for agent_id, localpart in sorted(localparts.items()):
            self.holders.setdefault(localpart, agent_id)
        self.localparts = localparts

    def collision(self, agent_id: str, old: str, new: str) -> Collision | None:
        """The collision when renaming agent ``agent_id`` from ``old`` to ``new`` must be
        refused, else None (not a rename, or the name is free)."""
        if new == old:
            return None
        localpart = localpart_for(new)
        why = self._login_held(agent_id, new) or self._localpart_held(agent_id, new, localpart)
        if why is None:
            return None
        holder_id, holder_login, reason = why
        return Collision(
            localpart, holder_id, holder_login, agent_id, new,
            f"rename of {old!r} (id {agent_id}) to {new!r} not applied: {reason}; they keep "
            f"the login {old!r} on the fallback", keeps_login=old)

    def _login_held(self, agent_id: str, new: str) -> tuple[str, str, str] | None:
        other = self.by_login.get(new.casefold())
        if other is None or other.id == agent_id:
            return None
        return other.id, other.login, (f"the fallback directory already gives the login "
                                       f"{other.login!r} to {_who(other)}")

    def _localpart_held(self, agent_id: str, new: str, localpart: str
                        ) -> tuple[str, str, str] | None:
        if self.localparts.get(agent_id) == localpart:
            return None  # their own (a change of case, or back to their first login)
        gives = f"login {new!r} gives the Matrix localpart {localpart!r}"
        holder = self.holders.get(localpart)
        if holder is not None and holder != agent_id:
            entry = self.entries.get(holder)
            who = _who(entry) if entry else (f"{self.logins.get(holder, '')!r} "
                                             f"(id {holder}, new)")
            return holder, self.logins.get(holder, ""), f"{gives}, held by {who}"
        user = self.matrix.users.get(localpart)
        if user is None:
            return None
        state = "a deactivated" if user.deactivated else "an active"
        return "", "", (f"{gives}, {state} Matrix account no fallback entry holds "
                        "(planb does not manage it)")
