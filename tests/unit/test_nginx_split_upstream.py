"""The nginx role's values on a split and a one-host lab inventory, resolved by Ansible.

On a split site the proxy sends Synapse's traffic to the messaging host's backend gate
(its private address, port 8008) and that gate lets in only the proxy; on a one-host
fallback the proxy keeps Synapse on its own loopback. Ansible resolves the role's
defaults against the inventory 'planb lab up' writes; nothing connects to a host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import planb
from planb.config import LabConfig
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.provisioning.runner import ansible_env

NGINX = planb.PLAYBOOKS_DIR / "roles" / "nginx"
ROLE_VARS = yaml.safe_load((NGINX / "vars" / "main.yml").read_text(encoding="utf-8"))


def resolve(tmp_path: Path, split: bool) -> dict[str, dict[str, Any]]:
    """Each fallback host's nginx upstream, gate values and rendered gate, per host."""
    lab = LabConfig(subnet="10.77.5.0/24", bridge="planb5", split=split)
    write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge, split=split),
                   tmp_path / "key", lab)
    play = [{
        "name": "Resolve the nginx role's values",
        "hosts": "fallback_proxy:fallback_messaging",
        "gather_facts": False,
        "vars_files": [str(NGINX / "defaults" / "main.yml"), str(NGINX / "vars" / "main.yml")],
        "tasks": [{"name": "Write them down", "delegate_to": "localhost",
                   "ansible.builtin.copy": {
                       "dest": str(tmp_path / "out") + "/{{ inventory_hostname }}.json",
                       "mode": "0600",
                       "content": "{{ {'upstream': nginx_synapse_upstream, "
                                  "'allowed': nginx_backend_allowed, 'gate': "
                                  "lookup('ansible.builtin.template', '"
                                  + str(NGINX / "templates" / "planb-backend.conf.j2")
                                  + "')} | to_json }}"}}],
    }]
    playbook = tmp_path / "resolve.yml"
    playbook.write_text(yaml.safe_dump(play), encoding="utf-8")
    (tmp_path / "out").mkdir()
    env = {**os.environ, **ansible_env(), "ANSIBLE_HOME": str(tmp_path / "ansible"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i",
         str(tmp_path / "inventories" / "lab" / "hosts.yml"), str(playbook)],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in (tmp_path / "out").glob("*.json")}


@pytest.fixture(autouse=True)
def _own_planb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))


def test_split_proxy_goes_to_the_messaging_hosts_gate_open_to_the_proxy_only(
        tmp_path: Path) -> None:
    values = resolve(tmp_path, split=True)
    assert values["fallback"]["upstream"] == "http://10.77.5.13:8008"
    assert values["messaging"]["allowed"] == ["10.77.5.11"]
    gate = values["messaging"]["gate"]
    assert "listen 10.77.5.13:8008 default_server;" in gate
    lines = [line.strip() for line in gate.splitlines()]
    assert lines.index("allow 10.77.5.11;") < lines.index("deny all;")
    assert [ln for ln in lines if ln.startswith("allow ")] == ["allow 10.77.5.11;"]
    assert "proxy_pass http://127.0.0.1:8008;" in lines  # Synapse stays on the loopback
    assert "location ^~ /_synapse/admin {" in lines
    # The raw-path rules (tests/unit/test_nginx_raw_paths.py says what they refuse).
    assert [ln for ln in lines if ln.startswith("if ($request_uri ~* ")] == [
        f'if ($request_uri ~* "{regex}") {{' for regex in (
            ROLE_VARS["nginx_refused_path_regex"], ROLE_VARS["nginx_admin_path_regex"])]


def test_one_host_proxy_keeps_synapse_on_its_loopback(tmp_path: Path) -> None:
    values = resolve(tmp_path, split=False)
    assert set(values) == {"fallback"}
    assert values["fallback"]["upstream"] == "http://127.0.0.1:8008"


def test_site_yml_gives_the_gate_only_to_messaging_hosts_that_are_not_the_proxy() -> None:
    plays = yaml.safe_load((planb.PLAYBOOKS_DIR / "site.yml").read_text(encoding="utf-8"))
    gates = [p for p in plays for r in p.get("roles", [])
             if r.get("role") == "nginx" and r.get("vars", {}).get("nginx_role_mode")
             == "backend"]
    assert [p["hosts"] for p in gates] == ["fallback_messaging:!fallback_proxy"]
