"""Issue 11 on the real lab: the right account at every login, after renames and leavers.

The module hires its own agents on the lab's primary (recorded like 'planb lab churn'
hires, so the modules that count the primary's agents still agree), syncs them, and
switches the fallback hosts active with failover.yml (the account sync stays
unfrozen: the module syncs between logins). Agents log in through nginx over TLS
with their real passwords, and ``whoami`` says which account each login opened.

- The rename chain: Y ``mdupont`` -> ``mmartin`` (synced; Y keeps their Matrix account
  ``@mdupont``), later X ``mdurand`` -> ``mdupont``. The second rename is planned as a
  collision naming both agents and is not applied (X keeps ``mdurand`` on the
  fallback). Y logging in as ``mmartin`` lands in ``@mdupont``, their own account; X
  lands in ``@mdurand``, never in Y's; no login creates an account.
- A leaver's session: an agent logged in is made a leaver on the primary; after the
  next sync their access token gets 401 M_UNKNOWN_TOKEN.
- A department alias an agent took first: an agent creates ``#dept-<new department>``
  from their client before the department's first agent is synced; the sync refuses
  that room (it names the alias and the agent), joins no one to it, and goes on with
  the other rooms.

At its end the module undoes what would upset other modules (X's login, the agent's
room) and puts the fallback hosts back in standby.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pytest
from ldap3 import BASE, MODIFY_ADD, MODIFY_REPLACE, Connection

from planb import PLAYBOOKS_DIR
from planb.config import SiteConfig
from planb.directory.identifiers import child_dn, filter_equals, rdn, room_aliases
from planb.directory.lab_churn import Churn, ChurnRecord
from planb.directory.sync import Sync
from planb.hostkeys import known_hosts_path
from planb.inventory import check_inventory
from planb.lab.agents import DEFAULT_MAIL_DOMAIN, LOCKED_FOREVER, agent_password, ssha
from planb.messaging.admin_api import AdminApi
from planb.messaging.sync_target import SynapseTarget, target_for
from planb.provisioning import new_run_dir, run_playbook
from planb.provisioning.deploy import deploy_vars
from tests.integration.conftest import LabSession
from tests.integration.test_active_fallback_lab import https, login
from tests.integration.test_sync_ldap import cli

pytestmark = pytest.mark.lab
FAILOVER = PLAYBOOKS_DIR / "failover.yml"
NEW_DEPARTMENT = "Cellule essai planb"
Json = dict[str, object]


@dataclass
class Person:
    """One agent the module hired: first login, current login, id, password."""

    first: str
    given: str
    surname: str
    login: str = ""
    id: str = ""
    password: str = field(default="", repr=False)


@dataclass
class Lab:
    """The module's lab: site, Synapse target, fallback address, primary, people."""

    session: LabSession
    site: SiteConfig
    target: SynapseTarget
    address: str
    primary: Primary
    people: dict[str, Person]
    department: str
    squat_room: str | None = None

    def sync(self) -> tuple[int, str, str]:
        """``planb sync apply --yes`` (Matrix included); exit code, stdout, stderr."""
        return cli(self.site, "sync", "apply", "--yes")

    def plan(self) -> Json:
        code, out, err = cli(self.site, "sync", "plan", "--json")
        assert code == 0, err
        data = json.loads(out)
        assert isinstance(data, dict)
        return data

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.site.matrix.server_name}"

    def token(self, user: str, password: str) -> str:
        status, answer = login(self.site, self.address, user, password)
        assert status == 200, (user, status, answer.get("errcode"), answer.get("error"))
        return str(answer["access_token"])

    def whoami(self, token: str) -> tuple[int, Json]:
        return https(self.site, self.address, "GET", "/_matrix/client/v3/account/whoami",
                     token=token)


