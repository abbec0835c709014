"""What planb asks of ssh and Synapse: the tunnel command, room creation bodies, the
order of membership calls, and the announcement report's arithmetic."""

from __future__ import annotations

import shlex

from planb.directory.fallback_apply import ApplyReport, Failure
from planb.inventory import InventoryHost
from planb.messaging.announce import AnnounceReport
from planb.messaging.apply import Job, interleave, run_jobs
from planb.messaging.rooms import RoomNames, room_body
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


def test_department_room_is_private_invite_only_and_unencrypted() -> None:
    body = room_body("dept-finances", "Direction des Finances", announcement=False,
                     admin_id=ADMIN)
    state = {e["type"]: e["content"] for e in body["initial_state"]}
    assert body["visibility"] == "private" and body["room_alias_name"] == "dept-finances"
    assert body["name"] == "Direction des Finances"
    assert state["m.room.join_rules"] == {"join_rule": "invite"}
    assert state["m.room.history_visibility"] == {"history_visibility": "shared"}
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
