"""Enrolment codes in the real fallback directory (issue 12 §2), on the lab.

- planb's schema loaded by an older planb (without the enrolment attributes) is brought
  up to date by the role's planb-ldap-schema, and a second run changes nothing;
- the enrolment account (cn=planb-enrol) sets an agent's password with the Password
  Modify operation and writes or deletes the code attributes, and nothing else: not
  cn, mail, the serial, the lock, groups, nor a probe's or a service account's password;
  Synapse's account cannot read a code's hash (not even find who has one); anonymous
  gets nothing;
- the sync gives every active agent a live code that verifies against derive_code
  (never a code in its output or logs), a leaver loses it, a hire gets one, a second
  sync changes nothing; 'reissue' gives a new code and clears failures;
- with primary.ldap.copy_password_hashes false the sync never writes userPassword: a
  password set by enrolment survives a password change at the primary.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ldap3 import MODIFY_ADD, MODIFY_REPLACE, Connection
from typer.testing import CliRunner

from planb.actions.sampling import active_agents
from planb.cli.main import app
from planb.config import SiteConfig
from planb.directory import enrolment_plan as ep
from planb.directory.enrolment import DISABLED, NOT_FOUND, reissue_codes
from planb.directory.fallback_endpoint import fallback_endpoint
from planb.directory.fallback_ldap import Layout
from planb.directory.lab_churn import Churn
from planb.directory.ldap_source import paged_entries, read_primary
from planb.directory.sync import LDAP_ITEMS, Sync
from planb.enrolment_code import derive_code, load_or_create_key, verify_code
from planb.inventory import vault_value
from planb.lab.agents import agent_password
from tests.integration.conftest import LabSession
from tests.integration.lab_state import ldap_only

pytestmark = pytest.mark.lab
runner = CliRunner()
INSUFFICIENT_ACCESS = 50
CODE_ATTRS = [ep.CODE, ep.SERIAL, ep.EXPIRES, ep.FAILURES, ep.ENROLLED_AT]
#: What the first sync of the module took (seconds), for the report.
TIMINGS: dict[str, float] = {}


def cli(site: SiteConfig, *args: str) -> tuple[int, str]:
    done = runner.invoke(app, ["--config", str(site.source), *args])
    return done.exit_code, done.output


@pytest.fixture(scope="module")
def lab(standby_lab: LabSession, caplog_module: list[str]) -> Iterator[LabSession]:
    """The standby lab with the fallback LDAP synced: every active agent has a code."""
    with ldap_only(standby_lab.site):
        started = time.monotonic()
        code, out = cli(standby_lab.site, "sync", "apply", "--yes", "--ldap-only", "--adopt")
        TIMINGS["first_sync"] = time.monotonic() - started
        assert code == 0, out
        caplog_module.append(out)
    yield standby_lab


@pytest.fixture(scope="module")
def caplog_module() -> Iterator[list[str]]:
    """Everything planb logs (DEBUG) while the module runs, and the CLI's output."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    # On planb's logger: the CLI's logging.basicConfig(force=True) replaces the root's.
    handler, planb_log = Keep(logging.DEBUG), logging.getLogger("planb")
    old = planb_log.level
    planb_log.addHandler(handler)
    planb_log.setLevel(logging.DEBUG)
    yield lines
    planb_log.removeHandler(handler)
    planb_log.setLevel(old)


def bound(site: SiteConfig, who: str) -> Connection:
    """A connection bound as planb's account ``who`` (sync, synapse, enrol) or anonymous."""
    server = fallback_endpoint(site).server()
    if who == "anonymous":
        conn = Connection(server, raise_exceptions=False)
    else:
        dn = {"sync": "planb-sync", "synapse": "synapse", "enrol": "planb-enrol"}[who]
        conn = Connection(server, user=f"cn={dn},ou=services,{site.fallback.ldap_suffix}",
                          password=vault_value(site.inventory_dir, f"vault_ldap_{who}_password"),
                          raise_exceptions=False)
    assert conn.bind(), conn.result
    return conn