class Primary:
    """Writes to the lab's primary directory as its admin (like 'planb lab churn')."""

    def __init__(self, site: SiteConfig) -> None:
        churn = Churn(site)
        self.endpoint, self.suffix = churn.endpoint, churn.suffix
        self.secret = churn.secret.encode()
        self.records = site.state_dir / "lab"

    def _do(self, what: str, call: Callable[[Connection], object]) -> None:
        conn = self.endpoint.connect()
        try:
            call(conn)
            assert conn.result.get("result") == 0, (what, conn.result)
        finally:
            conn.unbind()

    def person_dn(self, login: str) -> str:
        return child_dn("uid", login, f"ou=people,{self.suffix}")

    def group_dn(self, department: str) -> str:
        return child_dn("cn", department, f"ou=groups,{self.suffix}")

    def hire(self, person: Person, department: str) -> None:
        """Add ``person`` in ``department`` (its group made when missing); record it."""
        person.login = person.first
        person.password = agent_password(self.secret, person.first)  # as every lab agent
        name = f"{person.given} {person.surname}"
        dn = self.person_dn(person.first)
        conn = self.endpoint.connect()
        try:
            conn.search(f"ou=people,{self.suffix}", filter_equals("uid", person.first),
                        attributes=["1.1"])
            assert not conn.response, f"{person.first} is already on the lab's primary"
            conn.add(dn, ["inetOrgPerson"], {
                "uid": person.first, "cn": name, "sn": person.surname,
                "givenName": person.given, "displayName": name,
                "mail": f"{person.first}@{DEFAULT_MAIL_DOMAIN}", "departmentNumber": department,
                "ou": department, "userPassword": ssha(person.password, b"planbtst")})
            assert conn.result["result"] == 0, conn.result
            group = self.group_dn(department)
            if conn.search(group, "(objectClass=groupOfNames)", BASE, attributes=["1.1"]):
                conn.modify(group, {"member": [(MODIFY_ADD, [dn])]})
            else:
                conn.add(group, ["groupOfNames"], {"cn": department, "member": [dn]})
            assert conn.result["result"] == 0, conn.result
            conn.search(dn, "(objectClass=*)", BASE, attributes=["entryUUID"])
            found = conn.response[0]["attributes"]["entryUUID"]
            person.id = str(found[0] if isinstance(found, list) else found)
        finally:
            conn.unbind()
        self.record(hires=[{"id": person.id, "login": person.first,
                            "department": department}])

    def rename(self, person: Person, login: str, surname: str) -> None:
        """A new login (the entry's RDN: modify DN) and surname, as HR would; the lab's
        password of the new login (the other modules derive every agent's password from
        their login)."""
        old = self.person_dn(person.login)
        self._do(f"rename {person.login}",
                 lambda c: c.modify_dn(old, rdn("uid", login), delete_old_dn=True))
        name = f"{person.given} {surname}"
        password = agent_password(self.secret, login)
        self._do(f"name {login}", lambda c: c.modify(self.person_dn(login), {
            "sn": [(MODIFY_REPLACE, [surname])], "cn": [(MODIFY_REPLACE, [name])],
            "displayName": [(MODIFY_REPLACE, [name])],
            "userPassword": [(MODIFY_REPLACE, [ssha(password, b"planbtst")])]}))
        person.login, person.surname, person.password = login, surname, password

    def leave(self, person: Person) -> None:
        """Lock ``person`` for good (a leaver); record it."""
        self._do(f"lock {person.login}", lambda c: c.modify(self.person_dn(person.login), {
            "pwdAccountLockedTime": [(MODIFY_REPLACE, [LOCKED_FOREVER])]}))
        self.record(leavers=[{"id": person.id, "login": person.login}])

    def record(self, **kinds: list[dict[str, str]]) -> None:
        """A churn record, so lab_state.churned() counts what the module changed."""
        at = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        record = ChurnRecord(at, 0.0, **kinds)
        (self.records / f"churn-{at}-rename-chain.json").write_text(
            json.dumps(asdict(record), ensure_ascii=False) + "\n", encoding="utf-8")


