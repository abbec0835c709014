"""What nginx refuses on the raw request path, read from the rendered proxy site and gate.

Both templates are rendered (role vars and stand-in inventory values), their
``if ($request_uri ~* "...")`` rules are applied with Python's ``re`` (the patterns use
only syntax PCRE and ``re`` read alike) to planb's hostile paths, and to the paths
matrix-nio really builds, Element's and Element X's encodings of the same calls: the
hostile ones must hit a rule, the clients' never. The lab test
(tests/integration/test_proxy_paths_lab.py) sends the same paths to a real nginx.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import jinja2
import pytest
import yaml
from nio.api import Api

import planb
from planb.verify.endpoints import HttpAnswer
from planb.verify.proxy_paths import HOSTILE_PATHS, LEGIT_PATHS, REFUSED_MARKER, refused_by_proxy

NGINX = planb.PLAYBOOKS_DIR / "roles" / "nginx"
SERVER = "planb.test"
RULE = re.compile(r'^\s*if \(\$request_uri ~\* "(?P<regex>[^"]+)"\) \{\n'
                  r'\s*return (?P<status>\d+) "(?P<body>[^"]*)";', re.MULTILINE)
STAND_INS = {
    "ansible_managed": "managed", "inventory_hostname": "fallback",
    "nginx_public_hostname": "matrix." + SERVER,
    "nginx_listen_ipv6": False, "nginx_server_names": [SERVER],
    "nginx_tls_cert": "/c", "nginx_tls_key": "/k", "nginx_client_max_body_size": "50M",
    "nginx_federation": False, "nginx_synapse_upstream": "http://127.0.0.1:8008",
    "nginx_well_known_client": {}, "nginx_well_known_server": {},
    "nginx_backend_listen_address": "10.0.0.2", "nginx_backend_port": 8008,
    "nginx_backend_allowed": ["10.0.0.1"], "nginx_synapse_local": "http://127.0.0.1:8008",
    "nginx_welcome_html": "<p>welcome</p>", "nginx_welcome_dir": "/var/www/planb-welcome",
    "nginx_welcome_status_timeout": "3s",
}


def rendered(template: str) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(NGINX / "templates"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["to_json"] = repr
    role_vars = yaml.safe_load((NGINX / "vars" / "main.yml").read_text(encoding="utf-8"))
    return env.get_template(template).render(**STAND_INS, **role_vars)


def rules(template: str) -> list[tuple[re.Pattern[str], int, str]]:
    """The raw-URI rules of ``template``: compiled pattern, status and body."""
    return [(re.compile(m["regex"], re.IGNORECASE), int(m["status"]), m["body"])
            for m in RULE.finditer(rendered(template))]


TEMPLATES = ("planb-matrix.conf.j2", "planb-backend.conf.j2")


def refusal(template: str, path: str) -> int | None:
    """The status nginx answers ``path`` with under ``template``'s raw rules (None: passes)."""
    return next((status for pattern, status, _ in rules(template) if pattern.search(path)),
                None)


@pytest.mark.parametrize("template", TEMPLATES)
def test_both_sites_refuse_the_raw_path_then_the_admin_prefix_with_planbs_body(
        template: str) -> None:
    found = rules(template)
    assert [status for _, status, _ in found] == [400, 404]
    assert {body for _, _, body in found} == {REFUSED_MARKER + "\\n"}
    assert f'location ^~ /_synapse/admin {{\n        return 404 "{REFUSED_MARKER}\\n";' \
        in rendered(template)


def _hostile() -> list[str]:
    """The hostile targets as nginx's $request_uri holds them (an absolute-form target's
    path only). A raw NUL never reaches a rule: nginx's request parser answers 400."""
    targets = [c.raw(SERVER, "matrix." + SERVER).decode("latin-1") for c in HOSTILE_PATHS
               if "\x00" not in c.target]  # %00 is refused by a rule too
    return [re.sub(r"^https?://[^/]*", "", target) for target in targets]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("path", _hostile())
def test_every_hostile_path_is_refused(template: str, path: str) -> None:
    assert refusal(template, path) in (400, 404)


@pytest.mark.parametrize("path", [
    "/_synapse/admin/v1/server_version", "/_synapse/admin", "/_SYNAPSE/ADMIN/v1/x",
    "/%5Fsynapse/%61dmin/v1/x", "/_synapse/admin;x/v1/x", "/_synapse/%41DMIN"])
