"""What the fallback promises once active, proven on the real lab's Synapse through nginx.

The module activates the fallback (``planb failover activate``) on a synced lab and
puts it back in standby at its end. With real agents and their real passwords:

- an agent cannot post in the announcement room (read-only) yet posts in their own
  department room (so the refusal is the room's, not the server's);
- an agent cannot join another department's room (private), while its members are
  untouched;
- logins and email addresses holding LDAP filter syntax, sent with a real agent's
  password, never log in (without the LDAP guard, ``agent@metropole.la*`` finds that
  agent's entry, binds with the password and logs in as them);
- a re-deploy while active leaves the fallback active: the mode on the host, the
  state file and agents still logging in through the client API.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from planb.config import SiteConfig
from planb.directory.identifiers import room_aliases
from planb.directory.ldap_source import read_primary
from planb.directory.model import Agent
from planb.directory.sync import Sync
from planb.lab.agents import agent_password
from planb.messaging.sync_target import target_for
from planb.provisioning.deploy import run_deploy
from planb.verify.endpoints import tls_context
from tests.integration.conftest import LabSession
from tests.integration.lab_state import planb_cli

pytestmark = pytest.mark.lab
Json = dict[str, object]


@dataclass(frozen=True)
class Agents:
    """Two synced agents of different departments, their localparts and room aliases."""

    one: Agent
    other: Agent
    localparts: dict[str, str]
    rooms: dict[str, str]
    announcement: str


@pytest.fixture(scope="module")
def active_lab(synced_lab: LabSession) -> Iterator[LabSession]:
    code, out = planb_cli(synced_lab, "failover", "activate", "--reason",
                          "integration tests: the active fallback's promises", "--yes")
    assert code == 0, out
    try:
        yield synced_lab
    finally:
        code, out = planb_cli(synced_lab, "failover", "deactivate", "--reason",
                              "integration tests: active fallback done", "--yes")
        assert code == 0, out


@pytest.fixture(scope="module")
def site(active_lab: LabSession) -> SiteConfig:
    return active_lab.site


@pytest.fixture(scope="module")
def address(active_lab: LabSession) -> str:
    return next(h.address for h in active_lab.topology.hosts if h.name == "fallback")


@pytest.fixture(scope="module")
def agents(site: SiteConfig) -> Agents:
    target = target_for(site)
    assert target is not None
    entries = Sync(site).read_fallback().entries
    active = [a for a in read_primary(site).agents
              if a.enabled and a.id in entries and entries[a.id].localpart]
    one = active[len(active) // 2]
    other = next(a for a in active if a.department != one.department)
    return Agents(one, other, {a.login: str(entries[a.id].localpart) for a in active},
                  room_aliases({a.department for a in active}, target.names.prefix),
                  target.names.announcement or "")


def https(site: SiteConfig, address: str, method: str, path: str, body: object = None,
          token: str | None = None) -> tuple[int, Json]:
    """A request through nginx on the fallback, TLS verified with the planb CA."""
    conn = http.client.HTTPSConnection(site.matrix.public_hostname, 443, timeout=60)
    conn.sock = tls_context(site).wrap_socket(socket.create_connection((address, 443), 30),
                                              server_hostname=site.matrix.public_hostname)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers=headers)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        conn.close()


def password_of(site: SiteConfig, login: str) -> str:
    return agent_password((site.state_dir / "lab" / "agents-secret").read_bytes().strip(), login)


def login(site: SiteConfig, address: str, user: str, password: str, *,
          email: bool = False) -> tuple[int, Json]:
    """A password login by user name (or email address); retried while Synapse's login
    rate limit answers 429."""
    identifier = ({"type": "m.id.thirdparty", "medium": "email", "address": user} if email
                  else {"type": "m.id.user", "user": user})
    for _ in range(10):
        status, answer = https(site, address, "POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": identifier, "password": password})
        if status != 429:
            return status, answer
        time.sleep(float(str(answer.get("retry_after_ms", 2000))) / 1000 + 0.5)
    return status, answer


def token_of(site: SiteConfig, address: str, agent: Agent) -> str:
    status, answer = login(site, address, agent.login, password_of(site, agent.login))
    assert status == 200, {k: v for k, v in answer.items() if k != "access_token"}
    return str(answer["access_token"])


def room_id(site: SiteConfig, address: str, alias: str, token: str) -> str:
    full = urllib.parse.quote(f"#{alias}:{site.matrix.server_name}", safe="")
    status, answer = https(site, address, "GET", f"/_matrix/client/v3/directory/room/{full}",
                           token=token)
    assert status == 200, answer
    return str(answer["room_id"])


def post(site: SiteConfig, address: str, room: str, token: str) -> tuple[int, Json]:
    txn = f"planb-test-{time.time_ns()}"
    return https(site, address, "PUT", f"/_matrix/client/v3/rooms/"
                 f"{urllib.parse.quote(room, safe='')}/send/m.room.message/{txn}",
                 {"msgtype": "m.text", "body": "test: who may post here"}, token=token)


def test_an_agent_cannot_post_in_the_announcement_room_but_can_in_their_own(
        site: SiteConfig, address: str, agents: Agents) -> None:
    token = token_of(site, address, agents.one)
    annonces = room_id(site, address, agents.announcement, token)
    status, answer = post(site, address, annonces, token)
    assert (status, answer.get("errcode")) == (403, "M_FORBIDDEN"), answer
    own = room_id(site, address, agents.rooms[agents.one.department], token)
    status, answer = post(site, address, own, token)
    assert status == 200 and str(answer.get("event_id", "")).startswith("$"), answer


def test_an_agent_cannot_join_another_departments_room(
        site: SiteConfig, address: str, agents: Agents) -> None:
    token = token_of(site, address, agents.one)
    alias = agents.rooms[agents.other.department]
    full = urllib.parse.quote(f"#{alias}:{site.matrix.server_name}", safe="")
    status, answer = https(site, address, "POST", f"/_matrix/client/v3/join/{full}", {},
                           token=token)
    assert (status, answer.get("errcode")) == (403, "M_FORBIDDEN"), answer
    # A member of that room sees it without the intruder.
    member = token_of(site, address, agents.other)
    room = room_id(site, address, alias, member)
    status, members = https(site, address, "GET", f"/_matrix/client/v3/rooms/"
                            f"{urllib.parse.quote(room, safe='')}/joined_members",
                            token=member)
    assert status == 200, members
    joined = members["joined"]
    assert isinstance(joined, dict)
    one = f"@{agents.localparts[agents.one.login]}:{site.matrix.server_name}"
    two = f"@{agents.localparts[agents.other.login]}:{site.matrix.server_name}"
    assert two in joined and one not in joined


def test_ldap_filter_logins_with_a_real_password_never_log_in(
        site: SiteConfig, address: str, agents: Agents) -> None:
    """By login and by email address. Without the guard an email address holding ``*``
    finds the agent's entry, binds with their real password and logs in as them (a
    user name holding ``*`` binds too, but Synapse then refuses to create that user)."""
    user, mail = agents.one.login, agents.one.mail
    password = password_of(site, user)
    me = f"@{agents.localparts[user]}:{site.matrix.server_name}"
    for name, email in ((user, False), (mail, True)):  # the password is real: both log in
        status, answer = login(site, address, name, password, email=email)
        assert status == 200 and answer["user_id"] == me, (name, status, answer)
    local, domain = mail.split("@", 1)
    variants = [(v, False) for v in ("*", "*" + user[1:], user[:-1] + "*", user + ")(uid=*",
                                     f"{user})(|(uid=*", "\\2a" + user[1:],
                                     user.replace(".", "*"))]
    variants += [(v, True) for v in (f"{local[:-1]}*@{domain}", f"*{local[1:]}@{domain}",
                                     f"{mail[:-1]}*", f"{local}@*", f"{mail})(uid=*",
                                     "\\2a" + mail[1:])]
    for variant, email in variants:
        status, answer = login(site, address, variant, password, email=email)
        assert (status, answer.get("errcode")) == (403, "M_FORBIDDEN"), (variant, status,
                                                                         answer)


def test_a_redeploy_while_active_leaves_the_fallback_active(
        active_lab: LabSession, site: SiteConfig, address: str, agents: Agents) -> None:
    # The fallback hosts only: the lab's primary plays no part in the switch (and its
    # deploy is the slowest part on a busy machine).
    result = run_deploy(site, limit="fallback_directory:fallback_messaging:fallback_proxy")
    assert result.ok, result
    lab = active_lab.lab
    assert lab.run_on("fallback", ["cat", "/etc/planb/mode"]).stdout.strip() == "active"
    code, out = planb_cli(active_lab, "failover", "status", "--json")
    assert code == 0, out
    assert json.loads(out[out.index("{"):])["mode"] == "active"
    # Agents still log in (in standby Synapse refuses them) and can post in their room.
    token = token_of(site, address, agents.other)
    own = room_id(site, address, agents.rooms[agents.other.department], token)
    status, answer = post(site, address, own, token)
    assert status == 200, answer
