"""The one reader of a site's Ansible inventory: hosts, groups, addresses, SSH, vault values.

Every package asks here, so the sync, verify, the runbooks, the admin tunnel and the
playbooks always agree on which host is where. Hosts come from
``ansible-inventory --list`` (planb's own, from its environment), which resolves
hosts, groups and variables exactly as the playbooks see them: ``host_vars/``,
``group_vars/``, INI or YAML inventories. Only connection settings and non-secret
variables are kept on :class:`InventoryHost`; secrets are read one at a time with
:func:`vault_value` (an ansible-vault encrypted file is decrypted with
``ANSIBLE_VAULT_PASSWORD_FILE``) and come back as :class:`~planb.schema.Secret`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from planb.commands import run_command
from planb.config import SiteConfig
from planb.errors import ConfigError, PlanbError
from planb.files import write_atomic
from planb.hostkeys import (
    KeyTarget,
    TrustResult,
    known_hosts_path,
    require_trusted,
    ssh_options,
    trust,
    untrusted,
)
from planb.schema import Secret

log = logging.getLogger(__name__)

#: The inventory groups the fallback's roles are applied to (one host may be in all).
FALLBACK_DIRECTORY = "fallback_directory"
FALLBACK_MESSAGING = "fallback_messaging"
FALLBACK_PROXY = "fallback_proxy"
FALLBACK_GROUPS = (FALLBACK_DIRECTORY, FALLBACK_MESSAGING, FALLBACK_PROXY)
#: The hosts that keep the fallback's backups (borg repositories reached over SSH).
BACKUP = "backup"
#: The hot-standby fallback hosts: PostgreSQL and slapd replicas of the fallback, its
#: files in step, Synapse installed but stopped until ``planb failover promote``.
FALLBACK_STANDBY = "fallback_standby"
#: Hosts for Synapse's workers apart from the messaging host (planb.yml
#: ``fallback.synapse.workers``). Reserved: the synapse role refuses hosts in it for now
#: (the workers run on the messaging host's loopback).
FALLBACK_MESSAGING_WORKERS = "fallback_messaging_workers"
#: After ``planb failover promote`` (:mod:`planb.ha.promote`), the inventory file
#: :data:`PROMOTION_FILE` it writes puts the lost fallback host in ``fallback_lost`` and
#: the standby that took over in ``fallback_promoted`` and the lost host's fallback
#: groups. planb reads a lost host as in none of those groups (:func:`parse_inventory`),
#: its playbooks leave it out (:func:`playbook_limit`), and the promoted host is no
#: longer a standby.
FALLBACK_LOST = "fallback_lost"
FALLBACK_PROMOTED = "fallback_promoted"
PROMOTION_FILE = "planb-promotion.yml"

VAULT_FILE = Path("group_vars") / "all" / "vault.yml"
VAULT_HEADER = "$ANSIBLE_VAULT"
_SECRET = re.compile(r"(?i)^vault_|password|passwd|secret|token|passphrase|_pass$")


@dataclass(frozen=True)
class SshTarget:
    """How to reach a host with ssh, from its inventory variables (as Ansible does)."""

    name: str
    address: str
    user: str | None = None
    port: int | None = None
    key_file: str | None = None
    options: tuple[str, ...] = ()
    #: The site's known_hosts: only its keys are accepted (None: ssh's own defaults).
    known_hosts: str | None = None

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.address}" if self.user else self.address

    def option_args(self) -> list[str]:
        """The ``-o`` options: the host key check first (ssh keeps the first value of an
        option, so an inventory's old ``StrictHostKeyChecking=no`` cannot turn it off),
        then the inventory's own."""
        args = ssh_options(Path(self.known_hosts)) if self.known_hosts else []
        return args + list(self.options)

    @property
    def key_target(self) -> KeyTarget:
        """The host as ssh-keyscan and known_hosts name it."""
        return KeyTarget(self.name, self.address, self.port)

    def ssh_args(self) -> list[str]:
        """Options, key and port for ``ssh`` (the destination not included)."""
        args = self.option_args()
        if self.key_file:
            args += ["-i", self.key_file]
        if self.port:
            args += ["-p", str(self.port)]
        return args


@dataclass(frozen=True)
class InventoryHost:
    """One inventory host: name, address, groups and its non-secret variables."""

    name: str
    address: str
    groups: tuple[str, ...]
    hostvars: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    known_hosts: str | None = field(default=None, compare=False, repr=False)

    @property
    def key_target(self) -> KeyTarget:
        """The host as ssh-keyscan and known_hosts name it."""
        return self.ssh.key_target

    @property
    def uses_ssh(self) -> bool:
        """Whether Ansible reaches this host over SSH (not ``ansible_connection: local``
        or another non-SSH connection): only those have a host key to check."""
        connection = str(self.hostvars.get("ansible_connection") or "ssh")
        return connection.rsplit(".", 1)[-1] in _SSH_CONNECTIONS

    @property
    def is_fallback(self) -> bool:
        return any(g in self.groups for g in FALLBACK_GROUPS)

    @property
    def ssh(self) -> SshTarget:
        """How ssh reaches this host: user, port, key and extra options from its variables."""
        hv = self.hostvars
        extra = " ".join(str(hv.get(k) or "") for k in ("ansible_ssh_common_args",
                                                         "ansible_ssh_extra_args"))
        key = hv.get("ansible_ssh_private_key_file") or hv.get("ansible_private_key_file")
        port = hv.get("ansible_port")
        user = hv.get("ansible_user")
        return SshTarget(name=self.name, address=self.address,
                         user=str(user) if user else None, port=int(port) if port else None,
                         key_file=str(key) if key else None, options=tuple(shlex.split(extra)),
                         known_hosts=self.known_hosts)


#: Ansible connection plugins that speak SSH (``smart`` picks ssh).
_SSH_CONNECTIONS = frozenset({"ssh", "smart", "paramiko", "paramiko_ssh"})


def _group_members(inventory: Mapping[str, Any], group: str, seen: set[str]) -> set[str]:
    if group in seen:
        return set()
    seen.add(group)
    entry = inventory.get(group, {})
    hosts = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts |= _group_members(inventory, child, seen)
    return hosts


def parse_inventory(data: Mapping[str, Any], known_hosts: Path | None = None
                    ) -> list[InventoryHost]:
    """Hosts from ``ansible-inventory --list`` JSON, secret-looking variables dropped;
    their SSH accepts only the keys in ``known_hosts`` when given."""
    hostvars = data.get("_meta", {}).get("hostvars", {})
    groups = [g for g in data if g not in ("_meta", "all", "ungrouped")]
    members = {g: _group_members(data, g, set()) for g in groups}
    hosts = []
    for name in sorted(hostvars):
        kept = {k: v for k, v in hostvars[name].items() if not _SECRET.search(k)}
        hosts.append(InventoryHost(
            name=name, address=str(kept.get("ansible_host", name)),
            groups=_promoted_groups(sorted(g for g in groups if name in members[g])),
            hostvars=kept, known_hosts=str(known_hosts) if known_hosts else None))
    return hosts


def _promoted_groups(groups: list[str]) -> tuple[str, ...]:
    """A host's groups as planb reads them after a promotion: a lost host is in no
    fallback group, a promoted one is no longer a standby."""
    if FALLBACK_LOST in groups:
        return tuple(g for g in groups if g == FALLBACK_LOST
                     or not (g == "fallback" or g.startswith("fallback_")))
    if FALLBACK_PROMOTED in groups:
        return tuple(g for g in groups if g != FALLBACK_STANDBY)
    return tuple(groups)


def playbook_limit(site: SiteConfig, limit: str | None = None) -> str | None:
    """``limit`` for a playbook run, leaving out the hosts a promotion recorded as lost
    (group ``fallback_lost`` of :data:`PROMOTION_FILE`); unchanged when there is none."""
    if not (site.inventory_dir / PROMOTION_FILE).is_file():
        return limit
    return f"{limit or 'all'}:!{FALLBACK_LOST}"


def record_promotion(site: SiteConfig, lost: InventoryHost, promoted: InventoryHost, *,
                     at: str, why: str) -> Path:
    """Write :data:`PROMOTION_FILE` in the site's inventory: ``promoted`` takes the
    fallback groups of ``lost``, which goes to ``fallback_lost``. Returns its path."""
    groups = [g for g in lost.groups if g.startswith("fallback_") and g not in (
        FALLBACK_LOST, FALLBACK_PROMOTED, FALLBACK_STANDBY)]
    children: dict[str, Any] = {FALLBACK_LOST: {"hosts": {lost.name: None}},
                                FALLBACK_PROMOTED: {"hosts": {promoted.name: None}}}
    children |= {g: {"hosts": {promoted.name: None}} for g in groups}
    why = " ".join(why.split())[:200]
    text = (f"# Written by 'planb failover promote' at {at} ({why}; its journal: kind\n"
            "# promotion):\n"
            f"# {promoted.name} serves in place of {lost.name}, which planb and its\n"
            "# playbooks now leave out. When a host is stood up again as the standby,\n"
            "# put it in the inventory as such and remove this file.\n"
            + yaml.safe_dump({"all": {"children": children}}, sort_keys=True))
    path = check_inventory(site) / PROMOTION_FILE
    write_atomic(path, text.encode("utf-8"), 0o644)
    return path


def check_inventory(site: SiteConfig) -> Path:
    """The site's inventory folder; :class:`ConfigError` (exit 2) with a hint if it is missing."""
    inventory = site.inventory_dir
    if not inventory.is_dir():
        raise ConfigError(
            f"inventory folder {inventory} does not exist", path=str(site.source),
            key="paths.inventory",
            hint=f"create it with 'planb init {site.base_dir}' (or 'planb lab up' for the lab), "
            "or point paths.inventory in planb.yml at an existing inventory",
        )
    return inventory


def ansible_tool(name: str) -> str:
    """The path of an Ansible command line tool: planb's own environment first, else PATH."""
    for path in (str(Path(sys.executable).parent), None):
        found = shutil.which(name, path=path)
        if found:
            return found
    raise PlanbError(f"{name} not found", hint="install planb with its dependencies "
                     "(scripts/setup.sh), which brings ansible-core")


def load_hosts(site: SiteConfig) -> list[InventoryHost]:
    """The site's inventory hosts; :class:`PlanbError` if Ansible cannot read it."""
    inventory = check_inventory(site)
    env = {**os.environ, "ANSIBLE_VERBOSITY": "0", "ANSIBLE_NOCOLOR": "1"}
    proc = run_command([ansible_tool("ansible-inventory"), "-i", str(inventory), "--list"],
                       env=env, cwd=site.base_dir, what=f"reading the inventory {inventory}",
                       hint="an encrypted vault needs ANSIBLE_VAULT_PASSWORD_FILE")
    return parse_inventory(json.loads(proc.stdout), known_hosts_path(site))


def trust_hosts(site: SiteConfig, names: tuple[str, ...] = (), *, replace: bool = False,
                new_only: bool = False, hosts: list[InventoryHost] | None = None
                ) -> list[TrustResult]:
    """Record the SSH host keys of the site's hosts (``names``: only these) in
    ``<site>/known_hosts`` (ssh-keyscan); ``new_only``: only hosts with none recorded.
    A recorded key that changed is replaced only with ``replace``."""
    inventory = load_hosts(site) if hosts is None else hosts
    unknown = sorted(set(names) - {h.name for h in inventory})
    if unknown:
        raise ConfigError(f"no host {', '.join(unknown)} in the inventory",
                          path=str(site.inventory_dir),
                          hint="hosts: " + ", ".join(h.name for h in inventory))
    targets = [h.key_target for h in inventory
               if h.uses_ssh and (not names or h.name in names)]
    path = known_hosts_path(site)
    if new_only:
        targets = untrusted(path, targets)
    return trust(path, targets, replace=replace)


def require_trusted_hosts(site: SiteConfig, hosts: list[InventoryHost]) -> None:
    """:class:`~planb.hostkeys.HostKeyError` unless every host reached over SSH has a
    recorded key (a host with ``ansible_connection: local`` has none to check)."""
    for host in hosts:
        if any(o.replace(" ", "").lower() in ("stricthostkeychecking=no",
                                               "userknownhostsfile=/dev/null")
               for o in host.ssh.options):
            log.warning("%s: the inventory's ansible_ssh_common_args turn SSH host key "
                        "checks off; planb ignores that now (it checks against %s): remove "
                        "those options", host.name, known_hosts_path(site))
            break
    require_trusted(known_hosts_path(site), [h.key_target for h in hosts if h.uses_ssh])


def hosts_in(site: SiteConfig, group: str,
             hosts: list[InventoryHost] | None = None) -> list[InventoryHost]:
    """The hosts of ``group`` (children included), by name."""
    return [h for h in (load_hosts(site) if hosts is None else hosts) if group in h.groups]


def first_host(site: SiteConfig, group: str,
               hosts: list[InventoryHost] | None = None) -> InventoryHost:
    """The first host of ``group``; :class:`ConfigError` naming the group if it has none."""
    found = hosts_in(site, group, hosts)
    if not found:
        raise ConfigError(f"no host in group {group}", path=str(site.inventory_dir),
                          hint=f"add the host that runs it to the group {group} of the "
                               "site's inventory")
    return found[0]


def _vault_text(path: Path, key: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path),
                          hint="create the site's inventory ('planb init' or 'planb lab up')"
                          ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {type(exc).__name__}", path=str(path)) from None
    if not text.startswith(VAULT_HEADER):
        return text
    password_file = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    if not password_file:
        raise ConfigError("encrypted with ansible-vault", path=str(path),
                          hint=f"set ANSIBLE_VAULT_PASSWORD_FILE so planb can read {key}")
    proc = subprocess.run([ansible_tool("ansible-vault"), "view", "--vault-password-file",
                           password_file, str(path)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise ConfigError("ansible-vault could not decrypt it", path=str(path),
                          hint="check ANSIBLE_VAULT_PASSWORD_FILE")
    return proc.stdout


def vault_value(inventory_dir: Path, key: str) -> Secret:
    """One secret from ``group_vars/all/vault.yml``; ConfigError if unset or a placeholder."""
    path = inventory_dir / VAULT_FILE
    try:
        data = yaml.safe_load(_vault_text(path, key))
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read: {type(exc).__name__}", path=str(path)) from None
    value = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(value, str) or not value or value == "CHANGE-ME":
        raise ConfigError(f"{key} is not set", path=str(path),
                          hint="set it (the same value the playbooks gave that account)")
    return Secret(value)
