"""What planb asks of ssh and Synapse: the tunnel command, room creation bodies, the
order of membership calls, and the announcement report's arithmetic."""

from __future__ import annotations

import shlex

from planb.directory.fallback_apply import ApplyReport, Failure
from planb.inventory import InventoryHost
from planb.messaging.announce import AnnounceReport
from planb.messaging.apply import Job, interleave, run_jobs
from planb.messaging.rooms import (
    DEPARTMENT_EVENT,
    RoomNames,
    open_department_room,
    room_body,
    rooms_to_open,
)
from planb.messaging.tunnel import tunnel_argv

ADMIN = "@planb-admin:planb.lab"


def test_tunnel_uses_the_inventory_connection_and_forwards_only_loopback() -> None:
    host = InventoryHost("fallback", "10.77.23.11", ("fallback_messaging",), {
        "ansible_host": "10.77.23.11", "ansible_user": "root", "ansible_port": 2222,
        "ansible_ssh_private_key_file": "/site/.planb/lab/id_ed25519",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o 'LogLevel=ERROR'"})
    argv = tunnel_argv(host.ssh, "/tmp/planb-admin-x/admin.sock")
    line = shlex.join(argv)
    assert argv[0] == "ssh"
    assert "-L /tmp/planb-admin-x/admin.sock:127.0.0.1:8008" in line
    assert "StreamLocalBindMask=0177" in line
    assert "-o StrictHostKeyChecking=no -o LogLevel=ERROR" in line
    assert "-i /site/.planb/lab/id_ed25519" in line and "-p 2222" in line
    assert "ExitOnForwardFailure=yes" in line and "BatchMode=yes" in line
    assert argv[-2:] == ["root@10.77.23.11", "cat >/dev/null"]


def test_department_room_is_unlisted_public_join_marked_and_unencrypted() -> None:
    """Join rule public (the user directory stores no member pairs), kept to the
    department by planb's Synapse module, which reads the department event."""
    body = room_body("dept-finances", "Direction des Finances", announcement=False,
                     admin_id=ADMIN)
    state = {e["type"]: e["content"] for e in body["initial_state"]}
    assert body["visibility"] == "private" and body["room_alias_name"] == "dept-finances"
    assert body["name"] == "Direction des Finances"
    assert state["m.room.join_rules"] == {"join_rule": "public"}
    assert state[DEPARTMENT_EVENT] == {"department": "Direction des Finances"}
    assert state["m.room.history_visibility"] == {"history_visibility": "shared"}
    assert state["m.room.guest_access"] == {"guest_access": "forbidden"}
    assert "m.room.encryption" not in state
    assert body["creation_content"] == {"m.federate": False}
    levels = body["power_level_content_override"]
    assert "users" not in levels and levels["kick"] == 50 and levels["invite"] == 50
    assert levels.get("events_default", 0) == 0  # agents talk in their department room


def test_announcement_room_is_read_only_for_agents_and_one_event_per_join() -> None:
    body = room_body("annonces", "Annonces", announcement=True, admin_id=ADMIN)
    state = {e["type"]: e["content"] for e in body["initial_state"]}
    assert body["visibility"] == "private"  # not listed in the room directory
    assert state["m.room.join_rules"] == {"join_rule": "public"}
    assert body["power_level_content_override"]["events_default"] == 50
    assert DEPARTMENT_EVENT not in state  # everyone's room: no department check


def test_room_names_own_departments_and_the_announcement_room() -> None:
    names = RoomNames("dept-", "annonces")
    assert names.owns("dept-finances") and names.owns("annonces")
    assert not names.owns("annonces-bis") and not names.owns("cafe")


def test_membership_calls_alternate_between_rooms() -> None:
    def jobs(room: str, n: int) -> list[Job]:
        return [("room_join", f"{room}{i}", lambda: None) for i in range(n)]

    order = [who for _, who, _ in interleave([jobs("a", 6), jobs("b", 1), jobs("c", 2)])]
    assert sorted(order) == sorted(["a0", "a1", "a2", "a3", "a4", "a5", "b0", "c0", "c1"])
    # the big room is spread over the whole run, not left for last
    positions = [i for i, who in enumerate(order) if who.startswith("a")]
    assert positions[0] == 0 and positions[-1] == len(order) - 1
    assert order.index("b0") < 6 and order.index("c1") > order.index("c0")
    for room in "abc":  # each room's own order is kept
        own = [who for who in order if who.startswith(room)]
        assert own == sorted(own)


def test_run_jobs_counts_successes_and_names_each_failure() -> None:
    from planb.messaging.admin_api import MatrixApiError

    def fail() -> None:
        raise MatrixApiError("join @x:planb.lab to !r: HTTP 403 M_FORBIDDEN")

    report = ApplyReport("matrix")
    seen: list[tuple[str, int, int]] = []
    jobs: list[Job] = [("room_join", f"u{i}", lambda: None) for i in range(10)]
    jobs.append(("room_join", "x", fail))
    run_jobs(jobs, report, lambda *a: seen.append(a), "members", len(jobs), workers=3)
    assert report.done == {"room_join": 10}
    assert report.failures == [Failure("room_join", "x",
                                       "join @x:planb.lab to !r: HTTP 403 M_FORBIDDEN")]
    assert seen[0] == ("members", 0, 11) and seen[-1] == ("members", 11, 11)


def test_announce_report_counts_what_was_missed() -> None:
    report = AnnounceReport("annonces", event_id="$e", active_agents=10, delivered=9,
                            joined_now=2, send_seconds=0.12, seconds=3.4)
    assert not report.ok
    text = report.summary()
    assert "9/10 active agents reached" in text and "2 joined just now" in text
    assert "1 not reached" in text
    assert AnnounceReport("annonces", event_id="$e", active_agents=3, delivered=3).ok
    assert not AnnounceReport("annonces", active_agents=0, delivered=0).ok  # never posted


class RoomsApi:
    """The admin API calls the room opening makes: a room list, state writes."""

    server_name = "planb.lab"

    def __init__(self, rooms: list[dict[str, object]]) -> None:
        self.listed, self.puts = rooms, []  # type: list[tuple[str, str, dict[str, object]]]

    def rooms(self) -> list[dict[str, object]]:
        return self.listed

    def put_state(self, room_id: str, event_type: str, content: dict[str, object]) -> None:
        self.puts.append((room_id, event_type, content))


def test_only_planbs_invite_only_department_rooms_are_opened() -> None:
    def room(rid: str, alias: str | None, rule: str, creator: str = ADMIN,
             name: str = "Finances") -> dict[str, object]:
        return {"room_id": rid, "canonical_alias": alias, "join_rules": rule,
                "creator": creator, "name": name}

    api = RoomsApi([
        room("!old", "#dept-finances:planb.lab", "invite"),
        room("!open", "#dept-rh:planb.lab", "public", name="RH"),
        room("!ann", "#annonces:planb.lab", "invite", name="Annonces"),
        room("!agent", "#dept-x:planb.lab", "invite", creator="@eve:planb.lab"),
        room("!dm", None, "invite"),
        room("!other", "#dept-y:elsewhere", "invite"),
        room("!cafe", "#cafe:planb.lab", "invite"),
    ])
    found = rooms_to_open(api, RoomNames("dept-", "annonces"), ADMIN)  # type: ignore[arg-type]
    assert found == {"!old": "Finances"}
    open_department_room(api, "!old", "Finances")  # type: ignore[arg-type]
    # the department event first: an open department room always has it
    assert api.puts == [("!old", DEPARTMENT_EVENT, {"department": "Finances"}),
                        ("!old", "m.room.join_rules", {"join_rule": "public"})]