def codes_by_login(site: SiteConfig) -> dict[str, dict[str, str]]:
    """login -> the enrolment attributes (first values) of every planbAgent entry."""
    conn = bound(site, "sync")
    try:
        found = {}
        for _, attrs in paged_entries(conn, f"ou=people,{site.fallback.ldap_suffix}",
                                      "(objectClass=planbAgent)",
                                      ["uid", "planbSourceId", *CODE_ATTRS], 1000, "fallback"):
            first = {k.casefold(): (v[0] if isinstance(v, list) and v else v)
                     for k, v in attrs.items() if v not in (None, [], "")}
            found[str(first["uid"])] = {k: str(v) for k, v in first.items()}
        return found
    finally:
        conn.unbind()


def assert_live_codes(site: SiteConfig, logins: list[str]) -> None:
    key = load_or_create_key(site.state_dir)
    state = codes_by_login(site)
    soon = datetime.now(UTC) + timedelta(days=site.enrolment.code_valid_days - 1)
    for login in logins:
        attrs = state[login]
        code = derive_code(key, attrs["planbsourceid"], int(attrs["planbenrolmentserial"]))
        assert verify_code(code, attrs["planbenrolmentcode"]), login
        expires = ep.parse_generalized_time(attrs["planbenrolmentexpires"])
        assert expires is not None and expires > soon, login


