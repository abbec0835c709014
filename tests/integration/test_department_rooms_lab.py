"""Department rooms on the real lab Synapse: public to the user directory, kept to their
members by planb's module and the fallback directory (issue 14, "the user directory's
square").

The module activates the fallback (agents log in through nginx) and puts it back in
standby at its end; every room it changes is put back as the sync leaves it.

- every department room is public (join rule), unlisted, holds planb's department
  event, and its members are exactly the directory's agents of that department;
- a stranger (an agent of another department) cannot join it, by room ID, by alias
  or by the room's own join endpoint, nor read its messages, state or members; a
  member who leaves comes back by the directory's word alone (no invite);
- a member can neither rewrite the department event nor the join rule;
- the user directory finds a colleague of another department by name.

What the user directory stores, and the sync opening an older invite-only room, are
in test_department_rooms_sync_lab.py (standby: the sync runs there).
"""

from __future__ import annotations

import shlex
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from planb.config import SiteConfig
from planb.directory.sync import Sync
from planb.messaging.admin_api import AdminApi
from planb.messaging.rooms import DEPARTMENT_EVENT, managed_rooms
from planb.messaging.sync_target import SynapseTarget, target_for
from planb.messaging.tunnel import messaging_host
from planb.verify.connections import HostConnections
from tests.integration.conftest import LabSession
from tests.integration.lab_state import planb_cli
from tests.integration.test_active_fallback_lab import Agents, https, room_id, token_of
from tests.integration.test_active_fallback_lab import address as address  # noqa: F401
from tests.integration.test_active_fallback_lab import agents as agents  # noqa: F401

pytestmark = pytest.mark.lab
PSQL = "runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d synapse -c "


@pytest.fixture(scope="module")
def active_lab(synced_lab: LabSession) -> Iterator[LabSession]:
    code, out = planb_cli(synced_lab, "failover", "activate", "--reason",
                          "integration tests: department rooms", "--yes")
    assert code == 0, out
    try:
        yield synced_lab
    finally:
        code, out = planb_cli(synced_lab, "failover", "deactivate", "--reason",
                              "integration tests: department rooms done", "--yes")
        assert code == 0, out


@pytest.fixture(scope="module")
def site(active_lab: LabSession) -> SiteConfig:
    return active_lab.site


@pytest.fixture(scope="module")
def target(site: SiteConfig) -> SynapseTarget:
    found = target_for(site)
    assert found is not None
    return found


def sql(site: SiteConfig, query: str) -> str:
    host = messaging_host(site)
    assert host is not None
    return HostConnections().get(host).check_output(PSQL + shlex.quote(query)).strip()


def directory_done(site: SiteConfig, timeout: float = 300) -> None:
    """Wait until Synapse's user directory has handled every event."""
    deadline = time.monotonic() + timeout
    query = ("SELECT (SELECT stream_id FROM user_directory_stream_pos) >= "
             "(SELECT COALESCE(MAX(stream_ordering), -1) FROM events)")
    while sql(site, query) != "t":
        assert time.monotonic() < deadline, "the user directory did not catch up"
        time.sleep(2)


def department_rooms(target: SynapseTarget) -> dict[str, str]:
    """Alias localpart -> room ID of every department room."""
    with target.api() as api:
        return {alias: api.resolve_alias(alias) or ""
                for alias in _aliases(api, target)}


def _aliases(api: AdminApi, target: SynapseTarget) -> list[str]:
    rooms = managed_rooms(api, target.names, target.admin_id)
    return sorted(a for a in rooms if a != target.names.announcement)


def path(room: str, tail: str) -> str:
    return f"/_matrix/client/v3/rooms/{urllib.parse.quote(room, safe='')}/{tail}"


