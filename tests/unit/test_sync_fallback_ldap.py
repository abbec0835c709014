"""What the sync writes to the fallback LDAP and how it reads it back (pure parts).

The round trips check the contract with the planner: an entry written for an agent,
read back, plans nothing; an update's modifications, applied with LDAP's replace
semantics, plan nothing either. The real directory is exercised by
tests/integration/test_sync_ldap.py.
"""

from __future__ import annotations

import dataclasses

import pytest
from ldap3 import MODIFY_REPLACE

from planb.directory.fallback_ldap import (
    LOCKED,
    NO_SURNAME,
    Layout,
    add_attributes,
    entry_from_ldap,
    entry_jobs,
    group_jobs,
    group_name,
    locked_for_good,
)
from planb.directory.model import Agent, SourceResult, password_fingerprint
from planb.directory.plan import Plan, compute_plan
from planb.directory.sync import LDAP_ITEMS, without_matrix
from planb.directory.targets import FallbackState, MatrixState
from planb.schema import Secret

LAYOUT = Layout("dc=planb,dc=lab")
HASH = Secret("{SSHA}c2VjcmV0c2FsdHNhbHQ=")


def agent(n: int, **changes: object) -> Agent:
    base = Agent(id=f"id-{n}", login=f"agent{n}", given_name="Élodie", surname=f"Nom{n}",
                 display_name=f"Élodie Nom{n}", mail=f"agent{n}@metropole.lab",
                 department="Finances", title="Juriste", mobile="+33 6 12 34 56 78",
                 employee_number=f"{n}", groups=frozenset({"Finances"}), password_hash=HASH)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def served(dn: str, attrs: dict[str, list[str]]) -> dict[str, list[str]]:
    """What slapd returns for an entry the sync account reads: no userPassword (write-only),
    memberOf maintained by the overlay from the groups the agent was put in."""
    shown = {k: v for k, v in attrs.items() if k != "userPassword"}
    return shown


def read_back(a: Agent, localpart: str | None = None) -> dict[str, list[str]]:
    attrs = served("", add_attributes(a, localpart))
    attrs["memberOf"] = [LAYOUT.group_dn(g) for g in sorted(a.groups)]
    return attrs


def ldap_part(plan: Plan) -> dict[str, int]:
    return {name: len(getattr(plan, name)) for name in LDAP_ITEMS}


def plan_for(agents: list[Agent], attrs_by_dn: dict[str, dict[str, list[str]]]) -> Plan:
    entries = [e for dn, attrs in attrs_by_dn.items()
               if (e := entry_from_ldap(dn, attrs)) is not None]
    return without_matrix(compute_plan(SourceResult("test", tuple(agents)),
                                       FallbackState.build(entries), MatrixState()))


def apply_mods(attrs: dict[str, list[str]], mods: dict[str, list[tuple[str, list[str]]]]
               ) -> dict[str, list[str]]:
    """LDAP replace semantics: new values, or the attribute gone when the list is empty."""
    out = dict(attrs)
    for name, ops in mods.items():
        for op, values in ops:
            assert op == MODIFY_REPLACE
            if values:
                out[name] = list(values)
            else:
                out.pop(name, None)
    return out


def test_an_added_entry_read_back_plans_nothing() -> None:
    agents = [agent(1), agent(2, surname="", display_name="agent2", given_name=""),
              agent(3, mobile="", title="", password_hash=None)]
    written = {LAYOUT.person_dn(a.login): read_back(a, a.login) for a in agents}
    plan = plan_for(agents, written)
    assert ldap_part(plan) == dict.fromkeys(LDAP_ITEMS, 0)


def test_add_writes_the_whole_entry_with_hash_and_fingerprint() -> None:
    attrs = add_attributes(agent(1), "agent1")
    assert attrs["objectClass"] == ["inetOrgPerson", "planbAgent"]
    assert attrs["userPassword"] == [str(HASH)]
    assert attrs["planbPasswordFingerprint"] == [password_fingerprint(HASH)]
    assert attrs["planbSourceId"] == ["id-1"] and attrs["planbLocalpart"] == ["agent1"]
    assert "pwdAccountLockedTime" not in attrs
    locked = add_attributes(agent(2, enabled=False), None)
    assert locked["pwdAccountLockedTime"] == [LOCKED]
    assert "planbLocalpart" not in locked


def test_an_agent_without_surname_gets_a_placeholder_read_back_as_empty() -> None:
    attrs = add_attributes(agent(1, surname=""), None)
    assert attrs["sn"] == [NO_SURNAME]
    entry = entry_from_ldap("uid=agent1,ou=people,dc=planb,dc=lab", attrs)
    assert entry is not None and entry.surname == ""


def test_entries_without_planb_id_are_not_managed() -> None:
    assert entry_from_ldap("uid=admin,ou=people,dc=x", {"uid": ["admin"], "sn": ["A"]}) is None


def test_locked_entries_read_as_disabled_and_fingerprint_is_kept() -> None:
    attrs = read_back(agent(1))
    attrs["pwdAccountLockedTime"] = [LOCKED]
    entry = entry_from_ldap("uid=agent1,ou=people,dc=planb,dc=lab", attrs)
    assert entry is not None
    assert not entry.enabled
    assert entry.password_fingerprint == password_fingerprint(HASH)
    assert entry.groups == frozenset({"Finances"})


