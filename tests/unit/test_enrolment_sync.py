"""The sync's enrolment codes: who gets one, who keeps it, who loses it; what apply
writes; and that no code (nor its hash) reaches the plan, its JSON or the logs."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from ldap3 import MODIFY_REPLACE

from planb.directory import enrolment_plan as ep
from planb.directory.enrolment import hash_issues
from planb.directory.fallback_ldap import (
    IssuedCode,
    add_attributes,
    entry_from_ldap,
    entry_jobs,
)
from planb.directory.mapping import resolve_mapping, source_attributes, without_password
from planb.directory.model import Agent, Rejection, SourceResult
from planb.directory.plan import Plan, PlanOptions, compute_plan
from planb.directory.plan_json import plan_from_json, plan_to_json
from planb.directory.sync import LDAP_ITEMS, without_hashes
from planb.directory.targets import FallbackEntry, FallbackState, MatrixState, entry_for
from planb.enrolment_code import derive_code, verify_code
from planb.schema import Secret

NOW = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
CODES = PlanOptions(codes=True, now=NOW)
KEY = bytes(range(32))


def agent(n: int, **changes: object) -> Agent:
    base = Agent(id=f"id-{n}", login=f"agent{n}", surname=f"Nom{n}", department="RH")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def entry(n: int, codes: ep.CodeState | None = None, **changes: object) -> FallbackEntry:
    base = entry_for(agent(n), f"agent{n}", dn=f"uid=agent{n},ou=people,dc=planb,dc=lab")
    base = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(base, codes=codes or ep.CodeState())


def plan(agents: list[Agent], entries: list[FallbackEntry], options: PlanOptions = CODES,
         rejections: tuple[Rejection, ...] = ()) -> Plan:
    return compute_plan(SourceResult("test", tuple(agents), rejections),
                        FallbackState.build(entries), MatrixState(), options)


def quiet(p: Plan) -> bool:
    """Nothing for the fallback LDAP (codes included); rooms are Matrix's business."""
    return not any(getattr(p, name) for name in LDAP_ITEMS)


def issued(p: Plan) -> dict[str, tuple[int, str]]:
    return {c.login: (c.serial, c.reason) for c in p.code_issues}


LIVE = ep.CodeState(has_code=True, serial=1, expires=NOW + timedelta(days=30))
EXPIRED = ep.CodeState(has_code=True, serial=2, expires=NOW - timedelta(seconds=1))
ENROLLED = ep.CodeState(serial=1, enrolled_at=NOW - timedelta(days=3))


def test_a_new_hire_gets_code_1() -> None:
    p = plan([agent(1)], [])
    assert issued(p) == {"agent1": (1, ep.NEW)}
    assert p.summary()["code_issue"] == 1 and p.summary()["code_renew"] == 0


def test_an_active_agent_without_code_gets_the_next_serial() -> None:
    p = plan([agent(1), agent(2)], [entry(1), entry(2, ep.CodeState(serial=4))])
    assert issued(p) == {"agent1": (1, ep.NEW), "agent2": (5, ep.NEW)}


def test_a_live_code_is_left_alone_even_when_locked_by_failures() -> None:
    locked = dataclasses.replace(LIVE, failures=9)
    assert quiet(plan([agent(1), agent(2)], [entry(1, LIVE), entry(2, locked)]))


def test_an_expired_unused_code_is_renewed() -> None:
    p = plan([agent(1)], [entry(1, EXPIRED)])
    assert issued(p) == {"agent1": (3, ep.RENEWED)}
    assert p.summary()["code_renew"] == 1 and p.summary()["code_issue"] == 0
    # expiry exactly now counts as expired; a second later it is live
    at_now = dataclasses.replace(EXPIRED, expires=NOW)
    assert issued(plan([agent(1)], [entry(1, at_now)])) == {"agent1": (3, ep.RENEWED)}
    later = dataclasses.replace(EXPIRED, expires=NOW + timedelta(seconds=1))
    assert quiet(plan([agent(1)], [entry(1, later)]))


def test_an_enrolled_agent_gets_nothing_more() -> None:
    assert quiet(plan([agent(1)], [entry(1, ENROLLED)]))


