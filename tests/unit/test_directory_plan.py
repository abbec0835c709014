"""The sync plan: adds, updates, deactivations, reactivations, moves, rooms, at scale."""

from __future__ import annotations

import dataclasses
import random

from planb.directory.model import Agent, Rejection, SourceResult, password_fingerprint
from planb.directory.plan import (
    DISABLED,
    ENABLED_AGAIN,
    GONE,
    REJECTED_DISABLED,
    FieldChange,
    Plan,
    PlanOptions,
    compute_plan,
)
from planb.directory.targets import (
    FallbackEntry,
    FallbackState,
    MatrixState,
    MatrixUser,
    entry_for,
)
from planb.schema import Secret

FIN, RH = "Finances", "Ressources humaines"
ROOM_FIN, ROOM_RH = "dept-finances", "dept-ressources-humaines"


def agent(n: int, **changes: object) -> Agent:
    base = Agent(id=f"id-{n:05d}", login=f"agent{n}", given_name="Prénom", surname=f"Nom{n}",
                 display_name=f"Prénom Nom{n}", mail=f"agent{n}@grandlyon.example",
                 department=FIN if n % 2 else RH, title="Agent")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def source(*agents: Agent, rejections: tuple[Rejection, ...] = ()) -> SourceResult:
    return SourceResult("test.csv", tuple(agents), rejections)


def apply(plan: Plan, fallback: FallbackState, matrix: MatrixState, src: SourceResult
          ) -> tuple[FallbackState, MatrixState]:
    """What a correct apply leaves behind, computed from the plan alone (plus hashes)."""
    entries = dict(fallback.entries)
    by_id = {a.id: a for a in src.agents}
    for add in plan.ldap_adds:
        entries[add.agent.id] = entry_for(by_id[add.agent.id], add.localpart)
    for update in plan.ldap_updates:
        values = {c.field: frozenset(c.new) if c.field == "groups" else c.new
                  for c in update.changes}
        if update.password_changed:
            values["password_fingerprint"] = password_fingerprint(update.password_hash)
        entries[update.id] = dataclasses.replace(entries[update.id], **values)  # type: ignore
    for move in plan.moves:
        entries[move.id] = dataclasses.replace(entries[move.id], department=move.new)
    for change in plan.ldap_deactivations:
        entries[change.id] = dataclasses.replace(entries[change.id], enabled=False)
    for change in plan.ldap_reactivations:
        entries[change.id] = dataclasses.replace(entries[change.id], enabled=True)
    users = dict(matrix.users)
    rooms = {alias: set(members) for alias, members in matrix.rooms.items()}
    for create in plan.matrix_creates:
        users[create.localpart] = MatrixUser(create.localpart, create.display_name)
    for change in plan.matrix_deactivations:
        assert change.localpart is not None
        users[change.localpart] = dataclasses.replace(users[change.localpart], deactivated=True)
        for members in rooms.values():  # Synapse parts a deactivated user from every room
            members.discard(change.localpart)
    for change in plan.matrix_reactivations:
        assert change.localpart is not None
        users[change.localpart] = dataclasses.replace(users[change.localpart], deactivated=False)
    for name in plan.display_names:
        users[name.localpart] = dataclasses.replace(users[name.localpart], display_name=name.new)
    for room in plan.room_creates:
        rooms[room.alias] = set()
    for room_change in plan.room_changes:
        rooms[room_change.alias] |= set(room_change.joins)
        rooms[room_change.alias] -= set(room_change.leaves)
    return FallbackState.build(entries.values()), MatrixState.build(users.values(), rooms)


def synced(src: SourceResult, options: PlanOptions | None = None
           ) -> tuple[FallbackState, MatrixState]:
    plan = compute_plan(src, FallbackState(), MatrixState(), options)
    return apply(plan, FallbackState(), MatrixState(), src)


def test_from_empty_adds_enabled_agents_users_and_rooms() -> None:
    src = source(agent(1), agent(2), agent(3, enabled=False))
    plan = compute_plan(src, FallbackState(), MatrixState())
    assert [a.agent.login for a in plan.ldap_adds] == ["agent1", "agent2"]
    assert [(c.localpart, c.display_name) for c in plan.matrix_creates] == [
        ("agent1", "Prénom Nom1"), ("agent2", "Prénom Nom2")]
    assert [(r.alias, r.name) for r in plan.room_creates] == [(ROOM_FIN, FIN), (ROOM_RH, RH)]
    assert {c.alias: c.joins for c in plan.room_changes} == {ROOM_FIN: ("agent1",),
                                                            ROOM_RH: ("agent2",)}
    assert plan.ldap_deactivations == plan.matrix_deactivations == ()


