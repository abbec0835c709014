"""Synapse's worker preset (synapse role defaults) and its nginx routes, rendered.

The preset ``activation`` must hold what issue 14 asks and Synapse's docs require (two
event persisters writing the events stream, an initial and an incremental sync
worker, a client reader, one media worker; each a distinct port), and nginx's
rendered locations, matched the way nginx matches nested regex locations (first match
in order), must send each worker's probe path to that worker, and the monolith's
Matrix site must not change when there are no workers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

import planb
from planb.verify.model import CheckFailed
from planb.verify.workers_check import parse_manifest, upstream_of

ROLES = planb.PLAYBOOKS_DIR / "roles"
DEFAULTS = yaml.safe_load((ROLES / "synapse" / "defaults" / "main.yml").read_text())
PRESET: dict[str, dict[str, Any]] = DEFAULTS["synapse_workers_preset"]["activation"]
LOCATION = re.compile(r"^location ~ (?P<regex>\S+) \{\n\s*proxy_pass http://(?P<up>\S+);",
                      re.MULTILINE)


def _env(role: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLES / role / "templates"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["to_json"] = repr
    return env


def _nginx(template: str, workers: dict[str, Any]) -> str:
    return _env("nginx").get_template(template).render(
        ansible_managed="managed", nginx_synapse_workers="activation",
        nginx_workers=workers, nginx_workers_address="127.0.0.1",
        nginx_workers_log="/var/log/nginx/planb-workers.log",
        nginx_workers_manifest="/etc/synapse/workers.json")


def _routed() -> dict[str, Any]:
    return {name: w for name, w in PRESET.items() if "routes" in w}


def _nginx_upstream(path: str, since: str | None) -> str | None:
    """The upstream nginx picks for ``path`` from the rendered locations and sync map."""
    http = _nginx("planb-workers-http.conf.j2", _routed())
    locations = _nginx("planb-workers-locations.conf.j2", _routed())
    for found in LOCATION.finditer(locations):
        if re.search(found["regex"], path):
            upstream = found["up"]
            if upstream == "$planb_sync_upstream":
                block = http[http.index("map $arg_since"):]
                key = "''" if not since else "default"
                upstream = re.search(rf"^\s*{key} (\S+);", block, re.MULTILINE)[1]  # type: ignore[index]
            return upstream
    return None


def test_the_activation_preset_has_what_issue_14_asks() -> None:
    persisters = [n for n, w in PRESET.items() if w.get("stream") == "events"]
    assert len(persisters) == 2
    assert all("replication" in PRESET[n]["resources"] for n in persisters)
    assert sorted(w.get("sync") for w in PRESET.values() if "sync" in w) == [
        "incremental", "initial"]
    assert [n for n, w in PRESET.items() if w["app"] == "synapse.app.media_repository"] == [
        "media"]
    assert "client_reader" in PRESET
    ports = [w["port"] for w in PRESET.values()] + [DEFAULTS["synapse_replication_port"]]
    assert len(ports) == len(set(ports)), ports
    assert DEFAULTS["synapse_workers_preset"]["none"] == {}


@pytest.mark.parametrize("name", sorted(_routed()))
def test_each_workers_probe_path_is_routed_to_it(name: str) -> None:
    probe = PRESET[name]["probe"]
    path, _, query = probe.partition("?")
    since = dict(p.split("=", 1) for p in query.split("&") if p).get("since")
    assert _nginx_upstream(path, since) == f"planb_worker_{name}"


@pytest.mark.parametrize(("path", "since", "worker"), [
    ("/_matrix/client/v3/sync", None, "sync_initial"),
    ("/_matrix/client/v3/sync", "s72_1", "sync_incremental"),
    ("/_matrix/client/r0/sync", "s1", "sync_incremental"),
    ("/_matrix/client/v3/rooms/!a:x/messages", None, "client_reader"),
    ("/_matrix/media/v3/download/x/y", None, "media"),
    ("/_matrix/client/v1/media/thumbnail/x/y", None, "media"),
])
def test_documented_paths_reach_their_worker(path: str, since: str | None,
                                             worker: str) -> None:
    assert _nginx_upstream(path, since) == f"planb_worker_{worker}"


@pytest.mark.parametrize("path", [
    "/_matrix/client/v3/rooms/!a:x/send/m.room.message/1",
    "/_matrix/client/v3/join/!a:x", "/_matrix/client/v3/createRoom",
    "/_synapse/client/planb_enrol", "/_matrix/client/v3/login",
])
def test_writes_stay_on_the_main_process(path: str) -> None:
    assert _nginx_upstream(path, None) is None


def test_each_upstream_is_its_workers_loopback_port() -> None:
    http = _nginx("planb-workers-http.conf.j2", _routed())
    for name, worker in _routed().items():
        assert (f"upstream planb_worker_{name} {{\n    server 127.0.0.1:{worker['port']};"
                in http)
    # Only verify's own requests from the loopback are logged.
    assert '"~^127\\.0\\.0\\.1 planb-verify-[a-z0-9]{8,40}$" 1;' in http


def test_the_monolith_site_is_unchanged_without_workers() -> None:
    site = (ROLES / "nginx" / "templates" / "planb-matrix.conf.j2").read_text()
    block = site[site.index("{% if nginx_workers"):site.index("{% endif %}",
                                                              site.index("{% if nginx_workers"))]
    env = _env("nginx")
    vars_ = {"nginx_workers_snippet": "/s"}
    assert env.from_string(block + "{% endif %}").render(nginx_workers={}, **vars_) == ""
    assert "include /s;" in env.from_string(block + "{% endif %}").render(
        nginx_workers=_routed(), **vars_)


def test_manifest_and_log_parsing(tmp_path: Path) -> None:
    text = ('{"preset": "activation", "address": "127.0.0.1", '
            '"redis": {"host": "127.0.0.1", "port": 6379}, '
            '"workers": {"media": {"port": 8321, "routes": ["^/_matrix/media/"], '
            '"probe": "/_matrix/client/v1/media/config"}, "persister1": {"port": 8301}}}')
    manifest = parse_manifest(text)
    assert [w.name for w in manifest.workers] == ["media", "persister1"]
    assert manifest.workers[1].probe is None and manifest.redis_port == 6379
    with pytest.raises(CheckFailed, match="not the synapse role's manifest"):
        parse_manifest('{"preset": "activation"}')
    log = ("1.0 planb-verify-aa 127.0.0.1:8311 401\n"
           "2.0 planb-verify-bb 127.0.0.1:8008 401\n")
    assert upstream_of(log, "planb-verify-bb") == ("127.0.0.1:8008", "401")
    assert upstream_of(log, "planb-verify-cc") is None
