"""Rooms planb manages: one per department, and the announcement room.

Each room is found again by its alias (``#dept-<slug>:<server>``, ``#annonces:<server>``):
it is created once by planb-admin with that alias, and a second creation attempt
finds the alias taken and uses the room it points to, so a room is never duplicated.
A room behind one of these aliases that planb-admin did not create (an agent took the
alias first) is refused: no one is joined to it, and the sync reports it.

- Department rooms: not in the room directory, history visible to members
  (``shared``: someone joined later reads what was said before), name = department
  name, and the state event ``org.planb.department`` naming the department. Their
  join rule is ``public`` so that Synapse's user directory counts them as public
  rooms (one row per member, not one per *pair* of members: that table grew with
  the square of department sizes, issue 14); planb's Synapse module
  (``planb_guard_rooms``) refuses a join to a room holding that state event unless
  the fallback directory puts the user in that department (the sync's admin
  force-joins and invited users pass). planb-admin (the creator, power 100) joins
  and removes; agents talk (power 0 may post) but neither invite, kick nor change
  state. A department room made before (``invite``) is opened by the next sync:
  the department event first, then the join rule (:func:`open_department_room`).
- The announcement room: not in the room directory, read-only for agents
  (``events_default`` 50), history ``shared``, join rule ``public`` so a force-join
  is one event (an invite-only room costs an invite *and* a join per agent: the
  issue measured ~55 min instead of ~30 for 9,000 agents). Every agent belongs in it
  anyway; the server has closed registration and no federation.
- Encryption is off in both: planb-admin posts the announcement through the API
  and the drill probes read it; an encrypted room would need planb to hold and
  share Megolm keys with 9,000 devices. Agents' own rooms and DMs are encrypted by
  their clients as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from planb.messaging.admin_api import AdminApi, Json, MatrixApiError

log = logging.getLogger(__name__)

#: Read calls in flight when listing managed rooms and their members (one room's
#: lookups are independent of another's; the admin API client keeps a connection per
#: thread).
READERS = 8

ROOM_IN_USE = "M_ROOM_IN_USE"
#: The state event naming a department room's department (planb_guard_rooms reads it).
DEPARTMENT_EVENT = "org.planb.department"


@dataclass(frozen=True)
class RoomNames:
    """The aliases planb owns: department rooms by prefix, and the announcement room."""

    prefix: str = "dept-"
    announcement: str | None = "annonces"

    def owns(self, alias_localpart: str) -> bool:
        return alias_localpart.startswith(self.prefix) or alias_localpart == self.announcement


def room_body(alias_localpart: str, name: str, *, announcement: bool, admin_id: str,
              federate: bool = False) -> Json:
    """The ``createRoom`` request for a managed room (see the module docstring)."""
    if announcement:
        topic = ("Annonces officielles de la messagerie de secours : lecture seule, "
                 "chaque agent en est membre.")
        join_rule, levels = "public", {"events_default": 50}
    else:
        topic = (f"Salon du service « {name} » : ses membres suivent l'annuaire "
                 "(mis à jour chaque nuit par planb).")
        join_rule, levels = "public", {}
    department = [] if announcement else [
        {"type": DEPARTMENT_EVENT, "state_key": "", "content": {"department": name}}]
    return {
        "preset": "private_chat",
        "visibility": "private",
        "room_alias_name": alias_localpart,
        "name": name,
        "topic": topic,
        "creation_content": {"m.federate": federate},
        "initial_state": [
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": join_rule}},
            {"type": "m.room.history_visibility", "state_key": "",
             "content": {"history_visibility": "shared"}},
            {"type": "m.room.guest_access", "state_key": "",
             "content": {"guest_access": "forbidden"}},
            *department,
        ],
        # No "users": the creator (planb-admin) has full power by default, and room
        # version 12 refuses a creator listed there.
        "power_level_content_override": {
            "invite": 50, "kick": 50, "ban": 50, "redact": 50, "state_default": 50,
            "users_default": 0, **levels},
    }


def managed_rooms(api: AdminApi, names: RoomNames, admin_id: str) -> dict[str, str]:
    """Alias localpart -> room ID of every room planb owns on the server.

    Candidates are rooms planb-admin created whose canonical alias is one of ours
    (so a department room whose department emptied is still found and emptied);
    each alias is then resolved, and the room it points to is the one used.
    """
    suffix = f":{api.server_name}"
    candidates: set[str] = set()
    for room in api.rooms():
        alias = room.get("canonical_alias") or ""
        if room.get("creator") != admin_id or not alias.startswith("#") \
                or not alias.endswith(suffix):
            continue
        local = alias[1:-len(suffix)]
        if names.owns(local):
            candidates.add(local)
    if names.announcement:
        candidates.add(names.announcement)
    ordered = sorted(candidates)
    with ThreadPoolExecutor(READERS, thread_name_prefix="matrix-read") as pool:
        resolved = pool.map(api.resolve_alias, ordered)
        return {alias: room_id for alias, room_id in zip(ordered, resolved, strict=True)
                if room_id is not None}


def room_members(api: AdminApi, rooms: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """Alias localpart -> localparts of the local users joined to it."""

    def local_members(room_id: str) -> frozenset[str]:
        local = (api.localpart(uid) for uid in api.members(room_id))
        return frozenset(lp for lp in local if lp is not None)

    aliases = list(rooms)
    with ThreadPoolExecutor(READERS, thread_name_prefix="matrix-read") as pool:
        found = pool.map(local_members, [rooms[a] for a in aliases])
        return dict(zip(aliases, found, strict=True))


class NotPlanbsRoom(MatrixApiError):
    """A managed alias that points to a room planb did not create: refused, never used."""


def check_planbs_room(api: AdminApi, alias_localpart: str, room_id: str, admin_id: str
                      ) -> None:
    """Refuse a room planb cannot use for ``alias_localpart``.

    - created by someone else (an agent who took ``#dept-...`` or ``#annonces`` first,
      from any Matrix client): planb would force-join a department, or everyone, into
      a room that person owns and moderates; :class:`NotPlanbsRoom`;
    - left half-made (Synapse gave its alias out, then its creation failed): it has
      no join rules, and joins to it would fail one by one.
    """
    details = api.room(room_id)
    shown = f"{api.alias_id(alias_localpart)} ({room_id})"
    creator = details.get("creator")
    if creator != admin_id:
        raise NotPlanbsRoom(
            f"room {shown} was created by {creator or 'an unknown user'}, not by planb "
            f"({admin_id}): planb neither uses it nor joins anyone to it; remove the alias "
            "or the room (DELETE /_synapse/admin/v1/rooms/<id>) and run the sync again")
    if details.get("join_rules") is None:
        raise MatrixApiError(
            f"room {shown} was left half-created (no join rules): delete it (DELETE "
            "/_synapse/admin/v1/rooms/<id>) and run the sync again")


def ensure_room(api: AdminApi, alias_localpart: str, name: str, *, announcement: bool,
                admin_id: str, federate: bool = False) -> tuple[str, bool]:
    """The room with this alias, created if missing: (room ID, created).

    An alias that already points to a room planb did not create raises
    :class:`NotPlanbsRoom` (see :func:`check_planbs_room`)."""
    existing = api.resolve_alias(alias_localpart)
    if existing is not None:
        check_planbs_room(api, alias_localpart, existing, admin_id)
        return existing, False
    body = room_body(alias_localpart, name, announcement=announcement, admin_id=admin_id,
                     federate=federate)
    try:
        room_id = api.create_room(body, alias_localpart)
    except MatrixApiError as exc:
        if exc.errcode != ROOM_IN_USE:
            raise
        # Someone (an earlier, interrupted run) made it in between: use that one.
        room_id = api.resolve_alias(alias_localpart) or ""
        if not room_id:
            raise
        check_planbs_room(api, alias_localpart, room_id, admin_id)
        return room_id, False
    log.info("created room %s (%s)", api.alias_id(alias_localpart), room_id)
    return room_id, True


def open_department_room(api: AdminApi, room_id: str, department: str) -> None:
    """Move a department room made invite-only over to the public join rule.

    The department event goes first, so an open department room always has it
    (planb's Synapse module keeps it to its members from then on); both writes
    are idempotent, so a run cut off between them is finished by the next."""
    api.put_state(room_id, DEPARTMENT_EVENT, {"department": department})
    api.put_state(room_id, "m.room.join_rules", {"join_rule": "public"})


def rooms_to_open(api: AdminApi, names: RoomNames, admin_id: str) -> dict[str, str]:
    """Room ID -> department of planb's department rooms still on another join rule.

    Read from the admin API's room list (its ``join_rules`` and ``name``: agents
    cannot change the name, power 0 < ``state_default``); one paged listing."""
    suffix = f":{api.server_name}"
    found: dict[str, str] = {}
    for room in api.rooms():
        alias = room.get("canonical_alias") or ""
        local = alias[1:-len(suffix)] if alias.startswith("#") and alias.endswith(suffix) \
            else ""
        if room.get("creator") != admin_id or not local or local == names.announcement \
                or not local.startswith(names.prefix):
            continue
        if room.get("join_rules") not in ("public", None) and room.get("name"):
            found[str(room["room_id"])] = str(room["name"])
    return found
