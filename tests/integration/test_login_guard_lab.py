"""The login path through planb's Synapse module, attacked on the real lab (issue 11, §1-3).

With a synced agent's real password, through nginx over TLS:

- standby: the right and the wrong password get byte-identical answers and slapd
  logs no search nor bind for that agent (slapd's log level is raised to ``stats``
  for this module, then put back);
- standby -> active -> standby with ``planb failover``: Synapse's MainPID does not
  change, the agent logs in only while active, and a session made while active can
  no longer post once back in standby (the standby message);
- a login opens ``@<planbLocalpart>`` even when the entry's uid differs; an entry
  whose Matrix account is missing or deactivated is refused, and no account is made;
- the agent cannot change their password or display name;
- a spray (many logins, one password each, one address) is cut off after the
  address's burst: then even the right password gets the wrong-password answer,
  whatever X-Forwarded-For the client sends. Synapse is restarted at the end (the
  limiter lives in its memory).
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from planb.config import SiteConfig
from planb.directory.ldap_source import read_primary
from planb.directory.sync import Sync
from planb.lab.agents import agent_password
from planb.verify.endpoints import tls_context
from tests.integration.conftest import LabSession
from tests.integration.lab_state import planb_cli

pytestmark = pytest.mark.lab
HOST = "fallback"
LOGIN_PATH = "/_matrix/client/v3/login"
#: Synapse's answer to a wrong password, which every refusal of the guard must match.
REFUSED = (403, b'{"errcode":"M_FORBIDDEN","error":"Invalid username or password"}')


@dataclass(frozen=True)
class Guarded:
    """The lab, the fallback's address and one synced agent with its password."""

    session: LabSession
    address: str
    login: str
    localpart: str
    password: str
    dn: str

    @property
    def site(self) -> SiteConfig:
        return self.session.site

    def user_id(self, localpart: str | None = None) -> str:
        return f"@{localpart or self.localpart}:{self.site.matrix.server_name}"


