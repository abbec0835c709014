"""The enrolment page on the lab (issue 12 §2): a real nginx, Synapse and slapd.

The fallback stays in standby throughout. Test agents get a code the way the sync
gives one (the scrypt hash written with the sync account, planb.enrolment_code), then
the form is posted through the proxy over TLS as a browser would: a wrong code is
refused with the very page an unknown login gets, a weak password with the policy's
French message, the right code sets the password (the agent then binds to the
fallback directory with it, the code is gone, planbEnrolledAt is set), the code reused
is refused, a code is locked after max_failures wrong tries (and then refused even
when right), an expired code is refused, the per-login bucket answers 429. The audit
log holds one line per attempt and neither codes nor passwords (nor does Synapse's
journal), and the agent still cannot log in to Matrix in standby.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import ldap3
import pytest

from planb.config import SiteConfig
from planb.directory.enrolment import reissue_codes
from planb.directory.fallback_endpoint import fallback_endpoint
from planb.enrol_page import SUBMIT_PATH
from planb.enrolment_code import ALPHABET, hash_code
from planb.inventory import InventoryHost, hosts_in
from planb.lab.agents import agent_password, ssha
from planb.verify.endpoints import tls_context
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab

AUDIT_LOG = "/var/log/planb/enrolment.log"
REFUSED = "Identifiant ou code d'inscription incorrect."
TOO_SHORT = "Le mot de passe est trop court"
SUCCESS = "Votre mot de passe est enregistré."
EXPIRED = "Ce code d'inscription a expiré"
WAIT = "Trop de tentatives."


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    client: str  # our address as the proxy saw it


@dataclass
class Agent:
    login: str
    dn: str
    code: str
    password: str


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(12))


def other_code(code: str) -> str:
    return code[:-1] + ("2" if code[-1] != "2" else "3")


def fmt(code: str) -> str:
    return f"{code[:4]}-{code[4:8]}-{code[8:]}"


def https(site: SiteConfig, proxy: InventoryHost, method: str, path: str,
          body: bytes = b"", content_type: str = "application/x-www-form-urlencoded"
          ) -> Answer:
    """One request to https://<public_hostname><path> at the proxy, as a browser sends it."""
    name = site.matrix.public_hostname
    with socket.create_connection((proxy.address, 443), 30) as plain:
        client = plain.getsockname()[0]
        tls = tls_context(site).wrap_socket(plain, server_hostname=name)
        head = (f"{method} {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")
        tls.sendall(head.encode() + body)
        response = http.client.HTTPResponse(tls, method=method)
        response.begin()
        text = response.read(1 << 20).decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in response.getheaders()}
        response.close()
        tls.close()
        return Answer(response.status, headers, text, client)


def enrol(site: SiteConfig, proxy: InventoryHost, login: str, code: str, password: str,
          password2: str | None = None) -> Answer:
    form = {"login": login, "code": code, "password": password,
            "password2": password if password2 is None else password2}
    return https(site, proxy, "POST", SUBMIT_PATH, urlencode(form).encode())


def message(answer: Answer) -> str:
    found = re.search(r'<p id="enrol-message" class="error" role="alert">([^<]*)</p>',
                      answer.text)
    return html.unescape(found.group(1)) if found else ""