def test_in_sync_gives_an_empty_plan() -> None:
    src = source(*(agent(n) for n in range(1, 6)), agent(6, enabled=False))
    fallback, matrix = synced(src)
    plan = compute_plan(src, fallback, matrix)
    assert plan.is_empty(), plan.summary()
    assert plan.summary()["ldap_add"] == 0


def test_attribute_updates_list_field_old_and_new() -> None:
    src = source(agent(1), agent(2))
    fallback, matrix = synced(src)
    changed = source(agent(1, mail="nouveau@grandlyon.example", groups=frozenset({"Cadres"})),
                     agent(2, display_name="Prénom Nom-Deux"))
    plan = compute_plan(changed, fallback, matrix)
    updates = {u.login: u.changes for u in plan.ldap_updates}
    assert updates["agent1"] == (
        FieldChange("mail", "agent1@grandlyon.example", "nouveau@grandlyon.example"),
        FieldChange("groups", (), ("Cadres",)))
    assert updates["agent2"] == (FieldChange("display_name", "Prénom Nom2", "Prénom Nom-Deux"),)
    assert [(d.localpart, d.old, d.new) for d in plan.display_names] == [
        ("agent2", "Prénom Nom2", "Prénom Nom-Deux")]


def test_password_change_is_detected_by_fingerprint() -> None:
    src = source(agent(1, password_hash=Secret("{SSHA}old")))
    fallback, matrix = synced(src)
    assert compute_plan(src, fallback, matrix).is_empty()
    plan = compute_plan(source(agent(1, password_hash=Secret("{SSHA}new"))), fallback, matrix)
    (update,) = plan.ldap_updates
    assert update.password_changed and update.changes == ()
    assert update.password_hash == "{SSHA}new"


def test_disabled_at_source_is_deactivated_not_deleted() -> None:
    src = source(agent(1), agent(2))
    fallback, matrix = synced(src)
    plan = compute_plan(source(agent(1), agent(2, enabled=False)), fallback, matrix)
    assert [(d.login, d.reason) for d in plan.ldap_deactivations] == [("agent2", DISABLED)]
    assert [(d.localpart, d.reason) for d in plan.matrix_deactivations] == [("agent2", DISABLED)]
    assert plan.room_changes == ()  # deactivation parts them from rooms; no extra leave
    assert plan.ldap_adds == plan.ldap_updates == ()


def test_deactivated_user_still_listed_in_a_room_is_left_to_synapse() -> None:
    """Synapse parts deactivated users in the background: a plan made meanwhile
    (the re-read right after an apply) must not ask for a leave."""
    src = source(agent(1), agent(2, enabled=False))
    fallback, matrix = synced(source(agent(1), agent(2)))
    users = {**matrix.users, "agent2": MatrixUser("agent2", "Prénom Nom2", deactivated=True)}
    fallback = FallbackState({i: dataclasses.replace(e, enabled=e.id != "id-00002")
                              for i, e in fallback.entries.items()})
    plan = compute_plan(src, fallback, MatrixState.build(users.values(), matrix.rooms))
    assert any("agent2" in members for members in matrix.rooms.values())
    assert plan.is_empty(), plan.summary()


def test_gone_from_source_is_deactivated_with_reason() -> None:
    src = source(agent(1), agent(2))
    fallback, matrix = synced(src)
    plan = compute_plan(source(agent(1)), fallback, matrix)
    assert [(d.id, d.reason) for d in plan.ldap_deactivations] == [("id-00002", GONE)]
    assert [(d.localpart, d.reason) for d in plan.matrix_deactivations] == [("agent2", GONE)]


def test_rejected_source_row_never_counts_as_gone() -> None:
    src = source(agent(1), agent(2))
    fallback, matrix = synced(src)
    rejected = Rejection("test.csv", "invalid mail 'x'", line=3, id="id-00002", login="agent2")
    plan = compute_plan(source(agent(1), rejections=(rejected,)), fallback, matrix)
    assert plan.ldap_deactivations == plan.matrix_deactivations == ()
    assert [k.login for k in plan.kept] == ["agent2"]
    assert plan.rejections == (rejected,)
    assert plan.is_empty()