def test_a_leaver_loses_the_code_but_keeps_the_serial() -> None:
    p = plan([agent(1, enabled=False), agent(2, enabled=False)],
             [entry(1, LIVE), entry(2, ENROLLED)])
    assert [(c.login, c.reason) for c in p.code_revocations] == [("agent1", ep.LEAVER)]
    assert p.summary()["code_revoke"] == 1 and not p.code_issues
    jobs = entry_jobs(p)
    mods = jobs["id-1"].mods
    for name in ep.REVOKED_ATTRIBUTES:
        assert mods[name] == [(MODIFY_REPLACE, [])]
    assert ep.SERIAL not in mods and ep.ENROLLED_AT not in mods
    assert mods["pwdAccountLockedTime"] == [(MODIFY_REPLACE, ["000001010000Z"])]
    assert "code_revoke" in jobs["id-1"].kinds and "code_revoke" not in jobs["id-2"].kinds


def test_an_agent_gone_from_the_source_loses_the_code() -> None:
    p = plan([agent(2)], [entry(1, LIVE), entry(2, LIVE)])
    assert [c.login for c in p.code_revocations] == ["agent1"]


def test_a_disabled_entry_still_holding_a_code_loses_it() -> None:
    """An earlier apply that locked the agent but was cut before the code went."""
    p = plan([agent(1, enabled=False)], [entry(1, EXPIRED, enabled=False)])
    assert [c.login for c in p.code_revocations] == ["agent1"]
    assert not p.ldap_deactivations and not p.code_issues


def test_a_reactivated_agent_gets_a_new_code_unless_enrolled() -> None:
    p = plan([agent(1), agent(2)], [entry(1, ep.CodeState(serial=2), enabled=False),
                                    entry(2, ENROLLED, enabled=False)])
    assert issued(p) == {"agent1": (3, ep.NEW)}
    assert {c.login for c in p.ldap_reactivations} == {"agent1", "agent2"}


def test_a_renamed_agent_gets_the_code_under_the_new_login() -> None:
    p = plan([agent(1, login="nouveau")], [entry(1)])
    assert issued(p) == {"nouveau": (1, ep.NEW)}


def test_an_entry_kept_because_its_record_was_rejected_is_left_alone() -> None:
    rejected = (Rejection("test", "invalid mail", line=3, id="id-1"),)
    p = plan([], [entry(1)], rejections=rejected)
    assert not p.code_issues and not p.code_revocations and p.kept


def test_with_enrolment_off_no_code_is_issued_but_leavers_still_lose_theirs() -> None:
    off = PlanOptions(codes=False, now=NOW)
    p = plan([agent(1), agent(2, enabled=False), agent(3)],
             [entry(2, LIVE), entry(3, EXPIRED)], off)
    assert not p.code_issues
    assert [c.login for c in p.code_revocations] == ["agent2"]


def test_a_second_plan_after_apply_is_empty() -> None:
    """Apply leaves a live code on each active agent: nothing more to do."""
    first = plan([agent(1), agent(2)], [entry(2)])
    after = [entry(1, dataclasses.replace(LIVE, serial=1)),
             entry(2, dataclasses.replace(LIVE, serial=1))]
    assert first.code_issues and quiet(plan([agent(1), agent(2)], after))


def test_apply_writes_the_hash_serial_and_expiry_and_clears_failures() -> None:
    p = plan([agent(1), agent(2)], [entry(2, EXPIRED)])
    codes = {"id-1": IssuedCode("$scrypt$h1", 1, "20271130050000Z"),
             "id-2": IssuedCode("$scrypt$h2", 3, "20271130050000Z")}
    attrs = add_attributes(p.ldap_adds[0].agent, "agent1", codes["id-1"])
    assert attrs[ep.CODE] == ["$scrypt$h1"] and attrs[ep.SERIAL] == ["1"]
    assert attrs[ep.EXPIRES] == ["20271130050000Z"]
    jobs = entry_jobs(p, codes)
    assert "id-1" not in jobs  # a new entry's code is written with its add
    mods = jobs["id-2"].mods
    assert mods[ep.CODE] == [(MODIFY_REPLACE, ["$scrypt$h2"])]
    assert mods[ep.SERIAL] == [(MODIFY_REPLACE, ["3"])]
    assert mods[ep.FAILURES] == [(MODIFY_REPLACE, [])]
    assert jobs["id-2"].kinds == ["code_renew"]
    assert "$scrypt" not in repr(codes["id-1"])