def request(g: Guarded, method: str, path: str, body: object = None, token: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One HTTPS request through nginx; the status and the raw body."""
    site = g.site
    conn = http.client.HTTPSConnection(site.matrix.public_hostname, 443, timeout=60)
    conn.sock = tls_context(site).wrap_socket(socket.create_connection((g.address, 443), 30),
                                              server_hostname=site.matrix.public_hostname)
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=sent)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def login(g: Guarded, user: str, password: str, **headers: str) -> tuple[int, bytes]:
    return request(g, "POST", LOGIN_PATH, {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
        "password": password}, headers=headers)


def ldap(g: Guarded, ldif: str, tool: str = "ldapmodify") -> str:
    done = g.session.lab.run_on(HOST, ["sh", "-c", f"printf '%s' '{ldif}' | "
                                       f"{tool} -Q -Y EXTERNAL -H ldapi:///"])
    assert done.returncode == 0, done.stderr
    return done.stdout


def slapd_lines(g: Guarded, since: float, needle: str) -> list[str]:
    """slapd's log lines since ``since`` (epoch) holding ``needle`` (case-insensitive)."""
    time.sleep(1)  # let journald catch up
    out = g.session.lab.run_on(HOST, ["journalctl", "-u", "slapd", "--since",
                                      f"@{int(since) - 1}", "-o", "cat", "--no-pager"]).stdout
    return [line for line in out.splitlines() if needle.lower() in line.lower()]


def synapse_pid(g: Guarded) -> str:
    return g.session.lab.run_on(HOST, ["systemctl", "show", "-p", "MainPID", "--value",
                                       "synapse"]).stdout.strip()


def on_host(g: Guarded, method: str, path: str, token: str = "", body: object = None
            ) -> tuple[int, object]:
    """A request to Synapse's loopback listener, made on the fallback host (python3)."""
    script = (
        "import json,sys,urllib.request,urllib.error\n"
        "m,p,t,b=sys.argv[1:5]\n"
        "r=urllib.request.Request('http://127.0.0.1:8008'+p,method=m,"
        "data=b.encode() if b else None,headers={'Authorization':'Bearer '+t} if t else {})\n"
        "try:\n r=urllib.request.urlopen(r,timeout=30);print(r.status);print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n print(e.code);print(e.read().decode())\n"
        "except OSError:\n print(0)\n")
    done = g.session.lab.run_on(HOST, ["python3", "-c", script, method, path, token,
                                       "" if body is None else json.dumps(body)])
    status, _, text = done.stdout.partition("\n")
    assert status.strip().isdigit(), done.stderr
    try:
        return int(status), json.loads(text) if text.strip() else {}
    except ValueError:  # /health answers plain text
        return int(status), {"text": text.strip()}


def admin_api(g: Guarded, method: str, path: str, body: object = None) -> tuple[int, object]:
    """The admin API on the host's loopback, with planb's admin token."""
    token = (g.site.state_dir / "synapse" / "admin-token").read_text().strip()
    return on_host(g, method, urllib.parse.quote(path, safe="/:@"), token, body)


def restart_synapse(g: Guarded) -> None:
    """Restart Synapse and wait for /health (the spray's cleanup, and breaking tests)."""
    g.session.lab.run_on(HOST, ["systemctl", "restart", "synapse"], timeout=120)
    deadline = time.monotonic() + 90
    while on_host(g, "GET", "/health")[0] != 200:
        assert time.monotonic() < deadline, "Synapse did not come back"
        time.sleep(1)


def switch(g: Guarded, mode: str) -> float:
    """planb failover activate/deactivate; how long it took (s)."""
    verb = "activate" if mode == "active" else "deactivate"
    t0 = time.monotonic()
    code, out = planb_cli(g.session, "failover", verb, "--reason", "login guard lab test",
                          "--yes")
    assert code == 0, out
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def guarded(synced_lab: LabSession) -> Iterator[Guarded]:
    """A synced agent (uid = localpart) and slapd logging every operation meanwhile."""
    site = synced_lab.site
    entries = Sync(site).read_fallback().entries
    agent = next(a for a in read_primary(site).agents[10:]
                 if a.enabled and a.id in entries and entries[a.id].localpart == a.login)
    password = agent_password((site.state_dir / "lab" / "agents-secret").read_bytes().strip(),
                              agent.login)
    address = synced_lab.topology.host(HOST).address
    found = synced_lab.lab.run_on(HOST, [
        "ldapsearch", "-LLL", "-Q", "-Y", "EXTERNAL", "-H", "ldapi:///", "-b",
        f"ou=people,{site.fallback.ldap_suffix}", f"(uid={agent.login})", "1.1"]).stdout
    dn = found.split("dn: ", 1)[1].split("\n", 1)[0].strip()
    g = Guarded(synced_lab, address, agent.login, agent.login, password, dn)
    level = synced_lab.lab.run_on(HOST, [
        "ldapsearch", "-LLL", "-Q", "-Y", "EXTERNAL", "-H", "ldapi:///", "-b", "cn=config",
        "-s", "base", "olcLogLevel"]).stdout
    before = [line.split(":", 1)[1].strip() for line in level.splitlines()
              if line.startswith("olcLogLevel:")] or ["none"]
    ldap(g, "dn: cn=config\nchangetype: modify\nreplace: olcLogLevel\nolcLogLevel: stats\n")
    try:
        yield g
    finally:
        # What the module said, for whoever reads a failed run.
        print(synced_lab.lab.run_on(HOST, ["sh", "-c", "journalctl -u synapse -o cat "
                                             "--no-pager | grep -i 'planb\\|error' | tail -60"]
                                     ).stdout)
        ldap(g, "dn: cn=config\nchangetype: modify\nreplace: olcLogLevel\n"
             + "".join(f"olcLogLevel: {v}\n" for v in before))
        out = planb_cli(synced_lab, "failover", "status", "--json")[1]
        if json.loads(out[out.index("{"):])["mode"] != "standby":
            planb_cli(synced_lab, "failover", "deactivate", "--reason", "test over", "--yes")


def test_standby_gives_one_answer_whatever_the_password_and_asks_no_directory(
        guarded: Guarded) -> None:
    g = guarded
    assert g.session.lab.run_on(HOST, ["cat", "/etc/planb/mode"]).stdout.strip() == "standby"
    since = time.time()
    right = login(g, g.login, g.password)
    wrong = login(g, g.login, g.password + "x")
    assert right[0] == 403 and json.loads(right[1])["errcode"] == "M_FORBIDDEN", right
    assert right == wrong
    assert slapd_lines(g, since, g.dn) == []
    assert slapd_lines(g, since, f"uid={g.login}") == []


def test_the_switch_needs_no_restart_and_decides_every_login(guarded: Guarded) -> None:
    g = guarded
    pid = synapse_pid(g)
    wrong_standby = login(g, g.login, g.password + "x")
    took = switch(g, "active")
    try:
        since = time.time()
        status, body = login(g, g.login, g.password)
        assert status == 200, body
        assert json.loads(body)["user_id"] == g.user_id()
        token = json.loads(body)["access_token"]
        # The directory was asked this time: the log check above can see a bind.
        assert slapd_lines(g, since, f'BIND dn="{g.dn}"'), "no bind logged while active"
    finally:
        took_back = switch(g, "standby")
    assert login(g, g.login, g.password) == wrong_standby
    # A session made while active cannot post in standby (what hs_disabled did).
    status, body = request(g, "POST", "/_matrix/client/v3/createRoom", {"name": "x"},
                           token=token)
    assert status == 403 and "messagerie de secours" in json.loads(body)["error"], body
    assert synapse_pid(g) == pid, "Synapse was restarted by the switch"
    print(f"failover activate took {took:.1f} s, deactivate {took_back:.1f} s")


@pytest.fixture
def active(guarded: Guarded) -> Iterator[Guarded]:
    switch(guarded, "active")
    try:
        yield guarded
    finally:
        switch(guarded, "standby")


def test_a_login_opens_the_entrys_own_account_and_never_makes_one(active: Guarded) -> None:
    g = active
    people = f"ou=people,{g.site.fallback.ldap_suffix}"
    parent = g.dn.split(",", 1)[1]
    renamed = f"{g.login}-renamed"
    ldap(g, f"dn: {g.dn}\nchangetype: modrdn\nnewrdn: uid={renamed}\ndeleteoldrdn: 1\n")
    try:
        status, body = login(g, renamed, g.password)
        assert status == 200 and json.loads(body)["user_id"] == g.user_id(), body
        # The old login is nobody's now: refused, and no @<old login> is made.
        assert login(g, g.login, g.password)[0] == 403
    finally:
        ldap(g, f"dn: uid={renamed},{parent}\nchangetype: modrdn\nnewrdn: uid={g.login}\n"
             "deleteoldrdn: 1\n")
    # An entry whose Matrix account does not exist, then one whose account is deactivated.
    ghost = "planb-test-" + secrets.token_hex(3)
    ldap(g, f"dn: uid={ghost},{people}\nchangetype: add\nobjectClass: inetOrgPerson\n"
         f"objectClass: planbAgent\nplanbSourceId: {ghost}\nuid: {ghost}\ncn: {ghost}\n"
         f"sn: {ghost}\n"
         f"planbLocalpart: {ghost}\nuserPassword: {g.password}\n")
    try:
        assert login(g, ghost, g.password) == REFUSED
        assert admin_api(g, "GET", f"/_synapse/admin/v2/users/{g.user_id(ghost)}")[0] == 404
        status, _ = admin_api(g, "PUT", f"/_synapse/admin/v2/users/{g.user_id(ghost)}",
                              {"displayname": ghost})
        assert status == 201
        assert login(g, ghost, g.password)[0] == 200  # the account exists: in
        assert admin_api(g, "POST", f"/_synapse/admin/v1/deactivate/{g.user_id(ghost)}",
                         {"erase": False})[0] == 200
        # Refused by the guard like a wrong password (Synapse's own check would answer
        # M_USER_DEACTIVATED: that the password was right).
        assert login(g, ghost, g.password) == REFUSED
    finally:
        ldap(g, f"dn: uid={ghost},{people}\nchangetype: delete\n")


def test_an_agent_cannot_change_their_password_or_name(active: Guarded) -> None:
    g = active
    status, body = login(g, g.login, g.password)
    assert status == 200, body
    token = json.loads(body)["access_token"]
    quoted = urllib.parse.quote(g.user_id(), safe="")
    status, body = request(g, "PUT", f"/_matrix/client/v3/profile/{quoted}/displayname",
                           {"displayname": "Cellule de crise"}, token=token)
    assert status == 403 and b"display name is disabled" in body, body
    new = secrets.token_urlsafe(16)
    status, body = request(g, "POST", "/_matrix/client/v3/account/password", {
        "new_password": new, "logout_devices": False,
        "auth": {"type": "m.login.password", "password": g.password,
                 "identifier": {"type": "m.id.user", "user": g.login}}}, token=token)
    assert status == 403 and b"Password change disabled" in body, body
    assert login(g, g.login, new)[0] == 403
    assert login(g, g.login, g.password)[0] == 200


def test_a_spray_from_one_address_is_cut_off_after_the_burst(active: Guarded) -> None:
    g = active
    try:
        wrong = login(g, g.login, g.password + "x")
        assert wrong[0] == 403
        # synapse_failed_per_address: burst 500, refilled at 0.2/s while the spray runs.
        burst, rate, sprayed, t0 = 500, 0.2, 0, time.monotonic()
        while sprayed < burst + rate * (time.monotonic() - t0) + 5:
            status, _ = login(g, f"spray-{sprayed}-{secrets.token_hex(2)}", g.password)
            assert status in (403, 429), status
            sprayed += 1
        # The address's bucket is empty: the right password gets the wrong one's answer,
        # even claiming another address (nginx sets X-Forwarded-For itself).
        since = time.time()
        assert login(g, g.login, g.password) == wrong
        assert login(g, g.login, g.password, **{"X-Forwarded-For": "192.0.2.7"}) == wrong
        assert slapd_lines(g, since, g.dn) == []
    finally:
        restart_synapse(g)  # the limiter lives in Synapse's memory: refilled for what follows