def test_department_rooms_are_public_marked_and_hold_their_department(
        site: SiteConfig, target: SynapseTarget) -> None:
    entries = Sync(site).read_fallback().entries.values()
    wanted: dict[str, set[str]] = {}
    for entry in entries:
        if entry.enabled and entry.localpart and entry.department:
            wanted.setdefault(entry.department, set()).add(entry.localpart)
    rooms = department_rooms(target)
    assert rooms
    with target.api() as api:
        for alias, rid in rooms.items():
            details = api.room(rid)
            assert details["join_rules"] == "public" and details["public"] is False, details
            state = api.request("GET", f"/_synapse/admin/v1/rooms/{rid}/state",
                                what="state")["state"]
            marker = [e for e in state if e["type"] == DEPARTMENT_EVENT]
            assert [e["sender"] for e in marker] == [target.admin_id], alias
            department = marker[0]["content"]["department"]
            members = {api.localpart(u) for u in api.members(rid)} - {"planb-admin"}
            assert members == wanted.get(department, set()), alias


def test_a_stranger_cannot_join_nor_read_a_department_room(
        site: SiteConfig, address: str, agents: Agents) -> None:  # noqa: F811
    stranger = token_of(site, address, agents.one)
    member = token_of(site, address, agents.other)
    alias = agents.rooms[agents.other.department]
    full = urllib.parse.quote(f"#{alias}:{site.matrix.server_name}", safe="")
    room = room_id(site, address, alias, member)
    for how in (f"/_matrix/client/v3/join/{full}",
                f"/_matrix/client/v3/join/{urllib.parse.quote(room, safe='')}",
                path(room, "join")):
        status, answer = https(site, address, "POST", how, {}, token=stranger)
        assert (status, answer.get("errcode")) == (403, "M_FORBIDDEN"), (how, answer)
    for tail in ("messages?dir=b&limit=10", "state", "members", "joined_members"):
        status, answer = https(site, address, "GET", path(room, tail), token=stranger)
        assert status == 403, (tail, status, answer)
    status, members = https(site, address, "GET", path(room, "joined_members"), token=member)
    assert status == 200, members
    one = f"@{agents.localparts[agents.one.login]}:{site.matrix.server_name}"
    assert one not in members["joined"]  # type: ignore[operator]


def test_a_member_who_left_comes_back_by_the_directorys_word(
        site: SiteConfig, address: str, agents: Agents) -> None:  # noqa: F811
    member = token_of(site, address, agents.other)
    alias = agents.rooms[agents.other.department]
    room = room_id(site, address, alias, member)
    status, answer = https(site, address, "POST", path(room, "leave"), {}, token=member)
    assert status == 200, answer
    full = urllib.parse.quote(f"#{alias}:{site.matrix.server_name}", safe="")
    status, answer = https(site, address, "POST", f"/_matrix/client/v3/join/{full}", {},
                           token=member)
    assert status == 200, answer  # no invite: the module asked the directory


def test_a_member_can_rewrite_neither_the_department_nor_the_join_rule(
        site: SiteConfig, address: str, agents: Agents) -> None:  # noqa: F811
    member = token_of(site, address, agents.other)
    room = room_id(site, address, agents.rooms[agents.other.department], member)
    for event_type, content in ((DEPARTMENT_EVENT, {"department": agents.one.department}),
                                ("m.room.join_rules", {"join_rule": "invite"})):
        status, answer = https(site, address, "PUT", path(room, f"state/{event_type}/"),
                               content, token=member)
        assert (status, answer.get("errcode")) == (403, "M_FORBIDDEN"), (event_type, answer)


def test_the_directory_finds_a_colleague_of_another_department(
        site: SiteConfig, address: str, agents: Agents) -> None:  # noqa: F811
    token = token_of(site, address, agents.one)
    status, answer = https(site, address, "POST", "/_matrix/client/v3/user_directory/search",
                           {"search_term": agents.other.display_name, "limit": 50},
                           token=token)
    assert status == 200, answer
    two = f"@{agents.localparts[agents.other.login]}:{site.matrix.server_name}"
    results = answer["results"]
    assert isinstance(results, list)
    assert two in [r["user_id"] for r in results], answer