def ssh(lab: LabSession, host: str, command: str, stdin: str | None = None) -> str:
    done = subprocess.run(lab.lab.ssh_argv(host, ["sh", "-c", command]), input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_older_schema_is_brought_up_to_date_once(lab: LabSession) -> None:
    """On the lab primary (its slapd has planb's schema too, and no entry uses it):
    put back the schema as planb loaded it before enrolment, then run the role's tool."""
    search = ("ldapsearch -LLL -Q -Y EXTERNAL -H ldapi:/// -o ldif-wrap=no "
              "-b cn=schema,cn=config -s one '(cn=*}planb)'")
    loaded = ssh(lab, "primary", search)
    dn = loaded.splitlines()[0].removeprefix("dn: ")
    assert "planbEnrolmentCode" in loaded
    old_class = ("( 2.25.231190762027130771333338879743967167285.2.1 NAME 'planbAgent' "
                 "DESC 'planb: an agent managed by the account sync' SUP top AUXILIARY "
                 "MUST planbSourceId MAY ( planbLocalpart $ planbPasswordFingerprint ) )")
    ssh(lab, "primary", "ldapmodify -Q -Y EXTERNAL -H ldapi:///", stdin=(
        f"dn: {dn}\nchangetype: modify\ndelete: olcObjectClasses\nolcObjectClasses: {{0}}\n-\n"
        f"add: olcObjectClasses\nolcObjectClasses: {old_class}\n-\n"
        "delete: olcAttributeTypes\n" + "".join(f"olcAttributeTypes: {{{i}}}\n"
                                                for i in (7, 6, 5, 4, 3)) + "-\n"))
    assert "planbEnrolmentCode" not in ssh(lab, "primary", search)
    tool = "planb-ldap-schema {} /etc/ldap/schema/planb.ldif"
    checked = json.loads(ssh(lab, "primary", tool.format("--check")))
    assert checked["changed"] and "planbEnrolmentCode" not in ssh(lab, "primary", search)
    first = json.loads(ssh(lab, "primary", tool.format("")))
    assert first["changed"] and len(first["changes"]) == 6, first
    assert "planbAgent: updated" in first["changes"]
    now = ssh(lab, "primary", search)
    for name in ("planbEnrolmentCode", "planbEnrolmentSerial", "planbEnrolmentExpires",
                 "planbEnrolmentFailures", "planbEnrolledAt"):
        assert f"NAME '{name}'" in now and name in now.split("olcObjectClasses:")[1]
    assert json.loads(ssh(lab, "primary", tool.format(""))) == {"changed": False, "changes": []}


def test_a_second_run_of_the_role_changes_nothing(lab: LabSession) -> None:
    """The session deployed twice: the second run's openldap tasks (schema, service
    accounts, ACLs) changed nothing (test_lab_deploy checks every role's total)."""
    assert lab.second_deploy is not None
    text = (lab.second_deploy.artifacts_dir / "stdout").read_text(encoding="utf-8")
    blocks = text.split("\nTASK [")[1:] + text.split("\nRUNNING HANDLER [")[1:]
    openldap = [b for b in blocks if b.startswith("openldap : ")]
    assert any(b.startswith("openldap : Load planb's schema") for b in openldap)
    changed = [b.splitlines()[0] for b in openldap if "\nchanged: [" in b.split("\nTASK [")[0]]
    assert changed == [], changed


def test_the_enrolment_account_sets_an_agents_password_and_nothing_else(
        lab: LabSession) -> None:
    site = lab.site
    suffix, layout = site.fallback.ldap_suffix, Layout(site.fallback.ldap_suffix)
    login = sorted(active_agents(site))[1]
    dn = layout.person_dn(login)
    secret = (site.state_dir / "lab" / "agents-secret").read_bytes().strip()
    enrol = bound(site, "enrol")
    try:
        assert enrol.extend.standard.modify_password(user=dn, new_password="Enrolé-2026-xyz")
        check = Connection(fallback_endpoint(site).server(), user=dn,
                           password="Enrolé-2026-xyz", raise_exceptions=False)
        assert check.bind(), check.result
        check.unbind()
        allowed: list[dict[str, Any]] = [
            {ep.FAILURES: [(MODIFY_REPLACE, ["2"])]}, {ep.FAILURES: [(MODIFY_REPLACE, [])]},
            {ep.ENROLLED_AT: [(MODIFY_REPLACE, ["20261130050000Z"])]},
            {ep.ENROLLED_AT: [(MODIFY_REPLACE, [])]}]
        for mods in allowed:
            assert enrol.modify(dn, mods), (mods, enrol.result)
        enrol.search(dn, "(objectClass=*)", search_scope="BASE",
                     attributes=["uid", "planbLocalpart", ep.SERIAL, "userPassword"])
        seen = enrol.entries[0].entry_attributes_as_dict
        assert seen["uid"] and seen[ep.SERIAL] and not seen.get("userPassword")
        refused = [({"cn": [(MODIFY_REPLACE, ["Quelqu'un d'autre"])]}, dn),
                   ({"mail": [(MODIFY_REPLACE, ["pirate@example.org"])]}, dn),
                   ({ep.SERIAL: [(MODIFY_REPLACE, ["99"])]}, dn),
                   ({"pwdAccountLockedTime": [(MODIFY_REPLACE, ["000001010000Z"])]}, dn)]
        sync = bound(site, "sync")
        sync.search(f"ou=groups,{suffix}", "(objectClass=groupOfNames)", attributes=["cn"],
                    size_limit=1)
        group_dn = sync.entries[0].entry_dn
        sync.unbind()
        enrol.search(f"ou=groups,{suffix}", "(objectClass=groupOfNames)", attributes=["cn"])
        assert not enrol.entries, "the enrolment account reads no group"
        refused.append(({"member": [(MODIFY_ADD, [dn])]}, group_dn))
        for mods, target in refused:
            enrol.modify(target, mods)
            assert enrol.result["result"] in (INSUFFICIENT_ACCESS, 32), (mods, enrol.result)
        for other in (f"uid=planb-probe-1,ou=people,{suffix}", f"cn=synapse,ou=services,{suffix}",
                      f"cn=planb-sync,ou=services,{suffix}",
                      f"cn=planb-enrol,ou=services,{suffix}"):
            assert not enrol.extend.standard.modify_password(user=other,
                                                             new_password="Attacker-2026-xyz")
            assert enrol.result["result"] == INSUFFICIENT_ACCESS, (other, enrol.result)
    finally:
        # Back to the lab's password (the drills' sample logs in with it).
        enrol.extend.standard.modify_password(user=dn, new_password=agent_password(secret, login))
        enrol.unbind()


def test_synapse_cannot_see_the_codes(lab: LabSession) -> None:
    site = lab.site
    people = f"ou=people,{site.fallback.ldap_suffix}"
    holders = [u for u, a in codes_by_login(site).items() if "planbenrolmentcode" in a]
    assert len(holders) > 100
    synapse = bound(site, "synapse")
    try:
        synapse.search(people, f"(&(objectClass=planbAgent)(uid={holders[0]}))",
                       attributes=CODE_ATTRS + ["uid", "planbLocalpart"])
        (entry,) = synapse.entries
        seen = {k for k, v in entry.entry_attributes_as_dict.items() if v}
        assert seen == {"uid", "planbLocalpart"}, seen
        synapse.search(people, f"({ep.CODE}=*)", attributes=["uid"])
        assert synapse.entries == [], "Synapse's account can tell who holds a code"
    finally:
        synapse.unbind()


def test_anonymous_gets_nothing(lab: LabSession) -> None:
    site = lab.site
    people = f"ou=people,{site.fallback.ldap_suffix}"
    agent = Layout(site.fallback.ldap_suffix).person_dn(sorted(active_agents(site))[0])
    anonymous = bound(site, "anonymous")
    try:
        for base in (site.fallback.ldap_suffix, people):
            anonymous.search(base, "(objectClass=*)", attributes=["*"])
            assert anonymous.entries == [], base
        anonymous.search(agent, "(objectClass=*)", search_scope="BASE", attributes=["*", "+"])
        assert anonymous.entries == []
        anonymous.search(people, f"({ep.CODE}=*)", attributes=CODE_ATTRS)
        assert anonymous.entries == []
    finally:
        anonymous.unbind()


def test_every_active_agent_has_a_live_code_and_a_second_sync_changes_nothing(
        lab: LabSession, caplog_module: list[str]) -> None:
    site = lab.site
    state = codes_by_login(site)
    active = sorted(active_agents(site))
    # Agents who enrolled (other modules' tests, on the enrolment page) need no code.
    waiting = [a for a in active if "planbenrolledat" not in state[a]]
    assert len(active) > 250 and len(waiting) > len(active) - 20
    assert_live_codes(site, waiting)
    plan = Sync(site).plan().plan
    assert not any(getattr(plan, name) for name in LDAP_ITEMS), plan.summary()
    print(f"first sync with codes: {TIMINGS.get('first_sync', 0):.1f} s for {len(active)}")
    assert TIMINGS.get("first_sync", 0) < 120
    no_code_anywhere(site, caplog_module)


def no_code_anywhere(site: SiteConfig, texts: list[str]) -> None:
    key = load_or_create_key(site.state_dir)
    everything = "\n".join(texts)
    for attrs in codes_by_login(site).values():
        if "planbenrolmentserial" in attrs:
            code = derive_code(key, attrs["planbsourceid"], int(attrs["planbenrolmentserial"]))
            assert code not in everything and code[:4] + "-" + code[4:8] not in everything
        assert attrs.get("planbenrolmentcode", "$none") not in everything


def test_a_leaver_loses_the_code_and_a_hire_gets_one(lab: LabSession,
                                                     caplog_module: list[str]) -> None:
    site = lab.site
    code, out = cli(site, "lab", "churn", "--percent", "3", "--seed", "1212")
    assert code == 0, out
    record = json.loads(sorted((site.state_dir / "lab").glob("churn-*.json"))[-1].read_text())
    with ldap_only(site):
        code, planned = cli(site, "sync", "plan", "--json")
        assert code == 0, planned
        summary = json.loads(planned[planned.index("{"):])["summary"]
        code, out = cli(site, "sync", "apply", "--yes", "--ldap-only")
        assert code == 0, out
    caplog_module.extend([planned, out])
    leavers = {x["login"] for x in record["leavers"]}
    hires = {x["login"] for x in record["hires"]}
    assert leavers and hires
    assert summary["code_revoke"] == len(leavers) and summary["code_issue"] >= len(hires)
    state = codes_by_login(site)
    for login in leavers:
        assert not {ep.CODE.casefold(), ep.EXPIRES.casefold()} & set(state[login]), login
        assert state[login]["planbenrolmentserial"]  # kept: the next code differs
    assert_live_codes(site, sorted(hires))
    assert not any(getattr(Sync(site).plan().plan, n) for n in LDAP_ITEMS)
    no_code_anywhere(site, caplog_module)


def test_reissue_gives_a_new_code_and_clears_failures(lab: LabSession) -> None:
    site = lab.site
    key = load_or_create_key(site.state_dir)
    layout = Layout(site.fallback.ldap_suffix)
    active = sorted(active_agents(site))
    login, leaver = active[2], active[4]
    before = codes_by_login(site)[login]
    old = derive_code(key, before["planbsourceid"], int(before["planbenrolmentserial"]))
    sync = bound(site, "sync")
    try:
        assert sync.modify(layout.person_dn(login), {ep.FAILURES: [(MODIFY_REPLACE, ["5"])]})
        # A leaver as the sync marks one (put back below, before any sync runs).
        assert sync.modify(layout.person_dn(leaver),
                           {"pwdAccountLockedTime": [(MODIFY_REPLACE, ["000001010000Z"])]})
        report = reissue_codes(site, [login, "personne.inconnue", leaver])
    finally:
        sync.modify(layout.person_dn(leaver), {"pwdAccountLockedTime": [(MODIFY_REPLACE, [])]})
        sync.unbind()
    assert report.refused == {"personne.inconnue": NOT_FOUND, leaver: DISABLED}
    (given,) = report.issued
    assert given.serial == int(before["planbenrolmentserial"]) + 1
    after = codes_by_login(site)[login]
    assert "planbenrolmentfailures" not in after
    assert verify_code(derive_code(key, given.source_id, given.serial), after["planbenrolmentcode"])
    assert not verify_code(old, after["planbenrolmentcode"])


def test_without_copied_hashes_an_enrolled_password_survives_the_sync(lab: LabSession) -> None:
    site = lab.site
    ldap = site.primary.ldap
    assert ldap is not None
    withheld = dataclasses.replace(site, primary=dataclasses.replace(
        site.primary, ldap=dataclasses.replace(ldap, copy_password_hashes=False)))
    login = sorted(active_agents(site))[3]
    dn = Layout(site.fallback.ldap_suffix).person_dn(login)
    secret = (site.state_dir / "lab" / "agents-secret").read_bytes().strip()
    churn = Churn(site)
    primary = churn.endpoint.connect()
    primary_dn = f"uid={login},ou=people,{churn.suffix}"
    enrol = bound(site, "enrol")
    try:
        assert enrol.extend.standard.modify_password(user=dn, new_password="Choisi-2026-abc")
        primary.extend.standard.modify_password(user=primary_dn, new_password="Primaire-2026")
        result = Sync(withheld).apply()
        assert result is not None and not any(
            u.password_changed for u in result.applied.plan.ldap_updates)
        assert fallback_bind(site, dn, "Choisi-2026-abc")
        assert not fallback_bind(site, dn, "Primaire-2026")
    finally:
        # Back to the lab's rule: the primary's password, copied again by a normal sync.
        primary.extend.standard.modify_password(user=primary_dn,
                                                new_password=agent_password(secret, login))
        primary.unbind()
        enrol.unbind()
        Sync(site).apply()
    assert fallback_bind(site, dn, agent_password(secret, login))
    # The primary is not even asked for the hashes (nor are they kept).
    assert any(a.password_hash is not None for a in read_primary(site).agents)
    assert all(a.password_hash is None for a in read_primary(withheld).agents)


def fallback_bind(site: SiteConfig, dn: str, password: str) -> bool:
    conn = Connection(fallback_endpoint(site).server(), user=dn, password=password,
                      raise_exceptions=False)
    try:
        return bool(conn.bind())
    finally:
        conn.unbind()