def test_a_locked_leaver_whose_record_is_rejected_is_still_deactivated() -> None:
    """A lock at the primary wins over a bad mail on the same record: the rejection
    must not keep the leaver enabled on the fallback (LDAP and Matrix)."""
    src = source(agent(1), agent(2), agent(3))
    fallback, matrix = synced(src)
    locked = Rejection("primary", "invalid mail 'x'", entry="uid=agent2", id="id-00002",
                       login="agent2", disabled=True)
    unreadable_id = Rejection("primary", "objectGUID 'x' is not a UUID", entry="uid=agent3",
                              login="AGENT3", disabled=True)
    plan = compute_plan(source(agent(1), rejections=(locked, unreadable_id)), fallback, matrix)
    assert [(d.login, d.reason) for d in plan.ldap_deactivations] == [
        ("agent2", REJECTED_DISABLED), ("agent3", REJECTED_DISABLED)]
    assert [d.localpart for d in plan.matrix_deactivations] == ["agent2", "agent3"]
    assert plan.kept == ()
    fallback, matrix = apply(plan, fallback, matrix, src)
    again = compute_plan(source(agent(1), rejections=(locked, unreadable_id)), fallback, matrix)
    assert again.is_empty(), again.summary()  # stays locked, planned once
    assert {e.login: e.enabled for e in fallback.entries.values()} == {
        "agent1": True, "agent2": False, "agent3": False}


def test_reactivation_restores_ldap_matrix_and_room() -> None:
    src = source(agent(1), agent(2))
    fallback, matrix = synced(src)
    fallback, matrix = apply(compute_plan(source(agent(1)), fallback, matrix), fallback, matrix,
                             src)
    assert "agent2" not in matrix.rooms[ROOM_RH]
    plan = compute_plan(src, fallback, matrix)
    assert [(r.login, r.reason) for r in plan.ldap_reactivations] == [("agent2", ENABLED_AGAIN)]
    assert [r.localpart for r in plan.matrix_reactivations] == ["agent2"]
    assert [(c.alias, c.joins) for c in plan.room_changes] == [(ROOM_RH, ("agent2",))]


def test_department_move_changes_rooms() -> None:
    src = source(agent(1), agent(2))
    fallback, matrix = synced(src)
    plan = compute_plan(source(agent(1, department="Voirie"), agent(2)), fallback, matrix)
    assert [(m.login, m.old, m.new) for m in plan.moves] == [("agent1", FIN, "Voirie")]
    assert [r.alias for r in plan.room_creates] == ["dept-voirie"]
    changes = {c.alias: (c.joins, c.leaves) for c in plan.room_changes}
    assert changes == {ROOM_FIN: ((), ("agent1",)), "dept-voirie": (("agent1",), ())}
    assert plan.ldap_updates == ()  # the department travels in the move


def test_collision_reported_and_second_agent_not_provisioned() -> None:
    src = source(agent(1, login="Élodie"), agent(2, login="elodie"))
    plan = compute_plan(src, FallbackState(), MatrixState())
    assert [a.agent.id for a in plan.ldap_adds] == ["id-00001"]
    assert [c.localpart for c in plan.matrix_creates] == ["elodie"]
    (collision,) = plan.collisions
    assert (collision.kept_id, collision.refused_id) == ("id-00001", "id-00002")
    assert "not provisioned" in collision.reason


def test_accounts_planb_does_not_manage_are_left_alone() -> None:
    src = source(agent(1), agent(2, login="admin"))
    fallback, matrix = synced(source(agent(1)))
    admin = MatrixUser("admin", "Administrateur")
    rooms = {alias: members | {"admin"} for alias, members in matrix.rooms.items()}
    matrix = MatrixState.build([*matrix.users.values(), admin], rooms)
    plan = compute_plan(src, fallback, matrix)
    assert plan.ldap_adds == () and plan.matrix_creates == () and plan.display_names == ()
    assert [c.refused_login for c in plan.collisions] == ["admin"]
    assert plan.room_changes == ()  # the admin stays in the rooms


def test_rebuilt_fallback_reports_collisions_unless_told_to_adopt() -> None:
    src = source(agent(1), agent(2), agent(3, login="bot"), agent(4, enabled=False))
    _, matrix = synced(source(agent(1), agent(2), agent(4)))
    bot = MatrixUser("bot", "Robot", service=True)
    matrix = MatrixState.build([*matrix.users.values(), bot], matrix.rooms)
    empty = FallbackState()  # the fallback LDAP was rebuilt from nothing

    refused = compute_plan(src, empty, matrix)
    assert sorted(c.refused_id for c in refused.collisions) == ["id-00001", "id-00002",
                                                                "id-00003"]
    assert refused.ldap_adds == () and refused.matrix_creates == ()
    assert refused.matrix_deactivations == ()  # the leaver's account is not planb's to touch

    adopted = compute_plan(src, empty, matrix, PlanOptions(adopt=True))
    added = {a.agent.id: a.localpart for a in adopted.ldap_adds}
    assert added == {"id-00001": "agent1", "id-00002": "agent2"}
    assert adopted.matrix_creates == ()
    assert [c.refused_login for c in adopted.collisions] == ["bot"]  # never a service account
    # The leaver's account, orphaned by the rebuild, is found again and deactivated.
    assert [c.localpart for c in adopted.matrix_deactivations] == ["agent4"]
    assert {lp for change in adopted.room_changes for lp in change.joins} == set()