@pytest.mark.parametrize("changes", [
    {"display_name": "Élodie Martin", "surname": "Martin"},
    {"mail": "", "title": "Cheffe de projet"},
    {"surname": ""},
    {"password_hash": Secret("{SSHA}bmV3aGFzaG5ld3NhbHQ=")},
    {"department": "Ressources humaines"},
    {"enabled": False},
])
def test_update_modifications_converge(changes: dict[str, object]) -> None:
    before = agent(1)
    dn = LAYOUT.person_dn(before.login)
    current = read_back(before, "agent1")
    after = dataclasses.replace(before, **changes)  # type: ignore[arg-type]
    plan = plan_for([after], {dn: current})
    assert any(ldap_part(plan).values())
    jobs = entry_jobs(plan)
    assert list(jobs) == ["id-1"]
    job = jobs["id-1"]
    assert job.rename_to is None
    updated = apply_mods(current, job.mods)
    if "password_hash" in changes:
        assert updated["userPassword"] == [str(changes["password_hash"])]
    assert ldap_part(plan_for([after], {dn: served(dn, updated)})) == dict.fromkeys(
        LDAP_ITEMS, 0)


def test_a_login_change_is_a_rename_of_the_same_entry() -> None:
    before = agent(1)
    current = read_back(before, "agent1")
    after = dataclasses.replace(before, login="agent1-new")
    plan = plan_for([after], {LAYOUT.person_dn(before.login): current})
    assert not plan.ldap_adds and not plan.ldap_deactivations
    assert entry_jobs(plan)["id-1"].rename_to == "agent1-new"


def test_deactivation_and_move_of_one_agent_are_one_job() -> None:
    before = agent(1)
    current = read_back(before, "agent1")
    gone_plan = plan_for([agent(2)], {LAYOUT.person_dn(before.login): current})
    job = entry_jobs(gone_plan)["id-1"]
    assert job.kinds == ["deactivate"]
    assert job.mods == {"pwdAccountLockedTime": [(MODIFY_REPLACE, [LOCKED])]}


def test_group_jobs_create_modify_and_drop_emptied_groups() -> None:
    a1, a2 = agent(1), agent(2, groups=frozenset({"Voirie"}), department="Voirie")
    dn1, dn2 = LAYOUT.person_dn(a1.login), LAYOUT.person_dn(a2.login)
    current = {dn1: read_back(a1, "agent1")}
    moved = dataclasses.replace(a1, groups=frozenset({"Voirie"}), department="Voirie")
    plan = plan_for([moved, a2], current)
    groups = {"Finances": [dn1.upper()]}  # DN matching ignores case
    jobs = {j.name: j for j in group_jobs(plan, LAYOUT, groups)}
    assert jobs["Finances"].action == "delete"
    assert jobs["Voirie"].action == "add"
    assert set(jobs["Voirie"].add) == {dn1, dn2}
    # re-run after an interruption that wrote Voirie but not Finances: only what is left
    again = {j.name: j for j in group_jobs(plan, LAYOUT, {"Finances": [dn1, "uid=x"],
                                                         "Voirie": [dn2, dn1]})}
    assert list(again) == ["Finances"]
    assert again["Finances"].action == "modify" and again["Finances"].remove == (dn1,)


@pytest.mark.parametrize("name", ["Direction, Finances", "#1 + 2 = 3", "Café 😀", " lead",
                                  'a"b\\c<d>;e'])
def test_group_names_survive_dn_escaping(name: str) -> None:
    assert group_name(LAYOUT.group_dn(name)) == name


def test_person_dn_escapes_special_logins() -> None:
    assert LAYOUT.person_dn("a,b+c") == "uid=a\\,b\\+c,ou=people,dc=planb,dc=lab"


#: What ppolicy writes when an agent is locked out after failed binds: the time.
TEMPORARY_LOCK = "20261130021500Z"


def test_a_temporary_lockout_after_failed_binds_is_not_a_disabled_agent() -> None:
    attrs = read_back(agent(1))
    attrs["pwdAccountLockedTime"] = [TEMPORARY_LOCK]
    entry = entry_from_ldap("uid=agent1,ou=people,dc=planb,dc=lab", attrs)
    assert entry is not None and entry.enabled
    assert locked_for_good(LOCKED) and locked_for_good(f" {LOCKED.lower()} ")
    assert not locked_for_good(TEMPORARY_LOCK) and not locked_for_good("")


def test_the_sync_plans_nothing_for_an_agent_in_a_temporary_lockout() -> None:
    """Not a reactivation (which would lift the lock early and count against the
    reactivation limit), not an update: the lock heals by itself."""
    attrs = read_back(agent(1), "agent1")
    attrs["pwdAccountLockedTime"] = [TEMPORARY_LOCK]
    plan = plan_for([agent(1)], {"uid=agent1,ou=people,dc=planb,dc=lab": attrs})
    assert sum(ldap_part(plan).values()) == 0, ldap_part(plan)
    assert not entry_jobs(plan)


def test_a_leaver_in_a_temporary_lockout_is_deactivated_for_good() -> None:
    attrs = read_back(agent(1), "agent1")
    attrs["pwdAccountLockedTime"] = [TEMPORARY_LOCK]
    plan = plan_for([agent(1, enabled=False)], {"uid=agent1,ou=people,dc=planb,dc=lab": attrs})
    assert [c.id for c in plan.ldap_deactivations] == ["id-1"]
    assert entry_jobs(plan)["id-1"].mods == {
        "pwdAccountLockedTime": [(MODIFY_REPLACE, [LOCKED])]}
