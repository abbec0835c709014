"""The enrolment page (planb/enrol_page.py), its deploy vars and its nginx locations.

The page is rendered as the deploy renders it; the nginx site and backend gate are
rendered from the role's templates (as tests/unit/test_nginx_raw_paths.py does) to
check what reaches the module. A real nginx and Synapse serve them in
tests/integration/test_enrolment_page_lab.py.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path

import pytest

from planb.config import EnrolmentConfig, SiteConfig
from planb.enrol_page import LOGIN_MARK, MESSAGE_MARK, MESSAGES, SUBMIT_PATH, render_enrol
from planb.provisioning.deploy import deploy_vars
from tests.unit.test_drills_scenario import make_site
from tests.unit.test_nginx_raw_paths import STAND_INS, rendered, rules

HOSTILE = '<script>alert(1)</script>"\'&{{ lookup("file", "/etc/shadow") }}'


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return make_site(tmp_path)


def test_french_form_without_script(site: SiteConfig) -> None:
    page = render_enrol(site, min_length=14)
    assert page.language == "fr" and '<html lang="fr">' in page.html
    assert f'<form method="post" action="{SUBMIT_PATH}">' in page.html
    for name, kind in (("login", "text"), ("code", "text"), ("password", "password"),
                       ("password2", "password")):
        assert re.search(rf'<label for="{name}">[^<]+</label>\n<input id="{name}" '
                         rf'name="{name}" type="{kind}" required', page.html), name
    for text in ("Choisir votre mot de passe pour la messagerie de secours",
                 "Au moins 14 caractères", "Enregistrer mon mot de passe"):
        assert text in page.html, text
    assert "<script" not in page.html and " style=" not in page.html
    assert MESSAGE_MARK not in page.html and LOGIN_MARK not in page.html
    assert 'value=""' in page.html
    assert len(page.html.encode()) + len(page.css.encode()) < 10_000


def test_module_pages_hold_every_message_translated(site: SiteConfig) -> None:
    pages = json.loads(render_enrol(site, min_length=14, max_failures=3).pages_json)
    assert set(pages["messages"]) == set(MESSAGES)
    assert pages["messages"]["too_short"] == \
        "Le mot de passe est trop court\u00a0: il faut au moins 14 caractères."
    assert "Après 3 codes erronés" in pages["messages"]["refused"]
    assert MESSAGE_MARK in pages["form"] and f'value="{LOGIN_MARK}"' in pages["form"]
    assert "Votre mot de passe est enregistré." in pages["success"]
    assert '<a href="/app/">' in pages["success"]


def test_english_site(site: SiteConfig) -> None:
    page = render_enrol(dataclasses.replace(site, language="en"))
    assert '<html lang="en">' in page.html and "Set my password" in page.html


def test_hostile_site_text_is_escaped(site: SiteConfig) -> None:
    hostile = dataclasses.replace(site, organisation=HOSTILE)
    page = render_enrol(hostile)
    pages = json.loads(page.pages_json)
    for html in (page.html, pages["form"], pages["success"]):
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;" in html
    sent = deploy_vars(hostile)["planb_enrol"]
    assert isinstance(sent, dict) and "{{" not in str(sent)
    assert base64.b64decode(sent["html_b64"]).decode() == page.html
    assert base64.b64decode(sent["pages_b64"]).decode() == page.pages_json


def test_deploy_vars_follow_the_site_setting(site: SiteConfig) -> None:
    on = deploy_vars(site)
    assert on["planb_enrol"] and on["planb_config"]["enrolment"]["max_failures"] == 5
    welcome = base64.b64decode(on["planb_welcome"]["html_b64"]).decode()
    assert '<a href="/enrol/">' in welcome
    off = deploy_vars(dataclasses.replace(site, enrolment=EnrolmentConfig(enabled=False)))
    assert off["planb_enrol"] == {}
    assert '<a href="/enrol/">' not in base64.b64decode(off["planb_welcome"]["html_b64"]).decode()


def _location(conf: str, head: str) -> str:
    start = conf.index(head)
    return conf[start:conf.index("\n    }\n", start)]


def test_nginx_passes_only_a_small_post_to_the_module() -> None:
    STAND_INS.update(nginx_enrol_html="<p>enrol</p>", nginx_enrol_max_body_size="4k")
    try:
        proxy = rendered("planb-matrix.conf.j2")
        backend = rendered("planb-backend.conf.j2")
    finally:
        del STAND_INS["nginx_enrol_html"], STAND_INS["nginx_enrol_max_body_size"]
    submit = _location(proxy, "location = /enrol/submit {")
    assert "proxy_pass http://127.0.0.1:8008/_synapse/client/planb_enrol;" in submit
    assert "client_max_body_size 4k;" in submit and "limit_except POST" in submit
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in submit
    form = _location(proxy, "location = /enrol/ {")
    for loc in (submit, form):
        csp = re.search(r'Content-Security-Policy "([^"]+)"', loc)
        assert csp and "script-src" not in csp.group(1)
        assert "default-src 'none'" in csp.group(1) and "form-action 'self'" in csp.group(1)
    # Outside /enrol/submit, the module's path stays closed on the proxy...
    assert "location ^~ /_synapse/client/planb {\n        return 404;" in proxy
    # ... and the backend gate opens that one path only.
    gate = _location(backend, "location = /_synapse/client/planb_enrol {")
    assert "client_max_body_size 4k;" in gate and "limit_except POST" in gate
    assert backend.count("planb_enrol") == 1
    # The raw-path rules still come first, at the server level, in both.
    assert len(rules("planb-matrix.conf.j2")) == len(rules("planb-backend.conf.j2")) == 2
    assert proxy.index("if ($request_uri") < proxy.index("location = /enrol/submit")


def test_no_enrol_locations_when_enrolment_is_off() -> None:
    assert "/enrol/" not in rendered("planb-matrix.conf.j2")
