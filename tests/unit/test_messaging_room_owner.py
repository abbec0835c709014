"""A managed alias that points to a room planb did not create is refused, not adopted.

An agent who creates ``#dept-…`` (or ``#annonces``) before planb does owns that room;
adopting it would force-join the whole department into a room the agent moderates.
The real :class:`AdminApi` and :class:`MatrixApplier` run against the scripted local
HTTP server of test_messaging_admin_api.py, which answers what Synapse answers for such
a room; the lab test (tests/integration/test_rename_chain_lab.py) makes a real agent
take the alias on the lab's Synapse.
"""

from __future__ import annotations

import json

import pytest

from planb.directory.plan import Plan, RoomChange, RoomOpen
from planb.messaging.announce import announce_with
from planb.messaging.apply import MatrixApplier
from planb.messaging.rooms import NotPlanbsRoom, RoomNames, ensure_room
from tests.unit import test_messaging_admin_api as scripted
from tests.unit.test_messaging_admin_api import Script, client

ADMIN = "@planb-admin:planb.lab"
MALLORY = "@mallory:planb.lab"
server = scripted.server  # the scripted Synapse stand-in, as a fixture here too


def details(room_id: str, creator: str) -> tuple[int, dict[str, object]]:
    return 200, {"room_id": room_id, "creator": creator, "join_rules": "invite"}


def test_ensure_room_refuses_a_room_an_agent_created_naming_alias_and_creator(
        server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, {"room_id": "!taken:planb.lab"}), details("!taken:planb.lab",
                                                                       MALLORY)]
    with pytest.raises(NotPlanbsRoom) as caught:
        ensure_room(client(url, []), "dept-finances", "Finances", announcement=False,
                    admin_id=ADMIN)
    message = caught.value.message
    assert "#dept-finances:planb.lab" in message and MALLORY in message, message
    assert "!taken:planb.lab" in message
    assert [s[0] for s in script.seen] == ["GET", "GET"]  # read only: nothing created


def test_ensure_room_uses_planbs_own_room(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, {"room_id": "!ours:planb.lab"}), details("!ours:planb.lab", ADMIN)]
    assert ensure_room(client(url, []), "dept-finances", "Finances", announcement=False,
                       admin_id=ADMIN) == ("!ours:planb.lab", False)


def test_apply_joins_no_one_to_the_taken_room_and_goes_on_with_the_others(
        server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, {"room_id": "!ours:planb.lab"}), details("!ours:planb.lab", ADMIN),
                      (200, {"room_id": "!taken:planb.lab"}),
                      details("!taken:planb.lab", MALLORY)]
    plan = Plan("test", 0, 0, room_changes=(
        RoomChange("annonces", "Annonces", ("agent1", "agent2")),
        RoomChange("dept-finances", "Finances", ("agent1",))))
    report = MatrixApplier(client(url, []), RoomNames(), ADMIN, workers=1).apply(
        plan, lambda phase, done, total: None)
    joins = [(path, json.loads(body)["user_id"]) for method, path, _, body in script.seen
             if "/join/" in path]
    assert sorted(joins) == [("/_synapse/admin/v1/join/%21ours%3Aplanb.lab", f"@{lp}:planb.lab")
                             for lp in ("agent1", "agent2")]
    (failure,) = report.failures
    assert (failure.kind, failure.who) == ("room_refused", "dept-finances")
    assert MALLORY in failure.reason
    assert report.done == {"room_join": 2}


def test_the_announcement_is_not_posted_to_a_room_an_agent_created(
        server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, {"room_id": "!taken:planb.lab"}), details("!taken:planb.lab",
                                                                       MALLORY)]
    report = announce_with(client(url, []), "La messagerie de secours est ouverte.")
    (failure,) = report.failures
    assert MALLORY in failure.reason and "#annonces:planb.lab" in failure.reason
    assert report.event_id == "" and not report.ok
    assert [s[0] for s in script.seen] == ["GET", "GET"]  # nothing sent, no one joined


def test_apply_opens_planbs_invite_only_room_department_event_first_never_an_agents(
        server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, {"room_id": "!ours:planb.lab"}), details("!ours:planb.lab", ADMIN),
                      (200, {"event_id": "$1"}), (200, {"event_id": "$2"}),
                      (200, {"room_id": "!taken:planb.lab"}),
                      details("!taken:planb.lab", MALLORY)]
    plan = Plan("test", 0, 0, room_opens=(RoomOpen("dept-finances", "Finances"),
                                          RoomOpen("dept-rh", "RH")))
    report = MatrixApplier(client(url, []), RoomNames(), ADMIN, workers=1).apply(
        plan, lambda phase, done, total: None)
    puts = [(path.rsplit("/state/", 1)[1], json.loads(body))
            for method, path, _, body in script.seen if method == "PUT"]
    assert puts == [("org.planb.department/", {"department": "Finances"}),
                    ("m.room.join_rules/", {"join_rule": "public"})]
    assert all("taken" not in path for _, path, _, _ in script.seen if "/state/" in path)
    (failure,) = report.failures
    assert (failure.kind, failure.who) == ("room_open", "dept-rh") and MALLORY in failure.reason
    assert report.done == {"room_open": 1}
