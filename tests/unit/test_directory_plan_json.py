"""The plan's JSON form (readable, stable, no password hashes) and the safety refusals."""

from __future__ import annotations

import dataclasses
import json

import pytest

from planb.directory.model import Agent, Rejection, SourceResult
from planb.directory.plan import Plan, StatusChange, compute_plan
from planb.directory.plan_json import (
    attach_passwords,
    plan_from_json,
    plan_to_dict,
    plan_to_json,
)
from planb.directory.safety import UnsafePlan, check_plan_safety
from planb.directory.targets import FallbackState, MatrixState, MatrixUser, entry_for
from planb.errors import UsageError
from planb.schema import Secret

HASH = "{SSHA}bm90LXJlYWxseQ=="


def rich_plan() -> Plan:
    """A plan with at least one item of every kind."""
    a = [Agent(f"id-{n}", f"agent{n}", "Zoë", f"Nom{n}", f"Zoë Nom{n}",
               f"agent{n}@grandlyon.example", "Finances", groups=frozenset({"Tous"}))
         for n in range(6)]
    fallback = FallbackState.build([
        entry_for(a[0], "agent0"),
        entry_for(dataclasses.replace(a[1], mail="ancien@grandlyon.example"), "agent1"),
        entry_for(a[2], "agent2"),
        entry_for(dataclasses.replace(a[3], enabled=False), "agent3"),
        entry_for(dataclasses.replace(a[4], department="RH"), "agent4"),
    ])
    matrix = MatrixState.build(
        [MatrixUser("agent0", "Zoë Nom0"), MatrixUser("agent1", "Ancien nom"),
         MatrixUser("agent2", "Zoë Nom2"), MatrixUser("agent3", "Zoë Nom3", deactivated=True),
         MatrixUser("agent4", "Zoë Nom4")],
        {"dept-finances": {"agent0", "agent1", "agent2"}, "dept-rh": {"agent4"}},
        closed={"dept-rh"},
    )
    source = SourceResult("agents.csv", (
        a[0], dataclasses.replace(a[1], password_hash=Secret(HASH)), a[3], a[4],
        dataclasses.replace(a[5], password_hash=Secret(HASH)),
        Agent("id-9", "Élodie", department="Finances"), Agent("id-8", "elodie"),
    ), (Rejection("agents.csv", "invalid mail 'x@'", line=7, id="id-7"),))
    return compute_plan(source, fallback, matrix)


def test_every_kind_of_change_appears_and_round_trips() -> None:
    plan = rich_plan()
    summary = plan.summary()
    assert all(summary[key] for key in (
        "ldap_add", "ldap_update", "ldap_deactivate", "ldap_reactivate", "department_move",
        "matrix_create", "matrix_deactivate", "matrix_reactivate", "matrix_display_name",
        "room_join", "room_leave", "room_open", "collisions", "rejected")), summary
    back = plan_from_json(plan_to_json(plan))
    assert back != plan  # the hashes stayed behind
    hashed = Agent("id-5", "agent5", password_hash=Secret(HASH))
    assert attach_passwords(back, {"id-5": hashed, "id-1": hashed}) == plan


def test_json_is_readable_with_summary_first_and_no_hash() -> None:
    plan = rich_plan()
    text = plan_to_json(plan, meta={"site": "lyon"})
    assert HASH not in text and "SSHA" not in text
    data = json.loads(text)
    assert list(data)[:4] == ["schema", "schema_version", "summary", "meta"]
    assert data["summary"]["ldap_add"] == len(data["ldap"]["add"])
    (update,) = [u for u in data["ldap"]["update"] if u["login"] == "agent1"]
    assert update["password_changed"] is True
    assert update["changes"] == [{"field": "mail", "old": "ancien@grandlyon.example",
                                  "new": "agent1@grandlyon.example"}]
    assert {d["reason"] for d in data["ldap"]["deactivate"]} == {"no longer in the source"}
    assert "Zoë" in text  # accents stay readable
    assert plan_to_json(rich_plan()) == plan_to_json(plan)  # stable


def test_passwords_come_back_only_from_a_fresh_source_read() -> None:
    plan = plan_from_json(plan_to_json(rich_plan()))
    (add,) = [a for a in plan.ldap_adds if a.agent.login == "agent5"]
    assert add.password and add.agent.password_hash is None
    fresh = {"id-5": Agent("id-5", "agent5", password_hash=Secret(HASH)),
             "id-1": Agent("id-1", "agent1")}  # agent1 lost its hash since the plan
    restored = attach_passwords(plan, fresh)
    (add,) = [a for a in restored.ldap_adds if a.agent.login == "agent5"]
    assert add.agent.password_hash == HASH
    (update,) = [u for u in restored.ldap_updates if u.login == "agent1"]
    assert not update.password_changed and update.password_hash is None


def test_damaged_or_foreign_plans_are_refused() -> None:
    data = plan_to_dict(rich_plan())
    edited = json.loads(json.dumps(data))
    edited["ldap"]["deactivate"] = []
    with pytest.raises(UsageError, match="summary does not match"):
        plan_from_json(json.dumps(edited), "plan.json")
    edited = json.loads(json.dumps(data))
    edited["ldap"]["move"][0]["surprise"] = 1
    with pytest.raises(UsageError, match=r"plan.json: damaged plan: ldap.move\[0\]: unknown key"):
        plan_from_json(json.dumps(edited), "plan.json")
    edited = json.loads(json.dumps(data))
    edited["ldap"]["move"][0]["old"] = 3
    with pytest.raises(UsageError, match=r"ldap.move\[0\].old: expected str, got 3"):
        plan_from_json(json.dumps(edited), "plan.json")
    with pytest.raises(UsageError, match="schema version 2"):
        plan_from_json(json.dumps({**data, "schema_version": 2}))
    with pytest.raises(UsageError, match="plan.json:1: not valid JSON"):
        plan_from_json("{", "plan.json")
    with pytest.raises(UsageError, match="not a planb sync plan"):
        plan_from_json("[]")


def _plan_deactivating(count: int, active: int, source_agents: int = 100) -> Plan:
    changes = tuple(StatusChange(f"id-{n}", f"a{n}", "no longer in the source")
                    for n in range(count))
    return Plan("agents.csv", source_agents, active, ldap_deactivations=changes,
                matrix_deactivations=changes)


def test_empty_source_is_refused_even_with_force() -> None:
    plan = compute_plan(SourceResult("ldaps://primary", ()), FallbackState(), MatrixState())
    for force in (False, True):
        with pytest.raises(UnsafePlan, match="gave no agents") as info:
            check_plan_safety(plan, force=force)
        assert info.value.exit_code == 2
        assert info.value.hint is not None and "cannot be forced" in info.value.hint


def test_too_many_deactivations_are_refused_unless_forced() -> None:
    with pytest.raises(UnsafePlan, match=r"deactivates 6 of 100 active agents \(6.0 %\)"):
        check_plan_safety(_plan_deactivating(6, 100), max_deactivate_percent=5)
    check_plan_safety(_plan_deactivating(6, 100), max_deactivate_percent=5, force=True)
    check_plan_safety(_plan_deactivating(5, 100), max_deactivate_percent=5)  # at the limit
    check_plan_safety(_plan_deactivating(0, 0), max_deactivate_percent=0)
    with pytest.raises(UnsafePlan):
        check_plan_safety(_plan_deactivating(1, 100), max_deactivate_percent=0)
