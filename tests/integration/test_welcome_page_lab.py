"""The public welcome page on the lab (issue 12, §1 and its 'planb verify' check).

Fetched through the proxy's nginx over TLS as an agent's browser would: French in
standby; after 'planb failover activate --public-message' the same page (no redeploy)
says active and shows the site's message escaped; with Synapse stopped nginx still
serves it, saying the state is unknown. The served page is checked by axe-core in
headless Chromium, and screenshots (desktop, 360 px phone) and the printed poster are
kept under build/test-artifacts/ (or $PLANB_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from planb.inventory import InventoryHost, hosts_in
from planb.verify import run_checks
from planb.verify.welcome_check import Page, fetch_page, page_states
from planb.welcome import CSS_PATH
from tests.integration.agent_browser import load_axe
from tests.integration.conftest import LabSession
from tests.integration.lab_state import planb_cli

pytestmark = pytest.mark.lab

ARTIFACTS = Path(os.environ.get("PLANB_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parents[2] / "build" / "test-artifacts")
#: The site's public message: hostile markup must reach the agent as text.
MESSAGE = 'Rendez-vous salle 2 <script>alert("x")</script> & <b>courage</b>'
ESCAPED = ("Rendez-vous salle 2 &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; "
           "&amp; &lt;b&gt;courage&lt;/b&gt;")


@pytest.fixture(scope="module")
def proxy(synced_lab: LabSession) -> InventoryHost:
    return hosts_in(synced_lab.site, "fallback_proxy")[0]


@pytest.fixture(scope="module")
def axe() -> ModuleType:
    return load_axe()


def welcome(lab: LabSession, proxy: InventoryHost) -> Page:
    page = fetch_page(lab.site, proxy.address)
    assert page.status == 200, page
    assert page.headers["content-type"].startswith("text/html"), page
    if "content-security-policy" not in page.headers:  # what nginx runs, for the report
        shown = lab.lab.run_on("fallback", ["sh", "-c", "nginx -T 2>&1 | grep -n -A12 "
                                            "'location = / {'; ls -l /var/www/planb-welcome"])
        pytest.fail(f"no CSP: {page.headers} {page.text[:300]!r}\n{shown.stdout}")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "<!--#" not in page.text  # SSI ran
    return page


def verify(lab: LabSession) -> tuple[str, str]:
    report = run_checks(lab.site, ["welcome.page"])
    assert len(report.results) == 1, report.summary()
    return report.results[0].status, report.results[0].message


def keep(axe: ModuleType, lab: LabSession, proxy: InventoryHost, page: Page,
         name: str) -> None:
    """The served page (and its stylesheet, also from nginx) in Chromium: axe-core
    clean; screenshots on a desktop and a 360 px phone, the poster as PDF, kept."""
    folder = ARTIFACTS / "welcome"
    folder.mkdir(parents=True, exist_ok=True)
    css = fetch_page(lab.site, proxy.address, CSS_PATH)
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")
    (folder / CSS_PATH.lstrip("/")).write_text(css.text, encoding="utf-8")
    html = folder / f"{name}.html"
    html.write_text(page.text.replace(f'href="{CSS_PATH}"', f'href="{CSS_PATH[1:]}"'),
                    encoding="utf-8")
    result = axe.run_axe(html)
    assert "error" not in result, result
    assert not result["violations"], axe.describe(result["violations"])
    for label, size in (("desktop", "1280,1400"), ("phone-360", "360,1600")):
        png = axe.screenshot(html, folder / f"{name}.{label}.png", size=size)
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
        print(f"screenshot kept: {png}")
    pdf = axe.print_pdf(html, folder / f"{name}.poster.pdf")
    sizes = axe.page_sizes_mm(pdf)
    assert sizes and all(abs(w - 210) < 2 and abs(h - 297) < 2 for w, h in sizes), sizes
    print(f"poster kept: {pdf} ({len(sizes)} A4 page(s))")


def test_standby_page_is_french_accessible_and_verified(
        synced_lab: LabSession, proxy: InventoryHost, axe: ModuleType) -> None:
    page = welcome(synced_lab, proxy)
    assert page_states(synced_lab.site, page.text) == ["standby"]
    assert '<html lang="fr">' in page.text and "La messagerie de secours est en veille." \
        in page.text
    assert len(page.text.encode()) < 40_000
    assert proxy.address not in page.text and "nginx" not in page.text.lower()
    assert "server" not in page.headers or "/" not in page.headers["server"]  # no version
    assert verify(synced_lab)[0] == "pass"
    keep(axe, synced_lab, proxy, page, "welcome.standby.fr")


@pytest.fixture
def activated(synced_lab: LabSession) -> Iterator[LabSession]:
    code, out = planb_cli(synced_lab, "failover", "activate", "--reason",
                          "integration tests: the welcome page", "--yes",
                          "--public-message", MESSAGE)
    assert code == 0, out
    try:
        yield synced_lab
    finally:
        code, out = planb_cli(synced_lab, "failover", "deactivate", "--reason",
                              "integration tests: welcome page done", "--yes")
        assert code == 0, out


def test_the_same_page_says_active_with_the_sites_message_escaped(
        activated: LabSession, proxy: InventoryHost, axe: ModuleType) -> None:
    page = welcome(activated, proxy)
    assert page_states(activated.site, page.text) == ["active"]
    assert ESCAPED in page.text and "<script>" not in page.text.split("</svg>")[0]
    assert verify(activated)[0] == "pass"
    keep(axe, activated, proxy, page, "welcome.active.fr")


def test_deactivation_takes_the_message_down(synced_lab: LabSession,
                                             proxy: InventoryHost) -> None:
    code, out = planb_cli(synced_lab, "failover", "activate", "--reason",
                          "integration tests: welcome page message", "--yes",
                          "--public-message", "message éphémère")
    assert code == 0, out
    try:
        assert "message éphémère" in welcome(synced_lab, proxy).text
    finally:
        code, out = planb_cli(synced_lab, "failover", "deactivate", "--reason",
                              "integration tests: welcome page message done", "--yes")
        assert code == 0, out
    page = welcome(synced_lab, proxy)
    assert page_states(synced_lab.site, page.text) == ["standby"]
    assert "message éphémère" not in page.text


def test_served_with_an_unknown_state_when_synapse_is_down(
        synced_lab: LabSession, proxy: InventoryHost) -> None:
    lab = synced_lab.lab
    assert lab.run_on("fallback", ["systemctl", "stop", "synapse"]).returncode == 0
    try:
        page = welcome(synced_lab, proxy)
        assert page_states(synced_lab.site, page.text) == ["unknown"]
        assert "502" not in page.text and "Bad Gateway" not in page.text
        status, message = verify(synced_lab)
        assert status == "fail" and "unknown" in message, message
    finally:
        assert lab.run_on("fallback", ["systemctl", "start", "synapse"]).returncode == 0
        deadline = time.monotonic() + 120
        while page_states(synced_lab.site, fetch_page(synced_lab.site, proxy.address).text
                          ) != ["standby"]:
            assert time.monotonic() < deadline, "Synapse did not come back"
            time.sleep(2)


def test_verify_fails_when_the_page_and_the_controller_disagree(
        synced_lab: LabSession, proxy: InventoryHost) -> None:
    """The host switched behind planb's back: the page says active (read live), the
    controller's state says standby, and 'planb verify' says so."""
    lab = synced_lab.lab
    assert lab.run_on("fallback", ["sh", "-c", "echo active > /etc/planb/mode"]).returncode == 0
    try:
        assert page_states(synced_lab.site, welcome(synced_lab, proxy).text) == ["active"]
        status, message = verify(synced_lab)
        assert status == "fail" and "the controller records standby" in message, message
    finally:
        assert lab.run_on("fallback", ["sh", "-c", "echo standby > /etc/planb/mode"]
                          ).returncode == 0
