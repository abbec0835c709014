"""The public welcome page (planb/welcome.py) and its live part (planb_guard_status.py).

The page is rendered here for real (catalogues, QR code); the live part is the Synapse
module's resource, imported by path and called with a stand-in request. nginx's SSI,
Synapse and the browser are on the lab (tests/integration/test_welcome_page_lab.py).
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import planb
from planb.config import CrisisCellConfig, CrisisContactConfig, SiteConfig, WelcomeConfig
from planb.i18n import site_catalogue
from planb.provisioning.deploy import deploy_vars
from planb.welcome import SSI_MESSAGE, SSI_MODE, render_welcome
from tests.unit.test_drills_scenario import make_site

FILES = planb.data_path("playbooks") / "roles" / "synapse" / "files"
HOSTILE = '<script>alert(1)</script>"\'&{{ lookup("file", "/etc/shadow") }}'


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return make_site(tmp_path)


@pytest.fixture(scope="module")
def status() -> Iterator[ModuleType]:
    sys.path.insert(0, str(FILES))
    try:
        yield importlib.import_module("planb_guard_status")
    finally:
        sys.path.remove(str(FILES))


def test_french_by_default_with_every_state_and_no_script(site: SiteConfig) -> None:
    page = render_welcome(site)
    assert page.language == "fr" and '<html lang="fr">' in page.html
    for text in ("La messagerie de secours est en veille.",
                 "La messagerie de secours est activée.",
                 "L’état de la messagerie de secours ne peut pas être lu pour le moment.",
                 "Messagerie de secours · Métropole de test", "https://matrix.planb.test/"):
        assert text in page.html, text
    # The live part is nginx SSI: the mode picks the block, the message is included.
    assert f'<!--# include virtual="{SSI_MODE}" set="planb_mode" -->' in page.html
    assert '<!--# if expr="$planb_mode = active" -->' in page.html
    assert f'<!--# include virtual="{SSI_MESSAGE}" -->' in page.html
    assert "<script" not in page.html and 'name="viewport"' in page.html
    assert len(page.html.encode()) + len(page.css.encode()) < 40_000  # a few tens of KiB


def test_english_site(site: SiteConfig) -> None:
    page = render_welcome(dataclasses.replace(site, language="en"))
    assert '<html lang="en">' in page.html
    assert "The backup messaging system is on standby." in page.html
    assert "en veille" not in page.html


def test_qr_code_to_the_page_itself_is_inline_and_labelled(site: SiteConfig) -> None:
    page = render_welcome(site)
    svg = re.search(r"<svg [^>]*>", page.html)
    assert svg and 'role="img"' in svg.group(0)
    assert 'aria-label="QR code pour ouvrir cette page\u00a0: https://matrix.planb.test/"' \
        in svg.group(0)


def test_hostile_site_text_is_escaped(site: SiteConfig) -> None:
    hostile = dataclasses.replace(
        site, organisation=HOSTILE,
        welcome=WelcomeConfig([CrisisContactConfig(HOSTILE, "04 <b>1</b>", HOSTILE)]))
    page = render_welcome(hostile).html
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;" in page
    # Ansible never templates it: the page crosses extra vars as base64.
    sent = deploy_vars(hostile)["planb_welcome"]
    assert isinstance(sent, dict) and "{{" not in str(sent)
    # The same page, with the links to what the deploy also serves (client, enrolment).
    html = base64.b64decode(sent["html_b64"]).decode()
    assert html == render_welcome(hostile, enrol_path="/enrol/",
                                  client_path="/app/" if 'href="/app/"' in html else None).html


def test_contacts_only_those_the_site_publishes(site: SiteConfig) -> None:
    secret = CrisisContactConfig("Astreinte DSI", "06 12 34 56 78", "astreinte")
    cell = dataclasses.replace(site, crisis_cell=CrisisCellConfig(groups=["crise"],
                                                                  contacts=[secret]))
    page = render_welcome(cell).html
    assert "06 12 34 56 78" not in page and "Astreinte" not in page
    assert "Adressez-vous à votre responsable" in page
    public = dataclasses.replace(cell, welcome=WelcomeConfig([
        CrisisContactConfig("Cellule de crise", "+33 4 00 00 00 00", "standard")]))
    published = render_welcome(public).html
    assert '<a href="tel:+33400000000">+33 4 00 00 00 00</a>' in published
    assert "Cellule de crise (standard)" in published


def test_links_only_once_they_exist(site: SiteConfig) -> None:
    assert "<a href=\"/app/\"" not in render_welcome(site).html
    page = render_welcome(site, client_path="/app/", enrol_path="/enrol/").html
    assert '<a href="/app/">Ouvrir la messagerie dans ce navigateur</a>' in page
    assert '<a href="/enrol/">' in page


def test_no_version_and_no_internal_address(site: SiteConfig) -> None:
    page = render_welcome(site).html
    assert planb.__version__ not in page
    assert not re.search(r"\b10\.\d+\.\d+\.\d+\b|\.internal\b|\.lan\b", page)
    hosts = set(re.findall(r"https?://([^/\"<\s]+)", page))
    assert hosts == {"matrix.planb.test"}


def test_a_site_catalogue_entry_wins(site: SiteConfig) -> None:
    po = site_catalogue(site.base_dir, "fr")
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  'msgid "Backup messaging"\nmsgstr "Plan B de la Métropole"\n',
                  encoding="utf-8")
    page = render_welcome(site).html
    assert "Plan B de la Métropole" in page and "La messagerie de secours est en veille." \
        in page


@dataclasses.dataclass
class Request:
    headers: dict[bytes, bytes] = dataclasses.field(default_factory=dict)

    def setHeader(self, name: bytes, value: bytes) -> None:  # noqa: N802 - twisted's name
        self.headers[name] = value


#: One resource per (folder, view), kept across requests as Synapse keeps it.
_RESOURCES: dict[tuple[Path, str], Any] = {}


def serve(status: ModuleType, tmp_path: Path, view: str) -> tuple[bytes, dict[bytes, bytes]]:
    resource = _RESOURCES.setdefault((tmp_path, view), status.StatusResource(
        str(tmp_path / "mode"), str(tmp_path / "public_message"), view))
    request = Request()
    return resource.render_GET(request), request.headers


def test_status_is_read_live_and_the_message_escaped(status: ModuleType,
                                                     tmp_path: Path) -> None:
    assert serve(status, tmp_path, "mode")[0] == b"standby"  # no mode file: standby
    (tmp_path / "public_message").write_text(HOSTILE + "\n", encoding="utf-8")
    (tmp_path / "mode").write_text("standby\n", encoding="utf-8")
    assert serve(status, tmp_path, "message")[0] == b""  # shown only while active
    (tmp_path / "mode").write_text("active\n", encoding="utf-8")
    assert serve(status, tmp_path, "mode")[0] == b"active"
    body, headers = serve(status, tmp_path, "message")
    assert body.decode() == ("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;"
                             "{{ lookup(&quot;file&quot;, &quot;/etc/shadow&quot;) }}")
    assert headers[b"Cache-Control"] == b"no-store"
    body, headers = serve(status, tmp_path, "json")
    assert headers[b"Content-Type"] == b"application/json"
    assert b'"mode": "active"' in body and b"<script>" in body  # JSON: escaped by readers
    (tmp_path / "mode").write_text("garbage", encoding="utf-8")
    assert serve(status, tmp_path, "mode")[0] == b"standby"


def test_welcome_contacts_in_planb_yml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from planb.cli.main import app
    from planb.config import load_config

    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    assert CliRunner().invoke(app, ["init", str(tmp_path / "new")]).exit_code == 0
    config = tmp_path / "new" / "planb.yml"
    assert not load_config(config).welcome.contacts
    text = config.read_text(encoding="utf-8").replace(
        "welcome:\n  contacts: []",
        'welcome:\n  contacts:\n    - {name: "Cellule", phone: "+33 4 00 00 00 01"}')
    config.write_text(text, encoding="utf-8")
    assert list(load_config(config).welcome.contacts) == [
        CrisisContactConfig("Cellule", "+33 4 00 00 00 01")]


def test_nginx_serves_the_page_with_ssi_and_its_headers_after_the_refusals() -> None:
    from tests.unit.test_nginx_raw_paths import rendered

    site = rendered("planb-matrix.conf.j2")
    page = site[site.index("location = / {"):]
    block = page[:page.index("}")]
    assert "ssi on;" in block and "try_files /index.html =404;" in block
    for header in ("Content-Security-Policy \"default-src 'self'; base-uri 'none'; "
                   "form-action 'none'; frame-ancestors 'none'\"",
                   'X-Content-Type-Options "nosniff"', 'Referrer-Policy "no-referrer"',
                   'X-Frame-Options "DENY"', 'Cache-Control "no-store"'):
        assert f"add_header {header} always;" in block, header
    # The raw-path refusals come first; the status locations are internal only.
    assert site.index("$request_uri ~*") < site.index("location = / {")
    for where in ("/_planb_welcome/mode", "/_planb_welcome/message"):
        status = site[site.index(f"location = {where} {{"):]
        assert status.split("\n")[1].strip() == "internal;", where
        assert "error_page 400 403 404 500 502 503 504 = @planb_welcome_unknown;" in status
