"""Renames onto a login or localpart another agent's account holds: collisions, not updates.

The chain from issue 11: Y ``mdupont`` -> ``mmartin`` (Y keeps the localpart
``mdupont``), later X renamed to ``mdupont``. Renaming X's entry would let anything that
turns a login into ``@<login>`` open Y's account; so the plan refuses it, names both
agents, and X keeps their login on the fallback (their other changes still apply).
"""

from __future__ import annotations

from planb.directory.fallback_ldap import entry_jobs
from planb.directory.model import Agent
from planb.directory.plan import FieldChange, Plan, compute_plan
from planb.directory.targets import FallbackState, MatrixState, MatrixUser
from tests.unit.test_directory_plan import agent, apply, source, synced

Y, X = "id-00001", "id-00002"


def x(**changes: object) -> Agent:
    """Agent X, login ``xdurand`` unless ``changes`` say otherwise."""
    return agent(2, **{"login": "xdurand", **changes})


def logins_changed(plan: Plan) -> dict[str, tuple[object, object]]:
    """Agent id -> (old, new) login for every rename the plan would apply."""
    return {u.id: (c.old, c.new) for u in plan.ldap_updates for c in u.changes
            if c.field == "login"}


def renamed(fallback: FallbackState, matrix: MatrixState, *agents: Agent
            ) -> tuple[Plan, FallbackState, MatrixState]:
    """Plan ``agents`` against the targets, then what a correct apply leaves."""
    src = source(*agents)
    plan = compute_plan(src, fallback, matrix)
    return (plan, *apply(plan, fallback, matrix, src))


def test_the_rename_chain_plans_the_second_rename_as_a_collision() -> None:
    fallback, matrix = synced(source(agent(1, login="mdupont"), x()))
    plan, fallback, matrix = renamed(fallback, matrix, agent(1, login="mmartin"),
                                     x())
    assert logins_changed(plan) == {Y: ("mdupont", "mmartin")} and plan.collisions == ()
    assert fallback.entries[Y].localpart == "mdupont"  # Y keeps their Matrix account

    plan, fallback, matrix = renamed(fallback, matrix, agent(1, login="mmartin"),
                                     x(login="mdupont"))
    assert logins_changed(plan) == {}
    assert entry_jobs(plan) == {}  # nothing to write: X's entry keeps uid=xdurand
    (collision,) = plan.collisions
    assert (collision.refused_id, collision.refused_login, collision.keeps_login) == (
        X, "mdupont", "xdurand")
    assert (collision.kept_id, collision.kept_login, collision.localpart) == (
        Y, "mmartin", "mdupont")
    for named in ("'xdurand'", "'mdupont'", "'mmartin'", X, Y, "not applied"):
        assert named in collision.reason, (named, collision.reason)
    assert fallback.entries[X].login == "xdurand"
    # Stable: every later plan reports it again and changes nothing.
    again = compute_plan(source(agent(1, login="mmartin"), x(login="mdupont")),
                         fallback, matrix)
    assert again.is_empty() and again.collisions == plan.collisions


def test_the_refused_agents_other_changes_still_apply() -> None:
    fallback, matrix = synced(source(agent(1, login="mdupont"), x()))
    _, fallback, matrix = renamed(fallback, matrix, agent(1, login="mmartin"), x())
    plan = compute_plan(source(agent(1, login="mmartin"),
                               x(login="mdupont", mail="m.dupont@grandlyon.example")),
                        fallback, matrix)
    (update,) = plan.ldap_updates
    assert (update.id, update.login) == (X, "xdurand")
    assert update.changes == (FieldChange("mail", "agent2@grandlyon.example",
                                          "m.dupont@grandlyon.example"),)
    assert [c.refused_id for c in plan.collisions] == [X]


def test_a_rename_onto_the_login_a_leavers_entry_keeps_is_a_collision() -> None:
    # Y: first 'jean' (localpart jean), renamed 'mdupont', then leaves: their locked
    # entry keeps uid=mdupont, and no account has the localpart 'mdupont'.
    fallback, matrix = synced(source(agent(1, login="jean"), x()))
    _, fallback, matrix = renamed(fallback, matrix, agent(1, login="mdupont"), x())
    _, fallback, matrix = renamed(fallback, matrix, agent(1, login="mdupont", enabled=False),
                                  x())
    assert "mdupont" not in matrix.users and not fallback.entries[Y].enabled
    plan = compute_plan(source(agent(1, login="mdupont", enabled=False),
                               x(login="MDupont")), fallback, matrix)
    assert logins_changed(plan) == {}
    (collision,) = plan.collisions
    assert (collision.kept_id, collision.refused_id) == (Y, X)
    assert "already gives the login 'mdupont'" in collision.reason
    assert "deactivated" in collision.reason


def test_a_rename_onto_a_deactivated_account_no_entry_holds_is_a_collision() -> None:
    fallback, matrix = synced(source(x()))
    gone = MatrixUser("mdupont", "M. Dupont", deactivated=True)
    matrix = MatrixState.build([*matrix.users.values(), gone], matrix.rooms)
    plan = compute_plan(source(x(login="mdupont")), fallback, matrix)
    assert logins_changed(plan) == {}
    (collision,) = plan.collisions
    assert (collision.refused_id, collision.kept_id, collision.localpart) == (X, "", "mdupont")
    assert "deactivated Matrix account" in collision.reason


def test_a_rename_onto_the_localpart_a_new_agent_gets_is_a_collision() -> None:
    fallback, matrix = synced(source(x()))
    plan = compute_plan(source(x(login="Mdupônt"), agent(3, login="mdupont")),
                        fallback, matrix)
    assert [(a.agent.id, a.localpart) for a in plan.ldap_adds] == [("id-00003", "mdupont")]
    assert logins_changed(plan) == {}
    (collision,) = plan.collisions
    assert (collision.kept_id, collision.refused_id) == ("id-00003", X)


def test_renames_onto_free_names_or_ones_own_stay_updates() -> None:
    fallback, matrix = synced(source(agent(1, login="mdupont"), x()))
    plan = compute_plan(source(agent(1, login="MDupont"), x(login="xavier.durand")),
                        fallback, matrix)
    assert logins_changed(plan) == {Y: ("mdupont", "MDupont"),
                                    X: ("xdurand", "xavier.durand")}
    assert plan.collisions == ()
    # Back to one's first login: the localpart it gives is one's own.
    _, fallback, matrix = renamed(fallback, matrix, agent(1, login="mmartin"), x())
    plan = compute_plan(source(agent(1, login="mdupont"), x()), fallback, matrix)
    assert logins_changed(plan) == {Y: ("mmartin", "mdupont")} and plan.collisions == ()