def switch(site: SiteConfig, mode: str) -> None:
    """The fallback hosts' mode, set by failover.yml alone (the sync is not frozen)."""
    result = run_playbook(FAILOVER, check_inventory(site),
                          run_dir=new_run_dir(site.state_dir, FAILOVER),
                          extravars=deploy_vars(site) | {"planb_failover_mode": mode},
                          known_hosts=known_hosts_path(site))
    assert result.ok, result


@pytest.fixture(scope="module")
def lab(synced_lab: LabSession) -> Iterator[Lab]:
    site = synced_lab.site
    target = target_for(site)
    assert target is not None
    entries = Sync(site).read_fallback().entries
    department = next(e.department for e in entries.values() if e.enabled and e.department)
    people = {"y": Person("mdupont", "Marie", "Dupont"),
              "x": Person("mdurand", "Michel", "Durand"),
              "leaver": Person("lbernard", "Luc", "Bernard"),
              "squatter": Person("srobert", "Sophie", "Robert")}
    primary = Primary(site)
    for person in people.values():
        primary.hire(person, department)
    address = next(h.address for h in synced_lab.topology.hosts if h.name == "fallback")
    here = Lab(synced_lab, site, target, address, primary, people, department)
    code, out, err = here.sync()
    assert code == 0, out + err
    switch(site, "active")
    try:
        yield here
    finally:
        # X back to the login the fallback kept (no collision left), then Y back to the
        # login their localpart came from: a later rebuild of the fallback directory
        # (test_sync_ldap.py) finds accounts by login only, and would orphan @mdupont.
        for person, surname in ((people["x"], "Durand"), (people["y"], "Dupont")):
            if person.login != person.first:
                primary.rename(person, person.first, surname)
        if here.squat_room:
            with target.api() as api:
                api.delete_room(here.squat_room)
        code, out, err = here.sync()
        switch(site, "standby")
        assert code == 0, out + err


@pytest.fixture
def api(lab: Lab) -> Iterator[AdminApi]:
    with lab.target.api() as client:
        yield client


@pytest.fixture(scope="module")
def chain(lab: Lab) -> tuple[Json, str]:
    """The rename chain, synced step by step; its second step's plan and apply output."""
    y, x = lab.people["y"], lab.people["x"]
    entries = Sync(lab.site).read_fallback().entries
    assert (entries[y.id].localpart, entries[x.id].localpart) == ("mdupont", "mdurand")
    lab.primary.rename(y, "mmartin", "Martin")
    code, out, err = lab.sync()
    assert code == 0, out + err
    entries = Sync(lab.site).read_fallback().entries
    assert (entries[y.id].login, entries[y.id].localpart) == ("mmartin", "mdupont")
    lab.primary.rename(x, "mdupont", "Dupont")
    plan = lab.plan()
    code, out, err = lab.sync()
    assert code == 0, out + err
    return plan, " ".join(out.split())


def test_the_second_rename_is_a_collision_naming_both_agents(
        lab: Lab, chain: tuple[Json, str]) -> None:
    y, x = lab.people["y"], lab.people["x"]
    plan, said = chain
    collisions = [c for c in plan["collisions"] if c["refused_id"] == x.id]  # type: ignore
    assert len(collisions) == 1, plan["collisions"]
    (collision,) = collisions
    assert (collision["kept_id"], collision["refused_login"], collision["keeps_login"]) == (
        y.id, "mdupont", "mdurand"), collision
    for named in ("'mdurand'", "'mdupont'", "'mmartin'", x.id, y.id):
        assert named in collision["reason"], (named, collision["reason"])
    assert "rename of 'mdurand'" in said and "not applied" in said, said
    updates = plan["ldap"]["update"]  # type: ignore[index]
    assert not [c for u in updates if u["id"] == x.id for c in u["changes"]
                if c["field"] == "login"], updates
    entry = Sync(lab.site).read_fallback().entries[x.id]
    assert (entry.login, entry.localpart) == ("mdurand", "mdurand")