class Directory:
    """The fallback directory as planb's sync account (and as an agent, to bind)."""

    def __init__(self, site: SiteConfig) -> None:
        self.site, self.endpoint = site, fallback_endpoint(site)

    def entry(self, login: str) -> dict[str, list[str]]:
        conn = self.endpoint.connect()
        try:
            conn.search(f"ou=people,{self.site.fallback.ldap_suffix}", f"(uid={login})",
                        attributes=["planbEnrolmentCode", "planbEnrolmentExpires",
                                    "planbEnrolmentFailures", "planbEnrolledAt"])
            (found,) = [e for e in conn.response if e.get("type") == "searchResEntry"]
            attrs = {k: [str(v) for v in (vals if isinstance(vals, list) else [vals])]
                     for k, vals in found["attributes"].items() if vals not in ([], None)}
            return {"dn": [str(found["dn"])], **attrs}
        finally:
            conn.unbind()

    def agents(self, count: int) -> list[tuple[str, str]]:
        conn = self.endpoint.connect()
        try:
            conn.search(f"ou=people,{self.site.fallback.ldap_suffix}",
                        "(&(objectClass=planbAgent)(planbLocalpart=*)"
                        "(!(pwdAccountLockedTime=*)))", attributes=["uid"], size_limit=400)
            found = sorted((str(e["attributes"]["uid"][0]), str(e["dn"]))
                           for e in conn.response if e.get("type") == "searchResEntry")
        finally:
            conn.unbind()
        assert len(found) >= count + 20, found[:3]
        return found[-count:]  # far from the agents other modules pick first

    def give_code(self, dn: str, code: str, expires: datetime) -> None:
        """What the sync does for an agent without a code (ENROL.md 'The sync')."""
        conn = self.endpoint.connect()
        try:
            ok = conn.modify(dn, {
                "planbEnrolmentCode": [(ldap3.MODIFY_REPLACE, [hash_code(code)])],
                "planbEnrolmentExpires": [(ldap3.MODIFY_REPLACE,
                                           [expires.strftime("%Y%m%d%H%M%SZ")])],
                "planbEnrolmentFailures": [(ldap3.MODIFY_REPLACE, [])],
                "planbEnrolledAt": [(ldap3.MODIFY_REPLACE, [])]})
            assert ok, conn.result
        finally:
            conn.unbind()

    def binds(self, dn: str, password: str) -> bool:
        conn = ldap3.Connection(self.endpoint.server(), user=dn, password=password,
                                raise_exceptions=False)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()


@pytest.fixture(scope="module")
def proxy(synced_lab: LabSession) -> InventoryHost:
    return hosts_in(synced_lab.site, "fallback_proxy")[0]


@pytest.fixture(scope="module")
def messaging(synced_lab: LabSession) -> InventoryHost:
    return hosts_in(synced_lab.site, "fallback_messaging")[0]


@pytest.fixture(scope="module")
def directory(synced_lab: LabSession) -> Directory:
    return Directory(synced_lab.site)


@pytest.fixture(scope="module")
def agents(directory: Directory) -> Iterator[dict[str, Agent]]:
    picked = directory.agents(3)
    made = {}
    for role, (login, dn) in zip(("main", "locked", "expired"), picked, strict=True):
        code = new_code()
        when = datetime.now(UTC) + (timedelta(days=-1) if role == "expired"
                                    else timedelta(days=30))
        directory.give_code(dn, code, when)
        made[role] = Agent(login, dn, code, f"Secours-{secrets.token_hex(4)}-Az9")
    yield made
    # The modules share one lab: put back what this one changed. Each agent gets a real
    # code again (derived from the site's key, as the sync issues them: the letters are
    # checked against it) and the password the lab's primary gives them.
    site = directory.site
    report = reissue_codes(site, [a.login for a in made.values()])
    assert not report.refused, report.refused
    secret = (site.state_dir / "lab" / "agents-secret").read_bytes().strip()
    conn = directory.endpoint.connect()
    try:
        for a in made.values():
            hashed = ssha(agent_password(secret, a.login), secrets.token_bytes(8))
            assert conn.modify(a.dn, {"userPassword": [(ldap3.MODIFY_REPLACE, [hashed])]}), \
                conn.result
    finally:
        conn.unbind()


