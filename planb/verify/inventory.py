"""The hosts verify looks at, read from the site's Ansible inventory.

``ansible-inventory --list`` (planb's own, from its environment) resolves hosts,
groups and variables exactly as the playbooks see them, including the SSH key and
options in group_vars. Only connection settings and non-secret variables are kept;
an encrypted vault is read with Ansible's usual ``ANSIBLE_VAULT_PASSWORD_FILE``.
Commands on a host run through testinfra's SSH backend, one multiplexed SSH
connection per host (closed by :meth:`HostConnections.close`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import testinfra
from testinfra.host import Host

from planb.config import SiteConfig
from planb.errors import PlanbError
from planb.provisioning.deploy import check_inventory
from planb.provisioning.runner import ansible_env

log = logging.getLogger(__name__)

FALLBACK_GROUPS = ("fallback_directory", "fallback_messaging", "fallback_proxy")
_SECRET = re.compile(r"(?i)^vault_|password|passwd|secret|token|passphrase|_pass$")
_SSH_TIMEOUT = 10


@dataclass(frozen=True)
class VerifyHost:
    """One inventory host: name, address, groups and its non-secret variables."""

    name: str
    address: str
    groups: tuple[str, ...]
    hostvars: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_fallback(self) -> bool:
        return any(g in self.groups for g in FALLBACK_GROUPS)


def _group_members(inventory: Mapping[str, Any], group: str, seen: set[str]) -> set[str]:
    if group in seen:
        return set()
    seen.add(group)
    entry = inventory.get(group, {})
    hosts = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts |= _group_members(inventory, child, seen)
    return hosts


def parse_inventory(data: Mapping[str, Any]) -> list[VerifyHost]:
    """Hosts from ``ansible-inventory --list`` JSON, secret-looking variables dropped."""
    hostvars = data.get("_meta", {}).get("hostvars", {})
    groups = [g for g in data if g not in ("_meta", "all", "ungrouped")]
    members = {g: _group_members(data, g, set()) for g in groups}
    hosts = []
    for name in sorted(hostvars):
        kept = {k: v for k, v in hostvars[name].items() if not _SECRET.search(k)}
        hosts.append(VerifyHost(
            name=name, address=str(kept.get("ansible_host", name)),
            groups=tuple(sorted(g for g in groups if name in members[g])), hostvars=kept))
    return hosts


def load_hosts(site: SiteConfig) -> list[VerifyHost]:
    """The site's inventory hosts; :class:`PlanbError` if Ansible cannot read it."""
    inventory = check_inventory(site)
    env = {**os.environ, **ansible_env(), "ANSIBLE_VERBOSITY": "0"}
    proc = subprocess.run(["ansible-inventory", "-i", str(inventory), "--list"],
                          capture_output=True, text=True, env=env, timeout=120,
                          cwd=site.base_dir)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise PlanbError(f"cannot read the inventory {inventory}: "
                         + (lines[-1] if lines else f"ansible-inventory exited {proc.returncode}"),
                         hint="an encrypted vault needs ANSIBLE_VAULT_PASSWORD_FILE")
    return parse_inventory(json.loads(proc.stdout))


class HostConnections:
    """testinfra hosts over SSH, one multiplexed connection each, made on first use."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="planb-verify-ssh-"))
        self._hosts: dict[str, Host] = {}
        self._lock = threading.Lock()

    def get(self, host: VerifyHost) -> Host:
        """The testinfra host for ``host`` (SSH with the inventory's user, key and options)."""
        with self._lock:
            if host.name not in self._hosts:
                self._hosts[host.name] = self._connect(host)
            return self._hosts[host.name]

    def _control_path(self, host: VerifyHost) -> Path:
        return self._dir / host.name

    def _connect(self, host: VerifyHost) -> Host:
        hv = host.hostvars
        user = hv.get("ansible_user")
        port = hv.get("ansible_port")
        address = f"[{host.address}]" if ":" in host.address else host.address
        spec = f"ssh://{user + '@' if user else ''}{address}{':' + str(port) if port else ''}"
        extra = " ".join(str(hv.get(k, "")) for k in ("ansible_ssh_common_args",
                                                       "ansible_ssh_extra_args")).strip()
        key = hv.get("ansible_ssh_private_key_file") or hv.get("ansible_private_key_file")
        return testinfra.get_host(spec, ssh_identity_file=key, ssh_extra_args=extra or None,
                                  timeout=_SSH_TIMEOUT, controlpersist=30,
                                  controlpath=str(self._control_path(host)))

    def close(self) -> None:
        """Stop the SSH master connections and remove their sockets."""
        with self._lock:
            for name in self._hosts:
                socket = self._dir / name
                if socket.exists():
                    subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", name],
                                   capture_output=True, timeout=10, check=False)
            self._hosts.clear()
        shutil.rmtree(self._dir, ignore_errors=True)