def test_y_logs_in_with_the_new_login_and_lands_in_their_own_account(
        lab: Lab, chain: tuple[Json, str], api: AdminApi) -> None:
    y = lab.people["y"]
    status, me = lab.whoami(lab.token("mmartin", y.password))
    assert (status, me.get("user_id")) == (200, lab.user_id("mdupont")), me
    users = {api.localpart(u.user_id) for u in api.users()}
    assert "mmartin" not in users, "a login created an account planb does not manage"


def test_x_lands_in_their_own_account_never_in_ys(lab: Lab, chain: tuple[Json, str]) -> None:
    x = lab.people["x"]
    # X's new login, with X's password: never Y's account (refused: the fallback has no
    # entry with that login; or, at most, X's own).
    status, answer = login(lab.site, lab.address, "mdupont", x.password)
    if status == 200:
        _, me = lab.whoami(str(answer["access_token"]))
        assert me.get("user_id") == lab.user_id("mdurand"), me
    else:
        assert status == 403, (status, answer)
    status, me = lab.whoami(lab.token("mdurand", x.password))  # the login X keeps
    assert (status, me.get("user_id")) == (200, lab.user_id("mdurand")), me
    # Y's old login opens nothing any more, with Y's password either.
    status, answer = login(lab.site, lab.address, "mdupont", lab.people["y"].password)
    assert status == 403, (status, answer.get("user_id"))


def test_a_leavers_session_stops_working_at_the_next_sync(lab: Lab) -> None:
    leaver = lab.people["leaver"]
    token = lab.token(leaver.login, leaver.password)
    status, me = lab.whoami(token)
    assert (status, me.get("user_id")) == (200, lab.user_id(leaver.login)), me
    lab.primary.leave(leaver)
    code, out, err = lab.sync()
    status, answer = lab.whoami(token)
    assert (status, answer.get("errcode")) == (401, "M_UNKNOWN_TOKEN"), (status, answer)
    assert code == 0, out + err


def test_a_department_alias_an_agent_took_first_is_refused(lab: Lab, api: AdminApi) -> None:
    squatter = lab.people["squatter"]
    token = lab.token(squatter.login, squatter.password)
    alias = room_aliases([NEW_DEPARTMENT], lab.target.names.prefix)[NEW_DEPARTMENT]
    # Public (join rule), so the admin API could force-join anyone: what an attacker
    # who wants the department in their room would make.
    status, answer = https(lab.site, lab.address, "POST", "/_matrix/client/v3/createRoom", {
        "room_alias_name": alias, "name": NEW_DEPARTMENT, "preset": "public_chat",
        "visibility": "private"}, token=token)
    assert status == 200, answer
    lab.squat_room = str(answer["room_id"])
    newcomer = Person("vpetit", "Victor", "Petit")
    lab.primary.hire(newcomer, NEW_DEPARTMENT)
    lab.people["newcomer"] = newcomer

    code, out, err = lab.sync()
    said = " ".join((out + err).split())
    members = {api.localpart(m) for m in api.members(lab.squat_room)}
    assert members == {squatter.login}, members  # no one was joined to the agent's room
    assert code != 0, said  # a refused room: reported, and the sync says so
    assert f"#{alias}:{lab.site.matrix.server_name}" in said, said
    assert lab.user_id(squatter.login) in said and "not by planb" in said, said
    # The other rooms went on: the newcomer has an account and is in the announcement room.
    localpart = Sync(lab.site).read_fallback().entries[newcomer.id].localpart
    assert localpart == newcomer.login
    announcement = api.resolve_alias(lab.target.names.announcement or "")
    assert announcement is not None
    deadline = time.monotonic() + 30
    while localpart not in {api.localpart(m) for m in api.members(announcement)}:
        assert time.monotonic() < deadline, "the newcomer never joined the announcement room"
        time.sleep(1)
    # The module's other tests sync and expect a clean run, in whatever order CI runs
    # them: the agent's room goes now (the next sync makes the department's own).
    api.delete_room(lab.squat_room)
    lab.squat_room = None
