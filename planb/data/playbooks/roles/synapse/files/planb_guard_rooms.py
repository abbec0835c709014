"""planb's Synapse module: who may join a department room (the fallback directory says).

Department rooms have the join rule ``public`` (never listed in the room directory),
so Synapse's user directory counts them as public rooms: one
``users_in_public_rooms`` row per member instead of a ``users_who_share_private_rooms``
row per *pair* of members, a cost that grew with the square of department sizes
(issue 14). What kept them to their members, the ``invite`` join rule, is this
check instead, on Synapse's ``user_may_join_room`` spam-checker callback:

- a department room is one holding the state event :data:`MARKER` (state key ``""``)
  sent by planb's admin account, whose content names the department
  (``{"department": "Direction des Finances"}``); planb's sync writes it when it
  creates the room, or before it opens an older invite-only room (so an open
  department room always has it). Agents (power 0) cannot send state (50);
- a join by planb's admin API (the sync's force-join: the HTTP request is
  authenticated as planb's admin) or of an invited user is allowed;
- any other join is allowed only when the fallback directory holds exactly one
  ``planbAgent`` entry with that Matrix localpart, not disabled (planb's leaver
  lock), whose ``departmentNumber`` is the room's department, compared exactly
  (as stored: no case folding). The name never reaches an LDAP filter;
- the directory unreachable: refused (fail closed), and logged.

Every other room is left to Synapse's own rules. Refusals log one INFO line
starting with :data:`REFUSED`.
"""

import logging
from collections.abc import Callable
from typing import Any

from ldap3.utils.conv import escape_filter_chars
from planb_guard_directory import PERMANENT_LOCK, DirectoryUnavailable

logger = logging.getLogger("planb_ldap_guard")

#: The state event that makes a room a department room (planb's sync writes it).
MARKER = "org.planb.department"
REFUSED = "planb guard refused a department room join"


def _localpart(user_id: str, server: str) -> str | None:
    """``@lp:server`` -> ``lp`` for a user of this server, else None."""
    if not user_id.startswith("@") or ":" not in user_id:
        return None
    localpart, user_server = user_id[1:].split(":", 1)
    return localpart if user_server == server else None


class DepartmentRooms:
    """The department rooms' join check (see the module docstring)."""

    def __init__(self, api: Any, directory: Callable[[], Any], admin_id: str) -> None:
        #: ``directory()`` gives the guard's current Directory (tests swap it).
        self._api, self._directory, self._admin_id = api, directory, admin_id
        self._server = api.server_name

    async def department(self, room_id: str) -> str | None:
        """The department a room belongs to, or None when it is not a department room."""
        state = await self._api.get_room_state(room_id, [(MARKER, "")])
        event = state.get((MARKER, ""))
        if event is None or event.sender != self._admin_id:
            return None  # no marker, or one an agent wrote in their own room
        name = event.content.get("department")
        return name if isinstance(name, str) and name else None

    async def refusal(self, user_id: str, room_id: str, is_invited: bool,
                      entity: str | None) -> str | None:
        """Why ``user_id`` may not join ``room_id`` (None: Synapse's rules decide).

        ``entity``: who authenticated the HTTP request (None: Synapse's own work).
        """
        if entity == self._admin_id or is_invited:
            return None
        department = await self.department(room_id)
        if department is None:
            return None
        localpart = _localpart(user_id, self._server)
        if localpart is None:
            return self._refuse(user_id, room_id, "not a user of this server")
        try:
            entries = await self._api.defer_to_thread(
                self._directory().search, f"(planbLocalpart={escape_filter_chars(localpart)})")
        except DirectoryUnavailable:
            return self._refuse(user_id, room_id, "directory unavailable")
        except Exception as exc:  # noqa: BLE001 - fail closed, and say so
            return self._refuse(user_id, room_id,
                                f"directory search failed: {type(exc).__name__}")
        why = _not_member(entries, localpart, department)
        return self._refuse(user_id, room_id, why) if why else None

    @staticmethod
    def _refuse(user_id: str, room_id: str, why: str) -> str:
        logger.info("%s: %s to %s: %s", REFUSED, user_id, room_id, why)
        return why


def _not_member(entries: Any, localpart: str, department: str) -> str | None:
    """Why the directory's answer does not make ``localpart`` a member, or None."""
    if len(entries) != 1:
        return "no directory entry" if not entries else "several directory entries"
    entry = entries[0]
    if not entry.is_agent or (entry.localpart or "").lower() != localpart.lower():
        return "not an agent's entry"
    if (entry.locked_time or "").strip() == PERMANENT_LOCK:
        return "disabled in the directory"
    if department not in entry.departments:
        return "not in this department"
    return None