def test_the_reader_turns_attributes_into_a_code_state() -> None:
    read = entry_from_ldap("uid=a,ou=people,dc=x", {
        "planbSourceId": ["id-1"], "uid": ["a"], "planbEnrolmentCode": ["$scrypt$..."],
        "planbEnrolmentSerial": ["4"], "planbEnrolmentExpires": ["20271130050000Z"],
        "planbEnrolmentFailures": ["2"], "planbEnrolledAt": ["20261101120000.123Z"]})
    assert read is not None
    assert read.codes == ep.CodeState(True, 4, datetime(2027, 11, 30, 5, tzinfo=UTC), 2,
                                      datetime(2026, 11, 1, 12, tzinfo=UTC))
    bare = entry_from_ldap("uid=b,ou=people,dc=x", {"planbSourceId": ["id-2"], "uid": ["b"]})
    assert bare is not None and bare.codes == ep.CodeState()
    odd = entry_from_ldap("uid=c,ou=people,dc=x", {"planbSourceId": ["id-3"], "uid": ["c"],
                                                    "planbEnrolmentCode": ["x"],
                                                    "planbEnrolmentExpires": ["soon"]})
    assert odd is not None and odd.codes.expires is not None and odd.codes.expires < NOW


def test_the_plan_and_its_json_hold_no_code_and_round_trip() -> None:
    agents = [agent(n) for n in range(1, 6)] + [agent(9, enabled=False)]
    p = plan(agents, [entry(3, EXPIRED), entry(9, LIVE)])
    text = plan_to_json(p)
    data = json.loads(text)
    assert data["summary"]["code_issue"] == 4 and data["summary"]["code_renew"] == 1
    assert data["summary"]["code_revoke"] == 1
    assert {i["login"] for i in data["enrolment"]["issue"]} == {f"agent{n}" for n in range(1, 6)}
    for item in p.code_issues:
        assert derive_code(KEY, item.id, item.serial) not in text
    assert "scrypt" not in text
    assert plan_from_json(text) == p


def test_a_plan_file_written_before_enrolment_still_reads() -> None:
    p = plan([agent(1)], [entry(1, LIVE)])
    data = json.loads(plan_to_json(p))
    del data["enrolment"]
    for key in ("code_issue", "code_renew", "code_revoke"):
        del data["summary"][key]
    assert plan_from_json(json.dumps(data)) == p


def test_hashes_verify_against_the_derived_codes_in_a_process_pool(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    issues = [ep.CodeIssue(f"id-{n}", f"agent{n}", n % 3 + 1) for n in range(40)]
    seen: list[tuple[str, int, int]] = []
    out = hash_issues(KEY, issues, "20271130050000Z", workers=2,
                      progress=lambda *a: seen.append(a))
    assert set(out) == {i.id for i in issues}
    for item in issues[::7]:
        code = out[item.id]
        assert code.serial == item.serial and code.expires == "20271130050000Z"
        assert verify_code(derive_code(KEY, item.id, item.serial), code.stored)
        assert not verify_code(derive_code(KEY, item.id, item.serial + 1), code.stored)
    assert seen[0] == ("codes", 0, 40) and seen[-1] == ("codes", 40, 40)
    assert len(seen) > 2  # progress as chunks finish, not only at the end
    codes = [derive_code(KEY, i.id, i.serial) for i in issues]
    assert not any(c in caplog.text for c in codes)


def test_without_copied_hashes_the_password_is_neither_read_nor_kept() -> None:
    fmap = resolve_mapping("openldap")
    assert "userpassword" in source_attributes(fmap)
    assert "userpassword" not in source_attributes(without_password(fmap))
    result = SourceResult("s", (agent(1, password_hash=Secret("{SSHA}abc")), agent(2)))
    stripped = without_hashes(result)
    assert all(a.password_hash is None for a in stripped.agents)
    p = plan(list(stripped.agents), [entry(1, ENROLLED, password_fingerprint="f")])
    assert not any(u.password_changed for u in p.ldap_updates)
    assert not any(a.password for a in p.ldap_adds)
    assert "userPassword" not in add_attributes(stripped.agents[1], "agent2")
