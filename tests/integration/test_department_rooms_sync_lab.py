"""Department rooms and Synapse's user directory on the real lab, in standby (issue 14).

- Synapse stores no member pairs (``users_who_share_private_rooms``) for department
  rooms, one ``users_in_public_rooms`` row per member instead (planb's admin, a
  support account, is in neither);
- a department room made invite-only, as planb made them before, gets a row per
  ordered pair of members; the next ``planb sync`` plans to open it (even with
  nothing else to change), opens it, and the pairs go.

The room is put back as the sync leaves it whatever happens.
"""

from __future__ import annotations

import pytest

from planb.directory.plan import RoomOpen
from planb.directory.sync import Sync
from planb.messaging.rooms import DEPARTMENT_EVENT, open_department_room
from planb.messaging.sync_target import SynapseTarget, target_for
from tests.integration.conftest import LabSession
from tests.integration.test_department_rooms_lab import department_rooms, directory_done, sql

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def target(synced_lab: LabSession) -> SynapseTarget:
    found = target_for(synced_lab.site)
    assert found is not None
    return found


def test_no_member_pairs_for_department_rooms_until_one_is_made_invite_only_again(
        synced_lab: LabSession, target: SynapseTarget) -> None:
    site = synced_lab.site
    rooms = department_rooms(target)
    ids = ",".join(f"'{rid}'" for rid in rooms.values())
    directory_done(site)
    pairs = f"SELECT count(*) FROM users_who_share_private_rooms WHERE room_id IN ({ids})"
    assert sql(site, pairs) == "0"
    rows = sql(site, "SELECT room_id, count(*) FROM users_in_public_rooms WHERE room_id "
                     f"IN ({ids}) GROUP BY room_id").splitlines()
    sizes = {rid: int(count) for rid, count in (row.split("|") for row in rows)}
    with target.api() as api:
        members = {rid: len(api.members(rid)) - 1 for rid in rooms.values()}
    assert sizes == {rid: n for rid, n in members.items() if n}
    # As planb made them before: invite-only, no department event. Pairs appear...
    rid = min((r for r in sizes if sizes[r] >= 3), key=lambda r: (sizes[r], r))
    alias = next(a for a, r in rooms.items() if r == rid)  # a small room: quick pairs
    one_room = f"SELECT count(*) FROM users_who_share_private_rooms WHERE room_id = '{rid}'"
    with target.api() as api:
        n, name = sizes[rid], str(api.room(rid)["name"])
        api.put_state(rid, "m.room.join_rules", {"join_rule": "invite"})
        api.put_state(rid, DEPARTMENT_EVENT, {})
    try:
        directory_done(site)
        assert int(sql(site, one_room)) == n * (n - 1), alias  # every ordered pair
        # ... and the next sync opens the room again: they go.
        result = Sync(site, matrix=target).apply(force=True)
        assert result is not None
        assert result.applied.plan.room_opens == (RoomOpen(alias, name),)
        assert result.reports[-1].done.get("room_open") == 1, result.reports[-1]
        assert result.remaining.room_opens == ()
        directory_done(site)
        assert sql(site, one_room) == "0" and sql(site, pairs) == "0"
        with target.api() as api:
            assert api.room(rid)["join_rules"] == "public"
    finally:  # as the sync leaves it, whatever happened above
        with target.api() as api:
            open_department_room(api, rid, name)
