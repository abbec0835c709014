"""The browser client at https://<public_hostname>/app/ on the lab (issue 12 §3, §5).

Served by the proxy's nginx from the offline bundle (Hydrogen, hydrogen-view-sdk):
in standby its start page says standby (the welcome page's live banner), carries a
self-only CSP, and ``/app/config.json`` names the site's own homeserver; 'planb
verify' finds the served files equal to the bundle's manifest and fails when one is
changed or added on the host. Active: in Debian's headless Chromium an agent types
a login and a password and nothing else, sees Annonces and their department room at
first sight, posts in the department room, and no request of the browser went to any
host but the fallback's public name. Screenshots in build/test-artifacts/client/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from planb.bundle import default_output, load_manifest
from planb.bundle.client import CLIENT_PATH
from planb.directory.ldap_source import read_primary
from planb.directory.sync import Sync
from planb.inventory import InventoryHost, hosts_in
from planb.lab.agents import agent_password
from planb.messaging.sync_target import ANNOUNCEMENT_NAME
from planb.verify import run_checks
from planb.verify.client_check import SERVED_ROOT
from planb.verify.welcome_check import fetch_page, page_states
from tests.integration.agent_browser import browse
from tests.integration.client_driver import client_login, open_room, post, room_names
from tests.integration.conftest import LabSession
from tests.integration.lab_state import planb_cli

pytestmark = pytest.mark.lab

HOST = "fallback"
MESSAGE = "Exercice : le client du navigateur est ouvert."


@dataclass(frozen=True)
class LabAgent:
    login: str
    password: str
    department: str


@pytest.fixture(scope="module")
def proxy(synced_lab: LabSession) -> InventoryHost:
    return hosts_in(synced_lab.site, "fallback_proxy")[0]


@pytest.fixture(scope="module")
def agent(synced_lab: LabSession) -> LabAgent:
    """A synced agent (uid = localpart) with a department and the lab's password."""
    site = synced_lab.site
    entries = Sync(site).read_fallback().entries
    found = next(a for a in read_primary(site).agents[20:]
                 if a.enabled and a.department and a.id in entries
                 and entries[a.id].localpart == a.login)
    secret = (site.state_dir / "lab" / "agents-secret").read_bytes().strip()
    return LabAgent(found.login, agent_password(secret, found.login), found.department)


def verify_client(lab: LabSession) -> tuple[str, str]:
    report = run_checks(lab.site, ["client.files"])
    assert len(report.results) == 1, report.summary()
    return report.results[0].status, report.results[0].message


def test_standby_start_page_policy_homeserver_and_bundle_files(
        synced_lab: LabSession, proxy: InventoryHost) -> None:
    site = synced_lab.site
    page = fetch_page(site, proxy.address, CLIENT_PATH)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html"), page
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self' 'wasm-unsafe-eval'" in csp, csp
    assert "unsafe-inline" not in csp and "'unsafe-eval'" not in csp and "http" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<script src="./app.js"></script>' in page.text
    # The banner (SSI, the welcome page's live block) says standby, and the address.
    assert "<!--#" not in page.text
    assert page_states(site, page.text) == ["standby"], page.text[:1500]
    assert f"https://{site.matrix.public_hostname}/" in page.text
    config = fetch_page(site, proxy.address, f"{CLIENT_PATH}config.json")
    assert config.status == 200
    assert config.headers["content-type"].startswith("application/json")
    assert json.loads(config.text) == {
        "defaultHomeServer": f"https://{site.matrix.public_hostname}"}
    wasm = fetch_page(site, proxy.address, f"{CLIENT_PATH}olm/olm.wasm")
    assert wasm.status == 200 and wasm.headers["content-type"] == "application/wasm"
    status, message = verify_client(synced_lab)
    assert status == "pass", message
    bundle = load_manifest(default_output())
    assert bundle.bundle_id in message and "hydrogen-view-sdk 0.3.1" in message


@pytest.fixture
def activated(synced_lab: LabSession) -> Iterator[LabSession]:
    code, out = planb_cli(synced_lab, "failover", "activate", "--reason",
                          "integration tests: the browser client", "--yes",
                          "--public-message", MESSAGE)
    assert code == 0, out
    try:
        yield synced_lab
    finally:
        code, out = planb_cli(synced_lab, "failover", "deactivate", "--reason",
                              "integration tests: browser client done", "--yes")
        assert code == 0, out


def test_an_agent_logs_in_sees_the_default_rooms_and_posts(
        activated: LabSession, proxy: InventoryHost, agent: LabAgent) -> None:
    site = activated.site
    name = site.matrix.public_hostname
    url = f"https://{name}{CLIENT_PATH}"
    with browse(name, proxy.address, "client") as b:
        console: list[str] = []
        b.page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        b.page.goto(url)
        b.page.wait_for_selector("#username")
        banner = b.page.inner_text("header.planb-banner")
        assert "active" in banner.lower() or "activée" in banner, banner
        assert MESSAGE in banner and "FluffyChat" in banner, banner
        # Login and password only: no homeserver to type (hidden, from config.json).
        assert not b.page.is_visible("#homeserver")
        b.shot("1-login")
        client_login(b, url, agent.login, agent.password)
        rooms = room_names(b)
        assert ANNOUNCEMENT_NAME in rooms and agent.department in rooms, rooms
        b.shot("2-rooms")
        open_room(b, agent.department)
        text = f"Bonjour depuis le navigateur ({agent.login})"
        post(b, text)
        b.shot("3-posted")
        hosts = b.hosts()
        requests = list(b.requests)
    assert hosts == {name}, sorted(hosts)
    assert any("/_matrix/client/" in r and "/send/m.room.message/" in r for r in requests)
    blocked = [c for c in console if "Content Security Policy" in c]
    assert not blocked, blocked


def test_verify_fails_when_a_served_file_is_changed_or_added(
        synced_lab: LabSession) -> None:
    lab = synced_lab.lab
    current = f"{SERVED_ROOT}/current"
    css = f"{current}/planb-client.css"
    assert lab.run_on(HOST, ["sh", "-c", f"cp {css} /root/planb-client.css.orig && "
                                         f"echo 'body{{display:none}}' >> {css}"]
                      ).returncode == 0
    try:
        status, message = verify_client(synced_lab)
        assert status == "fail" and "planb-client.css differs from the bundle" in message, \
            message
    finally:
        assert lab.run_on(HOST, ["cp", "/root/planb-client.css.orig", css]).returncode == 0
    assert verify_client(synced_lab)[0] == "pass"
    assert lab.run_on(HOST, ["sh", "-c", f"echo x > {current}/extra.js"]).returncode == 0
    try:
        status, message = verify_client(synced_lab)
        assert status == "fail" and "extra.js is not in the bundle" in message, message
    finally:
        assert lab.run_on(HOST, ["rm", "-f", f"{current}/extra.js"]).returncode == 0
    assert verify_client(synced_lab)[0] == "pass"
