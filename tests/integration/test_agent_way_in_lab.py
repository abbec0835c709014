"""The agents' way in, end to end in Debian's Chromium (issue 12 §4).

On an Active Directory-flavoured site (``primary.ldap.copy_password_hashes: false``:
the primary's hashes never reach the fallback, as with AD), a new hire of the main
directory goes from a paper letter to a message in their department room with
nothing installed:

1. the sync gives them an account and an enrolment code, but no password: their main
   directory password does not open the fallback directory;
2. ``planb enrol letters --login`` prints their letter; the code is read off it;
3. in Chromium, the welcome page says standby; enrolment with a wrong code is refused;
   with the letter's code and a new password it succeeds; the code reused is refused;
4. the fallback is activated with a public message; the welcome page says active;
5. the browser client at /app/: login and password only, the Annonces room shows the
   activation announcement; the agent posts in their department room; a colleague
   replies through matrix-nio, and the reply shows in the browser;
6. no request of the browser ever left the fallback's public name.

Screenshots of every page are kept in build/test-artifacts/way-in/.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
import pytest
import yaml
from ldap3 import MODIFY_ADD, MODIFY_DELETE
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinedRoomsResponse,
    RoomMessageText,
    RoomResolveAliasResponse,
    SyncResponse,
)

from planb.directory.identifiers import child_dn, room_aliases
from planb.directory.lab_churn import Churn
from planb.directory.ldap_source import read_primary
from planb.enrol_page import CSS_PATH as ENROL_CSS
from planb.inventory import InventoryHost, hosts_in
from planb.lab.agents import DEFAULT_SUFFIX, agent_password, ssha
from planb.messaging.sync_target import ANNOUNCEMENT_NAME
from planb.verify import run_checks
from planb.verify.endpoints import https_request
from planb.verify.welcome_check import fetch_page
from tests.integration.agent_browser import ARTIFACTS, Browsing, browse, load_axe
from tests.integration.client_driver import client_login, open_room, post
from tests.integration.conftest import LabSession
from tests.integration.lab_state import planb_cli

pytestmark = pytest.mark.lab

CODE = re.compile(r"\b[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}\b")
PUBLIC_MESSAGE = "Exercice : rendez-vous dans la salle de votre service."


@dataclass(frozen=True)
class Hire:
    """The new hire of the AD-flavoured primary, and a colleague from their department."""

    login: str
    dn: str
    primary_password: str
    department: str
    colleague: str
    colleague_password: str


def ldap_bind(session: LabSession, dn: str, password: str) -> bool:
    """Whether ``dn`` binds to the fallback directory with ``password`` (LDAPS)."""
    from planb.directory.fallback_endpoint import fallback_endpoint

    server = fallback_endpoint(session.site).server()
    conn = ldap3.Connection(server, dn, password, receive_timeout=10, raise_exceptions=False)
    try:
        return bool(conn.bind())
    finally:
        conn.unbind()


@pytest.fixture(scope="module")
def proxy(synced_lab: LabSession) -> InventoryHost:
    return hosts_in(synced_lab.site, "fallback_proxy")[0]


@pytest.fixture(scope="module")
def ad_flavoured(synced_lab: LabSession) -> Iterator[LabSession]:
    """The session's site with the primary's hashes withheld, put back afterwards."""
    path = synced_lab.site.source
    original = path.read_text(encoding="utf-8")
    data = yaml.safe_load(original)
    data["primary"]["ldap"]["copy_password_hashes"] = False
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    try:
        yield synced_lab
    finally:
        path.write_text(original, encoding="utf-8")


@pytest.fixture(scope="module")
def hire(ad_flavoured: LabSession) -> Iterator[Hire]:
    """A new agent in the primary (with a password the primary keeps), synced."""
    site = ad_flavoured.site
    assert site.primary.ldap is not None
    secret = (site.state_dir / "lab" / "agents-secret").read_bytes().strip()
    agents = [a for a in read_primary(site).agents if a.enabled and a.department]
    colleague = agents[7]
    department = colleague.department
    assert department is not None
    login = f"recrue.{secrets.token_hex(3)}"
    dn = child_dn("uid", login, f"ou=people,{DEFAULT_SUFFIX}")
    password = agent_password(secret, login)
    conn = Churn(site).endpoint.connect()  # the lab primary's admin, as 'lab churn' writes
    group = None
    try:
        conn.add(dn, ["inetOrgPerson"], {
            "uid": login, "cn": "Camille Recrue", "sn": "Recrue", "givenName": "Camille",
            "displayName": "Camille Recrue", "departmentNumber": department,
            "ou": department, "mail": f"{login}@example.org",
            "userPassword": ssha(password, secrets.token_bytes(8))})
        assert conn.result["result"] == 0, conn.result
        group = child_dn("cn", department, f"ou=groups,{DEFAULT_SUFFIX}")
        conn.modify(group, {"member": [(MODIFY_ADD, [dn])]})
        assert conn.result["result"] == 0, conn.result
        code, out = planb_cli(ad_flavoured, "sync", "apply", "--yes")
        assert code == 0, out
        yield Hire(login, dn, password, department, colleague.login,
                   agent_password(secret, colleague.login))
    finally:
        if group is not None:
            conn.modify(group, {"member": [(MODIFY_DELETE, [dn])]})
        conn.delete(dn)
        conn.unbind()
        code, out = planb_cli(ad_flavoured, "sync", "apply", "--yes", "--force")
        assert code == 0, out


def letter_code(session: LabSession, login: str, folder: Path) -> str:
    """``planb enrol letters --login``: the letter, and the code printed on it."""
    letter = folder / "letter.html"
    code, out = planb_cli(session, "enrol", "letters", "--login", login, "--output", str(letter))
    assert code == 0, out
    found = CODE.findall(letter.read_text(encoding="utf-8"))
    assert len(set(found)) == 1, found
    assert found[0] not in out  # the code is on paper, never on the terminal
    return found[0]


def read_room(b: Browsing, name: str) -> None:
    """Open the room called ``name`` to read it (no composer where agents cannot post)."""
    b.page.locator(".RoomList li a", has_text=name).first.click()
    b.page.locator(".middle-header h2", has_text=name).wait_for()


def public_pages_step(session: LabSession) -> dict[str, Any]:
    """The ``public-pages`` step of the newest failover journal."""
    folder = session.site.state_dir / "journals"
    payloads = [json.loads(p.read_bytes())["payload"] for p in sorted(folder.glob("0*.json"))]
    newest = [p for p in payloads if p.get("event") == "activate"][-1]
    return next(s for s in newest["steps"] if s["name"] == "public-pages")


def test_verify_sees_the_enrolment_page_refuse_a_wrong_code(synced_lab: LabSession) -> None:
    """'planb verify' enrol.wrong_code passes, and fails when the page cannot answer."""
    site = synced_lab.site
    report = run_checks(site, ["enrol.wrong_code"])
    assert [r.status for r in report.results] == ["pass"], report.summary()
    assert "refused" in report.results[0].message
    synced_lab.lab.run_on("fallback", ["systemctl", "stop", "synapse"], timeout=120)
    try:
        report = run_checks(site, ["enrol.wrong_code"])
        assert [r.status for r in report.results] == ["fail"], report.summary()
    finally:
        synced_lab.lab.run_on("fallback", ["systemctl", "start", "synapse"], timeout=180)
        deadline = time.monotonic() + 120
        while run_checks(site, ["enrol.wrong_code"]).results[0].status != "pass":
            assert time.monotonic() < deadline, "the enrolment page did not come back"
            time.sleep(2)


def test_the_enrolment_pages_are_accessible(synced_lab: LabSession,
                                            proxy: InventoryHost) -> None:
    """The form and a refusal, as nginx and the module serve them: axe-core clean."""
    axe = load_axe()
    site = synced_lab.site
    folder = ARTIFACTS / "way-in"
    folder.mkdir(parents=True, exist_ok=True)
    css = fetch_page(site, proxy.address, ENROL_CSS)
    assert css.status == 200 and css.headers["content-type"].startswith("text/css"), css
    (folder / ENROL_CSS.lstrip("/")).write_text(css.text, encoding="utf-8")
    form = fetch_page(site, proxy.address, "/enrol/")
    refused = https_request(site, proxy.address, "POST", "/enrol/submit", form={
        "login": "planb-probe-2", "code": "ABCD-EFGH-JKLM", "password": "Secours-2026-abc",
        "password2": "Secours-2026-abc"})
    assert refused.status in (403, 429) and 'id="enrol-message"' in refused.whole
    for name, text in (("enrol-form", form.text), ("enrol-refused", refused.whole)):
        html = folder / f"{name}.html"
        html.write_text(text.replace(f'href="{ENROL_CSS}"', f'href="{ENROL_CSS[1:]}"'),
                        encoding="utf-8")
        result = axe.run_axe(html)
        assert "error" not in result, result
        assert not result["violations"], axe.describe(result["violations"])


def enrol(b: Browsing, url: str, login: str, code: str, password: str) -> str:
    """Fill the enrolment form and send it; the text of the page that answers."""
    b.page.goto(url + "enrol/")
    b.page.fill("[name=login]", login)
    b.page.fill("[name=code]", code)
    b.page.fill("[name=password]", password)
    b.page.fill("[name=password2]", password)
    b.page.locator("form button[type=submit], form input[type=submit]").first.click()
    b.page.wait_for_load_state()
    return b.page.inner_text("body")


async def reply_as(site_name: str, address: str, login: str, password: str, alias: str,
                   waits_for: str, answer: str, timeout: float = 90) -> None:
    """The colleague, through matrix-nio: wait for ``waits_for`` in the room, answer."""
    from aiohttp import ClientSession, ClientTimeout, TCPConnector

    from planb.verify.probes import _PinnedResolver

    client = AsyncClient(f"https://{site_name}", login, ssl=False,
                         config=AsyncClientConfig(request_timeout=30))
    client.client_session = ClientSession(
        connector=TCPConnector(resolver=_PinnedResolver(site_name, address), ssl=False),
        timeout=ClientTimeout(total=30))
    try:
        logged = await client.login(password)
        assert getattr(logged, "access_token", None), logged
        resolved = await client.room_resolve_alias(alias)
        assert isinstance(resolved, RoomResolveAliasResponse), resolved
        room_id = resolved.room_id
        joined = await client.joined_rooms()
        assert isinstance(joined, JoinedRoomsResponse) and room_id in joined.rooms, joined
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            synced = await client.sync(timeout=5000)
            assert isinstance(synced, SyncResponse), synced
            room = synced.rooms.join.get(room_id)
            if room and any(isinstance(e, RoomMessageText) and e.body == waits_for
                            for e in room.timeline.events):
                await client.room_send(room_id, "m.room.message",
                                       {"msgtype": "m.text", "body": answer})
                return
        raise AssertionError(f"{login} never saw {waits_for!r} in {alias}")
    finally:
        await client.logout()
        await client.close()


def test_from_a_paper_letter_to_the_department_room(
        ad_flavoured: LabSession, hire: Hire, proxy: InventoryHost, tmp_path: Path) -> None:
    site = ad_flavoured.site
    name = site.matrix.public_hostname
    url = f"https://{name}/"
    fallback_dn = child_dn("uid", hire.login, f"ou=people,{site.fallback.ldap_suffix}")
    # 1. AD-flavoured: the account is there, the main directory's password is not.
    assert not ldap_bind(ad_flavoured, fallback_dn, hire.primary_password)
    # 2. The paper letter.
    code = letter_code(ad_flavoured, hire.login, tmp_path)
    new_password = "Secours-" + secrets.token_urlsafe(9) + "7a"
    activated = False
    with browse(name, proxy.address, "way-in") as b:
        try:
            # 3. Standby: the welcome page, then enrolment.
            b.page.goto(url)
            assert "en veille" in b.page.inner_text("body")
            b.shot("1-welcome-standby")
            wrong = code[:-1] + ("2" if code[-1] != "2" else "3")
            refused = enrol(b, url, hire.login, wrong, new_password)
            b.shot("2-enrol-wrong-code")
            assert "incorrect" in refused.lower(), refused
            assert not ldap_bind(ad_flavoured, fallback_dn, new_password)
            done = enrol(b, url, hire.login, code, new_password)
            b.shot("3-enrol-done")
            assert ldap_bind(ad_flavoured, fallback_dn, new_password), done
            again = enrol(b, url, hire.login, code, new_password + "x")
            b.shot("4-enrol-code-reused")
            assert "incorrect" in again.lower(), again
            assert ldap_bind(ad_flavoured, fallback_dn, new_password)

            # 4. The incident: activation with the site's public message.
            out_code, out = planb_cli(ad_flavoured, "failover", "activate", "--reason",
                                      "integration tests: the agents' way in", "--yes",
                                      "--public-message", PUBLIC_MESSAGE)
            assert out_code == 0, out
            activated = True
            b.page.goto(url)
            body = b.page.inner_text("body")
            assert "activée" in body and PUBLIC_MESSAGE in body, body
            b.shot("5-welcome-active")
            # The activation read both pages as an agent would, and its journal says so.
            pages = public_pages_step(ad_flavoured)
            assert pages["status"] == "ok", pages
            assert sorted((p["name"], p["ok"]) for p in pages["probes"]) == [
                ("page.client", True), ("page.welcome", True)], pages["probes"]

            # 5. The client: login and password, nothing else.
            client_login(b, url + "app/", hire.login, new_password)
            b.shot("6-client-rooms")
            read_room(b, ANNOUNCEMENT_NAME)  # agents read Annonces: Hydrogen shows no composer
            # The announcement as its HTML (formatted_body): a heading, not "# ..." text.
            b.page.locator(".Timeline_messageBody h1",
                           has_text="Messagerie de secours activée").last.wait_for(timeout=60_000)
            b.shot("7-client-annonces")
            open_room(b, hire.department)
            hello = f"Bonjour, ici {hire.login} ({secrets.token_hex(3)})"
            answer = f"Bien reçu {secrets.token_hex(3)}"
            post(b, hello)
            alias = f"#{room_aliases([hire.department])[hire.department]}:{site.matrix.server_name}"
            # Playwright's sync API holds this thread's event loop: nio gets its own thread.
            with ThreadPoolExecutor(max_workers=1) as colleague:
                replied = colleague.submit(asyncio.run, reply_as(
                    name, proxy.address, hire.colleague, hire.colleague_password, alias,
                    hello, answer))
                replied.result(timeout=150)
            b.page.get_by_text(answer).first.wait_for(timeout=60_000)
            b.shot("8-client-reply")
        finally:
            if activated:
                out_code, out = planb_cli(ad_flavoured, "failover", "deactivate", "--reason",
                                          "integration tests: way in done", "--yes")
                assert out_code == 0, out
        # 6. Nothing left the fallback.
        assert b.hosts() == {name}, sorted(b.hosts())