def test_the_admin_prefix_is_a_404_in_any_case_or_encoding(path: str) -> None:
    assert refusal("planb-matrix.conf.j2", path) == 404


def _nio_paths() -> list[str]:
    """Paths matrix-nio (planb's probes and drills) builds for the calls clients make."""
    room, user, event = f"!AbCd:{SERVER}", f"@planb-probe-1:{SERVER}", "$Ab-_Cd12Ef"
    token, sync_filter = "t", {"room": {"rooms": [room], "timeline": {"limit": 1}}}
    calls = [Api.login(user, "secret"), Api.join(token, room),
             Api.join(token, f"#dept-1:{SERVER}"),
             Api.sync(token, since="s12_3_0.4", timeout=0, filter=sync_filter),
             Api.room_send(token, room, "m.room.message", {}, "4f0c-9a1e"),
             Api.room_leave(token, room), Api.room_messages(token, room, start="t1-2_3"),
             Api.room_resolve_alias(f"#annonces:{SERVER}"), Api.logout(token),
             Api.room_get_event(token, room, event), Api.profile_get(user),
             Api.room_put_state(token, room, "m.room.name", {}),
             Api.room_put_state(token, room, "m.room.member", {}, user),
             Api.profile_get(f"@dept/j.dupont:{SERVER}"),
             Api.download(SERVER, "AbCdEf", "rapport v2.final.pdf"),
             Api.room_context(token, room, event), Api.room_redact(token, room, event, "t.1"),
             Api.room_read_markers(token, room, event), Api.update_receipt_marker(token, room,
                                                                                   event)]
    return [call[1] for call in calls]


def _element(*segments: str) -> str:
    """Element (matrix-js-sdk): encodeURIComponent on each ID segment."""
    return "/_matrix/client/v3/" + "/".join(quote(s, safe="-_.!~*'()") for s in segments)


def _element_x(*segments: str) -> str:
    """Element X (ruma): only controls, space, " # < > ? ` { } / encoded in a segment."""
    return "/_matrix/client/v3/" + "/".join(quote(s, safe="!$&'()*+,;=:@.~-_\\%[]^|")
                                             for s in segments)


CLIENT_CALLS = [
    ("rooms", f"!AbCd:{SERVER}", "send", "m.room.message", "m1700000000000.1"),
    ("rooms", f"!AbCd:{SERVER}", "event", "$Ab-_Cd12Ef"),
    ("rooms", f"!AbCd:{SERVER}", "state", "m.room.member", f"@a.b-c_d=e:{SERVER}"),
    ("directory", "room", f"#crise.été-2026:{SERVER}"),
    ("directory", "room", f"#alerte-\U0001f6a8-नमस्ते:{SERVER}"),
    ("profile", f"@jean.dupont:{SERVER}", "displayname"),
    ("user", f"@dept/j.dupont:{SERVER}", "filter"),
    ("rooms", f"!AbCd:{SERVER}", "state", "m.room.member", f"@dept/jdupont:{SERVER}"),
    ("pushrules", "global", "override", ".m.rule.master", "enabled"),
    ("user", f"@jean.dupont:{SERVER}", "account_data", "im.vector.setting.breadcrumbs"),
]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("path", [
    *(c.target.replace("{server}", SERVER) for c in LEGIT_PATHS), *_nio_paths(),
    *(_element(*c) for c in CLIENT_CALLS), *(_element_x(*c) for c in CLIENT_CALLS),
    "/.well-known/matrix/client", "/_synapse/client/oidc/callback"])
def test_what_matrix_clients_send_passes(template: str, path: str) -> None:
    assert refusal(template, path) is None


@pytest.mark.parametrize(("text", "nginx"), [
    (REFUSED_MARKER + "\n", True),
    ("<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 "
     "Bad Request</h1></center>\r\n<hr><center>nginx</center>\r\n</body>", True),
    ('{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}', False),
    ('{"errcode":"M_NOT_FOUND","error":"refused by the planb"}', False),
    ("", False)])
def test_refused_by_proxy_tells_nginx_from_synapse(text: str, nginx: bool) -> None:
    assert refused_by_proxy(HttpAnswer(404, None, text, 0.0)) is nginx


def test_the_role_keeps_one_copy_of_the_rules() -> None:
    for template in TEMPLATES:
        source = (NGINX / "templates" / template).read_text(encoding="utf-8")
        assert '"{{ nginx_refused_path_regex }}"' in source
        assert '"{{ nginx_admin_path_regex }}"' in source
