"""How the proxy serves the browser client (roles/nginx planb-client.conf.j2), the
banner its start page includes, and 'planb verify''s comparison with the bundle."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import jinja2
import pytest
import yaml

import planb
from planb.config import SiteConfig
from planb.provisioning.deploy import deploy_vars
from planb.verify.client_check import differences, expected_files, parse_sums
from planb.welcome import SSI_MODE, render_welcome
from tests.unit.test_drills_scenario import make_site
from tests.unit.test_nginx_raw_paths import rendered

NGINX = planb.PLAYBOOKS_DIR / "roles" / "nginx"
HEADERS = ('X-Content-Type-Options "nosniff"', 'Referrer-Policy "no-referrer"',
           'X-Frame-Options "SAMEORIGIN"', "Strict-Transport-Security")


def snippet() -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(NGINX / "templates"),
                             undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = lambda v: __import__("json").dumps(v)
    role_vars = yaml.safe_load((NGINX / "vars" / "main.yml").read_text(encoding="utf-8"))
    values = {"ansible_managed": "managed", "nginx_client_root": "/var/www/planb-client",
              "nginx_client_bundle_id": "0123456789abcdef",
              "nginx_client_config": {"defaultHomeServer": "https://matrix.planb.test"}}
    return env.get_template("planb-client.conf.j2").render(
        **values, **{k: v for k, v in role_vars.items() if k.startswith("nginx_client_csp")})


def locations(text: str) -> dict[str, str]:
    """Each ``location X {`` of the snippet and its own lines (nested ones apart)."""
    found = {}
    for match in re.finditer(r"location ((?:= |\^~ )?\S+) \{", text):
        body, depth = [], 0
        for line in text[match.end():].splitlines()[1:]:
            if line.strip().startswith("location "):
                depth += 1
            if line.strip() == "}":
                if depth == 0:
                    break
                depth -= 1
                continue
            if depth == 0:
                body.append(line.strip())
        found[match.group(1)] = "\n".join(body)
    return found


def test_every_file_location_sends_the_self_only_policy_and_the_headers() -> None:
    rules = locations(snippet())
    csp = yaml.safe_load((NGINX / "vars" / "main.yml").read_text())["nginx_client_csp"]
    assert "'wasm-unsafe-eval'" in csp and "'unsafe-eval'" not in csp
    assert "'unsafe-inline'" not in csp and "http" not in csp and "*" not in csp
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert rules["= /app/"] == "rewrite ^ /app/index.html last;"
    for where in ("^~ /app/", "= /app/index.html", "= /app/sw.js", "= /app/config.json"):
        body = rules[where]
        assert f'add_header Content-Security-Policy "{csp}" always;' in body, where
        for header in HEADERS:
            assert header in body, (where, header)
    assert "ssi on;" in rules["= /app/index.html"] and "no-store" in rules["= /app/index.html"]
    assert rules["= /_planb_client/banner"].splitlines()[0] == "internal;"
    assert ("return 200 '{\"defaultHomeServer\": \"https://matrix.planb.test\"}';"
            in rules["= /app/config.json"])


def test_the_proxy_site_includes_the_client_only_with_a_bundle() -> None:
    assert "planb-client.conf" not in rendered("planb-matrix.conf.j2")
    site = rendered_with(nginx_client_source="/var/cache/planb/bundle/abc/client",
                         nginx_client_snippet="/etc/nginx/snippets/planb-client.conf")
    include = site.index("include /etc/nginx/snippets/planb-client.conf;")
    # After the raw-path refusals, before the catch-all 404.
    assert site.index("$request_uri ~*") < include < site.index("location / {")


def rendered_with(**extra: str) -> str:
    from tests.unit import test_nginx_raw_paths as raw

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(NGINX / "templates"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["to_json"] = repr
    role_vars = yaml.safe_load((NGINX / "vars" / "main.yml").read_text(encoding="utf-8"))
    return env.get_template("planb-matrix.conf.j2").render(**raw.STAND_INS, **role_vars,
                                                            **extra)


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return make_site(tmp_path)


def test_the_banner_has_the_live_state_and_the_address_for_apps(site: SiteConfig) -> None:
    page = render_welcome(site)
    assert f'<!--# include virtual="{SSI_MODE}" set="planb_mode" -->' in page.banner
    assert "FluffyChat" in page.banner and f"https://{site.matrix.public_hostname}/" \
        in page.banner
    assert '<a href="/">' in page.banner and "<script" not in page.banner
    sent = deploy_vars(site)["planb_welcome"]
    assert isinstance(sent, dict)
    assert base64.b64decode(sent["banner_b64"]).decode() == page.banner
    # The welcome page links to the client when the hosts get the bundle.
    assert 'href="/app/"' in base64.b64decode(sent["html_b64"]).decode()


def test_verify_compares_every_client_file_with_the_manifest() -> None:
    sha = {"a": "1" * 64, "b": "2" * 64, "c": "3" * 64}
    expected = expected_files([("client/index.html", sha["a"]), ("client/olm/olm.wasm",
                                                                   sha["b"]),
                               ("debs/x.deb", sha["c"])])
    assert expected == {"index.html": sha["a"], "olm/olm.wasm": sha["b"]}
    served = parse_sums(f"{sha['a']}  ./index.html\n{sha['c']}  ./olm/olm.wasm\n"
                        f"{sha['c']}  ./extra.js\nsha256sum: ./x: Permission denied\n")
    assert served == {"index.html": sha["a"], "olm/olm.wasm": sha["c"], "extra.js": sha["c"]}
    assert differences(expected, served) == ["olm/olm.wasm differs from the bundle",
                                             "extra.js is not in the bundle"]
    assert differences(expected, {"index.html": sha["a"]}) == ["olm/olm.wasm is missing"]
    assert differences(expected, dict(expected)) == []