def test_announcement_room_holds_every_active_agent() -> None:
    options = PlanOptions(announcement_room="annonces", announcement_name="Annonces")
    src = source(agent(1), agent(2), agent(3, enabled=False))
    plan = compute_plan(src, FallbackState(), MatrixState(), options)
    changes = {c.alias: c.joins for c in plan.room_changes}
    assert changes["annonces"] == ("agent1", "agent2")
    fallback, matrix = apply(plan, FallbackState(), MatrixState(), src)
    plan = compute_plan(source(agent(1), agent(2, enabled=False)), fallback, matrix, options)
    assert plan.room_changes == ()  # the leaver is parted by deactivation


def test_missing_localpart_on_entry_is_written_once() -> None:
    src = source(agent(1))
    fallback, matrix = synced(src)
    bare = FallbackState.build(dataclasses.replace(e, localpart=None)
                               for e in fallback.entries.values())
    plan = compute_plan(src, bare, matrix)
    assert [u.changes for u in plan.ldap_updates] == [(FieldChange("localpart", None,
                                                                   "agent1"),)]
    assert plan.matrix_creates == ()


def test_nine_thousand_agents_with_churn() -> None:
    rng = random.Random(4)
    agents = [agent(n) for n in range(9000)]
    src = source(*agents)
    fallback, matrix = synced(src)
    assert len(fallback.entries) == 9000 and len(matrix.users) == 9000
    assert compute_plan(src, fallback, matrix).is_empty()
    picked = rng.sample(range(9000), 200)
    gone, disabled, moved, renamed = picked[:40], picked[40:80], picked[80:140], picked[140:]
    churned = {n: agents[n] for n in range(9000) if n not in gone}
    for n in disabled:
        churned[n] = dataclasses.replace(agents[n], enabled=False)
    for n in moved:
        churned[n] = dataclasses.replace(agents[n], department="Voirie")
    for n in renamed:
        churned[n] = dataclasses.replace(agents[n], surname="Renommé",
                                         display_name="Prénom Renommé")
    hires = [agent(n) for n in range(9000, 9090)]
    shuffled = [*churned.values(), *hires]
    rng.shuffle(shuffled)
    new_src = source(*shuffled)
    plan = compute_plan(new_src, fallback, matrix)
    counts = plan.summary()
    assert counts["ldap_add"] == counts["matrix_create"] == 90
    assert counts["ldap_deactivate"] == counts["matrix_deactivate"] == 80
    assert {d.id for d in plan.ldap_deactivations if d.reason == GONE} == {
        agents[n].id for n in gone}
    assert counts["department_move"] == 60
    assert counts["ldap_update"] == counts["matrix_display_name"] == 60
    assert counts["room_create"] == 1
    assert counts["room_join"] == 90 + 60 and counts["room_leave"] == 60
    assert [m.login for m in plan.moves] == sorted((agents[n].login for n in moved),
                                                   key=str.casefold)
    fallback, matrix = apply(plan, fallback, matrix, new_src)
    assert compute_plan(new_src, fallback, matrix).is_empty()


def test_plan_ignores_source_order() -> None:
    agents = [agent(n) for n in range(50)] + [agent(99, login="Agent1")]
    forward = compute_plan(source(*agents), FallbackState(), MatrixState())
    backward = compute_plan(source(*reversed(agents)), FallbackState(), MatrixState())
    assert forward == backward


def test_fallback_state_refuses_duplicate_ids() -> None:
    entry = FallbackEntry("id-1", "a", dn="uid=a,dc=x")
    try:
        FallbackState.build([entry, dataclasses.replace(entry, login="b", dn="uid=b,dc=x")])
    except ValueError as exc:
        assert "uid=a,dc=x" in str(exc) and "uid=b,dc=x" in str(exc)
    else:
        raise AssertionError("duplicate ids accepted")


def test_an_invite_only_department_room_is_opened_even_when_nothing_else_changes() -> None:
    """A synced site upgraded from invite-only department rooms: the next sync's plan
    is not empty, it opens them (never the announcement room), then nothing more."""
    options = PlanOptions(announcement_room="annonces", announcement_name="Annonces")
    src = source(*(agent(n) for n in range(1, 5)))
    fallback, matrix = synced(src, options)
    old = dataclasses.replace(matrix, closed=frozenset({ROOM_FIN, "annonces", "dept-gone"}))
    plan = compute_plan(src, fallback, old, options)
    assert [(o.alias, o.name) for o in plan.room_opens] == [("dept-finances", FIN),
                                                            ("dept-gone", "")]
    assert not plan.is_empty() and plan.summary()["room_open"] == 2
    assert compute_plan(src, fallback, matrix, options).is_empty()
