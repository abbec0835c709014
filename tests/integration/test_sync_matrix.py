"""The sync's Matrix side against the lab's real Synapse (admin API through the SSH tunnel).

On the session's lab (300 agents), synced when the module starts (``synced_lab``,
``--adopt`` after test_sync_ldap.py rebuilt the fallback directory without Matrix);
each test leaves it converged, so they pass in any order. A sync apply gives every active
agent a Matrix account with the right display name, each department one room with
exactly its active agents, the announcement room with all of them, and then an empty
plan (LDAP and Matrix); paging the user list gives the same users whatever the page
size; ``planb lab churn --percent 5`` gives a plan whose Matrix items are what churn
recorded, and apply converges (leavers deactivated, not erased; movers change rooms);
with the fallback switched active, a seeded agent logs in through nginx with their
primary password and reads the announcement, a leaver cannot log in; an apply killed
with SIGKILL midway through its room joins converges on the next run.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from planb import PLAYBOOKS_DIR
from planb.config import SiteConfig
from planb.directory.identifiers import localpart_for, room_aliases
from planb.directory.ldap_source import read_primary
from planb.directory.sync import Sync
from planb.hostkeys import known_hosts_path
from planb.lab.agents import agent_password
from planb.messaging.admin_api import AdminApi, quote
from planb.messaging.announce import announce
from planb.messaging.sync_target import SynapseTarget, target_for
from planb.provisioning import new_run_dir, run_playbook
from planb.provisioning.deploy import check_inventory
from planb.verify.endpoints import tls_context
from tests.integration.conftest import LabSession
from tests.integration.test_sync_ldap import cli

pytestmark = pytest.mark.lab
FAILOVER = PLAYBOOKS_DIR / "failover.yml"


@pytest.fixture(scope="module")
def site(synced_lab: LabSession) -> SiteConfig:
    return synced_lab.site


@pytest.fixture(scope="module")
def target(site: SiteConfig) -> SynapseTarget:
    found = target_for(site)
    assert found is not None, "the deployed lab has a messaging host and an admin token"
    return found


@pytest.fixture
def api(target: SynapseTarget) -> Iterator[AdminApi]:
    with target.api() as client:
        yield client


def plan_json(site: SiteConfig, path: Path | None = None, *extra: str) -> dict[str, object]:
    code, out, err = cli(site, "sync", "plan", "--json", *(["-o", str(path)] if path else []),
                         *extra)
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def assert_matrix_converged(site: SiteConfig, api: AdminApi, target: SynapseTarget) -> None:
    """Synapse holds what the primary says: users, names, rooms and their members."""
    source = read_primary(site)
    entries = Sync(site).read_fallback().entries
    users = {api.localpart(u.user_id): u for u in api.users()}
    by_department: dict[str, set[str]] = {}
    for agent in source.agents:
        localpart = entries[agent.id].localpart if agent.id in entries else None
        if agent.enabled:
            assert localpart is not None, agent.login
            user = users[localpart]
            assert not user.deactivated and user.display_name == agent.display_name
            by_department.setdefault(agent.department, set()).add(localpart)
        elif localpart is not None and localpart in users:
            assert users[localpart].deactivated, f"leaver {agent.login} still active"
    aliases = room_aliases(by_department, target.names.prefix)
    rooms = [r for r in api.rooms() if r.get("creator") == target.admin_id]
    seen = Counter(r.get("canonical_alias") for r in rooms if r.get("canonical_alias"))
    assert all(n == 1 for n in seen.values()), f"duplicated rooms: {seen.most_common(3)}"
    for department, members in by_department.items():
        room_id = api.resolve_alias(aliases[department])
        assert room_id is not None, department
        joined = {api.localpart(m) for m in api.members(room_id)} - {"planb-admin"}
        assert joined == members, department
        assert api.room(room_id)["name"] == department
    everyone = set().union(*by_department.values())
    room_id = api.resolve_alias(target.names.announcement or "")
    assert room_id is not None
    joined = {api.localpart(m) for m in api.members(room_id)} - {"planb-admin"}
    agents = {e.localpart for e in entries.values() if e.localpart}
    # Every active agent and no leaver; an activation's announcement may also have
    # caught up other ordinary local accounts (an earlier test's), which the sync leaves.
    assert everyone <= joined and (joined - everyone).isdisjoint(agents), (
        sorted(everyone - joined)[:5], sorted((joined - everyone) & agents)[:5])


def test_sync_apply_provisions_users_rooms_and_the_announcement_room(
        site: SiteConfig, target: SynapseTarget, api: AdminApi) -> None:
    code, out, err = cli(site, "sync", "apply", "--yes")
    assert code == 0, err
    # Earlier tests of the session may have synced already: then there is nothing to do.
    assert "applied and confirmed" in out or "nothing to" in out, out
    assert_matrix_converged(site, api, target)
    summary = plan_json(site)["summary"]
    assert isinstance(summary, dict)
    assert {k: v for k, v in summary.items() if v and k not in ("kept", "rejected")} == {}


def test_user_paging_gives_the_same_users_whatever_the_page_size(api: AdminApi) -> None:
    whole = [u.user_id for u in api.users()]
    paged = [u.user_id for u in api.users(page_size=37)]
    assert len(whole) > 37 * 3
    assert sorted(paged) == sorted(whole) and len(set(paged)) == len(paged)


def test_churn_is_what_the_matrix_plan_lists_and_apply_converges(
        site: SiteConfig, target: SynapseTarget, api: AdminApi, tmp_path: Path) -> None:
    code, out, err = cli(site, "lab", "churn", "--percent", "5", "--seed", "11", "--json")
    assert code == 0, err
    record = json.loads(out)
    entries = Sync(site).read_fallback().entries
    localpart = {i: e.localpart for i, e in entries.items()}
    accounts = {api.localpart(u.user_id) for u in api.users()}
    plan = plan_json(site, tmp_path / "plan.json", "--adopt")
    matrix = plan["matrix"]
    assert isinstance(matrix, dict), plan.keys()
    ids = {kind: {x["id"] for x in record[kind]} for kind in
           ("hires", "leavers", "renames", "moves", "reactivations")}
    # A reactivated leaver whose Matrix account is still there gets it back (a leaver
    # may have no fallback entry when the fallback LDAP was rebuilt: --adopt found it).
    logins = {a.id: a.login for a in read_primary(site).agents}
    back = {i for i in ids["reactivations"]
            if localpart.get(i, localpart_for(logins[i])) in accounts}
    assert {c["id"] for c in matrix["create"]} == ids["hires"] | (ids["reactivations"] - back)
    assert {c["id"] for c in matrix["reactivate"]} == back
    assert {c["id"] for c in matrix["deactivate"]} == ids["leavers"]
    assert {c["id"]: c["new"] for c in matrix["display_name"]} == {
        r["id"]: r["new"] for r in record["renames"]}
    joins = {(c["alias"], lp) for c in matrix["room_change"] for lp in c["joins"]}
    leaves = {(c["alias"], lp) for c in matrix["room_change"] for lp in c["leaves"]}
    aliases = room_aliases([m["old"] for m in record["moves"]] + [m["new"] for m in
                                                                   record["moves"]])
    for move in record["moves"]:
        lp = localpart[move["id"]]
        assert (aliases[move["old"]], lp) in leaves and (aliases[move["new"]], lp) in joins
    leaver_lp = localpart[record["leavers"][0]["id"]]

    code, out, err = cli(site, "sync", "apply", str(tmp_path / "plan.json"), "--yes",
                         "--adopt")
    assert code == 0, err
    assert "applied and confirmed" in out
    assert_matrix_converged(site, api, target)
    uid = api.user_id(leaver_lp or "")
    leaver = api.request("GET", f"/_synapse/admin/v2/users/{quote(uid)}", what="read")
    assert leaver["deactivated"] is True and leaver.get("erased") is False


def _failover(site: SiteConfig, mode: str) -> None:
    result = run_playbook(FAILOVER, check_inventory(site),
                          run_dir=new_run_dir(site.state_dir, FAILOVER),
                          extravars={"planb_action": "failover", "planb_site": site.site,
                                     "planb_state_dir": str(site.state_dir),
                                     "planb_failover_mode": mode},
                          known_hosts=known_hosts_path(site))
    assert result.ok, result


def _https(site: SiteConfig, address: str, method: str, path: str, body: object = None,
           token: str | None = None) -> tuple[int, dict[str, object]]:
    """A request through nginx on the fallback, TLS verified with the planb CA."""
    conn = http.client.HTTPSConnection(site.matrix.public_hostname, 443, timeout=30)
    conn.sock = tls_context(site).wrap_socket(socket.create_connection((address, 443), 30),
                                              server_hostname=site.matrix.public_hostname)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers=headers)
    answer = conn.getresponse()
    data = json.loads(answer.read() or b"{}")
    conn.close()
    return answer.status, data


def _login(site: SiteConfig, address: str, login: str) -> tuple[int, dict[str, object]]:
    secret = (site.state_dir / "lab" / "agents-secret").read_bytes().strip()
    return _https(site, address, "POST", "/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": login},
        "password": agent_password(secret, login)})


def test_agent_logs_in_through_nginx_and_reads_the_announcement_a_leaver_cannot(
        deployed_lab: LabSession, site: SiteConfig, target: SynapseTarget) -> None:
    source = read_primary(site)
    entries = Sync(site).read_fallback().entries
    agent = next(a for a in source.agents if a.enabled and a.id in entries)
    # Prefer a leaver with a (locked) fallback entry; after a rebuild some have none.
    leaver = min((a for a in source.agents if not a.enabled), key=lambda a: a.id not in entries)
    address = next(h.address for h in deployed_lab.topology.hosts if h.name == "fallback")
    text = f"Test d'annonce planb {time.time_ns()}"
    _failover(site, "active")
    try:
        report = announce(site, text)
        assert report.ok, report.failures[:5]
        assert report.delivered == report.active_agents > 0
        status, answer = _login(site, address, agent.login)
        assert status == 200, {k: v for k, v in answer.items() if k != "access_token"}
        assert answer["user_id"] == f"@{entries[agent.id].localpart}:{site.matrix.server_name}"
        status, synced = _https(site, address, "GET", "/_matrix/client/v3/sync?timeout=0",
                                token=str(answer["access_token"]))
        assert status == 200
        rooms = synced["rooms"]["join"]  # type: ignore[index]
        bodies = [e.get("content", {}).get("body") for room in rooms.values()
                  for e in room["timeline"]["events"]]
        assert text in bodies
        status, refused = _login(site, address, leaver.login)
        assert status == 403, refused
    finally:
        _failover(site, "standby")


def test_apply_killed_midway_through_joins_converges(
        site: SiteConfig, target: SynapseTarget, api: AdminApi) -> None:
    room_id = api.resolve_alias(target.names.announcement or "")
    assert room_id is not None
    members = sorted(lp for m in api.members(room_id)
                     if (lp := api.localpart(m)) and lp != "planb-admin")
    removed = members[:120]
    for lp in removed:  # a night's worth of joins to redo
        api.kick(room_id, lp, "test")
    before = len(api.members(room_id))
    proc = subprocess.Popen([sys.executable, "-m", "planb.cli.main", "--config",
                             str(site.source), "sync", "apply", "--yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    now = before
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        now = len(api.members(room_id))
        if now >= before + 5:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.1)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "apply ended before it could be killed"
    assert before < now < before + len(removed)
    code, out, err = cli(site, "sync", "apply", "--yes")
    assert code == 0, err
    assert "applied and confirmed" in out
    assert_matrix_converged(site, api, target)