def test_the_form_is_served_and_the_module_path_is_not(
        synced_lab: LabSession, proxy: InventoryHost) -> None:
    page = https(synced_lab.site, proxy, "GET", "/enrol/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp, csp
    assert '<html lang="fr">' in page.text and "<script" not in page.text
    for name in ("login", "code", "password", "password2"):
        assert f'name="{name}"' in page.text
    assert https(synced_lab.site, proxy, "GET", SUBMIT_PATH).status == 403
    assert https(synced_lab.site, proxy, "POST", "/_synapse/client/planb_enrol",
                 b"login=x").status == 404
    big = https(synced_lab.site, proxy, "POST", SUBMIT_PATH, b"login=" + b"a" * 8000)
    assert big.status == 413


def step_wrong_code_is_refused_like_an_unknown_login(
        synced_lab: LabSession, proxy: InventoryHost, directory: Directory,
        agents: dict[str, Agent]) -> None:
    a = agents["main"]
    wrong = enrol(synced_lab.site, proxy, a.login, fmt(other_code(a.code)), a.password)
    ghost = enrol(synced_lab.site, proxy, "personne-inconnue", fmt(a.code), a.password)
    assert wrong.status == ghost.status == 403, (wrong.status, ghost.status)
    assert message(wrong).startswith(REFUSED), wrong.text[:800]
    # The very same page, but for the login typed back into the form.
    assert wrong.text.replace(f'value="{a.login}"', 'value=""') == \
        ghost.text.replace('value="personne-inconnue"', 'value=""')
    assert directory.entry(a.login)["planbEnrolmentFailures"] == ["1"]


def step_weak_password_gets_the_policy_message(
        synced_lab: LabSession, proxy: InventoryHost, directory: Directory,
        agents: dict[str, Agent]) -> None:
    a = agents["main"]
    weak = enrol(synced_lab.site, proxy, a.login, fmt(a.code), "Court-1")
    assert weak.status == 400 and message(weak).startswith(TOO_SHORT), message(weak)
    assert "planbEnrolmentCode" in directory.entry(a.login)


def step_right_code_sets_the_password_and_is_spent(
        synced_lab: LabSession, proxy: InventoryHost, directory: Directory,
        agents: dict[str, Agent]) -> None:
    a = agents["main"]
    assert not directory.binds(a.dn, a.password)
    done = enrol(synced_lab.site, proxy, a.login, a.code.lower(), a.password)
    assert done.status == 200 and SUCCESS in done.text, done.text[:800]
    assert '<a href="/app/">' in done.text
    assert "default-src 'none'" in done.headers["content-security-policy"]
    assert directory.binds(a.dn, a.password)
    entry = directory.entry(a.login)
    assert not {"planbEnrolmentCode", "planbEnrolmentExpires",
                "planbEnrolmentFailures"} & set(entry), entry
    assert entry["planbEnrolledAt"][0].startswith(str(datetime.now(UTC).year)), entry
    again = enrol(synced_lab.site, proxy, a.login, fmt(a.code), a.password + "x")
    assert again.status == 403 and message(again).startswith(REFUSED)
    assert directory.binds(a.dn, a.password)


def step_standby_still_refuses_the_enrolled_agent_at_matrix_login(
        synced_lab: LabSession, proxy: InventoryHost, agents: dict[str, Agent]) -> None:
    a = agents["main"]
    body = json.dumps({"type": "m.login.password", "password": a.password,
                       "identifier": {"type": "m.id.user", "user": a.login}}).encode()
    answer = https(synced_lab.site, proxy, "POST", "/_matrix/client/v3/login", body,
                   "application/json")
    assert answer.status == 403 and "M_FORBIDDEN" in answer.text, answer.text


def step_code_locks_after_max_failures_even_when_then_right(
        synced_lab: LabSession, proxy: InventoryHost, directory: Directory,
        agents: dict[str, Agent]) -> None:
    b, limit = agents["locked"], synced_lab.site.enrolment.max_failures
    for _ in range(limit):
        wrong = enrol(synced_lab.site, proxy, b.login, fmt(other_code(b.code)), b.password)
        assert wrong.status == 403 and message(wrong).startswith(REFUSED)
    assert directory.entry(b.login)["planbEnrolmentFailures"] == [str(limit)]
    right = enrol(synced_lab.site, proxy, b.login, fmt(b.code), b.password)
    assert right.status == 403 and message(right).startswith(REFUSED), right.text[:800]
    assert not directory.binds(b.dn, b.password)
    assert "planbEnrolmentCode" in directory.entry(b.login)


def step_expired_code_is_refused(synced_lab: LabSession, proxy: InventoryHost,
                                 directory: Directory, agents: dict[str, Agent]) -> None:
    c = agents["expired"]
    late = enrol(synced_lab.site, proxy, c.login, fmt(c.code), c.password)
    assert late.status == 403 and message(late).startswith(EXPIRED), late.text[:800]
    assert not directory.binds(c.dn, c.password)


def step_per_login_bucket(synced_lab: LabSession, proxy: InventoryHost) -> None:
    """Ten failures for one login at once, then one a minute (the role's default)."""
    statuses = [enrol(synced_lab.site, proxy, "fantome", fmt(new_code()),
                      "Secours-Az9-inconnu").status for _ in range(11)]
    assert statuses[:10] == [403] * 10 and statuses[10] == 429, statuses
    waited = enrol(synced_lab.site, proxy, "fantome", fmt(new_code()), "Secours-Az9-x")
    assert waited.status == 429 and message(waited).startswith(WAIT)


def step_audit_log_has_every_attempt_and_no_secret(
        synced_lab: LabSession, proxy: InventoryHost, messaging: InventoryHost,
        agents: dict[str, Agent]) -> None:
    lab = synced_lab.lab
    shown = lab.run_on(messaging.name, ["cat", AUDIT_LOG])
    assert shown.returncode == 0, shown.stderr
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    me = https(synced_lab.site, proxy, "GET", "/enrol/").client
    a, b, c = agents["main"], agents["locked"], agents["expired"]
    seen = [(x["login"], x["outcome"]) for x in lines if x["address"] == me]
    assert (a.login, "wrong_code") in seen and ("personne-inconnue", "unknown_login") in seen
    assert (a.login, "too_short") in seen and (a.login, "enrolled") in seen
    assert (a.login, "no_code") in seen and (b.login, "locked") in seen
    assert seen.count((b.login, "wrong_code")) == synced_lab.site.enrolment.max_failures
    assert (c.login, "expired") in seen and ("fantome", "rate_limited") in seen
    assert all(set(x) == {"time", "login", "address", "outcome"} for x in lines)
    journal = lab.run_on(messaging.name, ["journalctl", "-u", "synapse", "--no-pager",
                                          "-o", "cat", "--since", "-1h"], timeout=120)
    for agent in agents.values():
        for secret in (agent.password, agent.code, fmt(agent.code), other_code(agent.code)):
            assert secret not in shown.stdout, "a secret in the audit log"
            assert secret not in journal.stdout, "a secret in Synapse's journal"
    assert "planb enrol:" in journal.stdout  # the journal was read, and the module logs


def step_audit_log_rotates_and_the_next_attempt_starts_a_new_file(
        synced_lab: LabSession, proxy: InventoryHost, messaging: InventoryHost) -> None:
    """logrotate (daily timer) renames the log as its owner; the module's next line
    creates a fresh one, nothing lost."""
    lab = synced_lab.lab
    timer = lab.run_on(messaging.name, ["systemctl", "is-enabled", "logrotate.timer"])
    assert timer.stdout.strip() == "enabled", timer.stdout + timer.stderr
    before = lab.run_on(messaging.name, ["cat", AUDIT_LOG]).stdout
    assert before
    forced = lab.run_on(messaging.name, ["logrotate", "--force",
                                         "/etc/logrotate.d/planb-enrolment"])
    assert forced.returncode == 0, forced.stderr
    rotated = lab.run_on(messaging.name, ["sh", "-c", f"cat {AUDIT_LOG}-*"])
    assert rotated.returncode == 0 and rotated.stdout == before, rotated.stderr
    enrol(synced_lab.site, proxy, "apres-rotation", fmt(new_code()), "Secours-Az9-x")
    fresh = lab.run_on(messaging.name, ["sh", "-c", f"stat -c '%U %a' {AUDIT_LOG}; "
                                                    f"cat {AUDIT_LOG}"])
    owner, *lines = fresh.stdout.splitlines()
    assert owner == "synapse 640", fresh.stdout
    assert [json.loads(line)["login"] for line in lines] == ["apres-rotation"], lines


def test_one_agents_enrolment_step_by_step(
        synced_lab: LabSession, proxy: InventoryHost, messaging: InventoryHost,
        directory: Directory, agents: dict[str, Agent]) -> None:
    """The steps share the agents' codes (wrong, weak, right, reused; a lock; the audit
    of them all), so they run in this order whatever order CI shuffles tests into."""
    step_wrong_code_is_refused_like_an_unknown_login(synced_lab, proxy, directory, agents)
    step_weak_password_gets_the_policy_message(synced_lab, proxy, directory, agents)
    step_right_code_sets_the_password_and_is_spent(synced_lab, proxy, directory, agents)
    step_standby_still_refuses_the_enrolled_agent_at_matrix_login(synced_lab, proxy, agents)
    step_code_locks_after_max_failures_even_when_then_right(synced_lab, proxy, directory,
                                                            agents)
    step_expired_code_is_refused(synced_lab, proxy, directory, agents)
    step_per_login_bucket(synced_lab, proxy)
    step_audit_log_has_every_attempt_and_no_secret(synced_lab, proxy, messaging, agents)
    step_audit_log_rotates_and_the_next_attempt_starts_a_new_file(synced_lab, proxy, messaging)
