"""Values the sync reads from the site's inventory: the fallback directory's address and
the sync account's password.

The inventory (``inventories/<site>/hosts.yml`` and ``group_vars/all/vault.yml``) is
the one place those live, for Ansible and for planb alike. The password is read as a
:class:`~planb.schema.Secret` and never logged. An ansible-vault encrypted vault is
decrypted with ``ansible-vault view`` when ``ANSIBLE_VAULT_PASSWORD_FILE`` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from planb.config import SiteConfig
from planb.directory.ldap_conn import LdapEndpoint
from planb.errors import ConfigError
from planb.schema import Secret

DIRECTORY_GROUP = "fallback_directory"
SYNC_PASSWORD_KEY = "vault_ldap_sync_password"
VAULT_HEADER = "$ANSIBLE_VAULT"


def _load_yaml(path: Path, text: str | None = None) -> Any:
    try:
        text = path.read_text(encoding="utf-8") if text is None else text
        return yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path),
                          hint="create the site's inventory ('planb init' or 'planb lab up')"
                          ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read: {type(exc).__name__}", path=str(path)) from None


def _group_hosts(group: Mapping[str, Any] | None, name: str) -> list[str]:
    """Hosts of group ``name`` found anywhere under ``group`` (children included)."""
    if not isinstance(group, Mapping):
        return []
    children = group.get("children") or {}
    found: list[str] = []
    for child_name, child in children.items() if isinstance(children, Mapping) else ():
        if child_name == name:
            found += _all_hosts(child)
        else:
            found += _group_hosts(child, name)
    return found


def _all_hosts(group: Mapping[str, Any] | None) -> list[str]:
    if not isinstance(group, Mapping):
        return []
    hosts = list((group.get("hosts") or {}).keys())
    for child in (group.get("children") or {}).values():
        hosts += _all_hosts(child)
    return hosts


def _host_vars(group: Mapping[str, Any] | None, host: str) -> dict[str, Any]:
    """Variables given to ``host`` anywhere in the tree (later definitions win)."""
    found: dict[str, Any] = {}
    if not isinstance(group, Mapping):
        return found
    entry = (group.get("hosts") or {}).get(host)
    if isinstance(entry, Mapping):
        found.update(entry)
    for child in (group.get("children") or {}).values():
        found.update(_host_vars(child, host))
    return found


def directory_address(inventory_dir: Path) -> str:
    """The ``ansible_host`` (or name) of the first host in ``fallback_directory``."""
    path = inventory_dir / "hosts.yml"
    data = _load_yaml(path)
    root = data.get("all") if isinstance(data, Mapping) else None
    hosts = _group_hosts(root, DIRECTORY_GROUP)
    if not hosts:
        raise ConfigError(f"no host in group {DIRECTORY_GROUP}", path=str(path),
                          hint="add the fallback directory's host to that group")
    host = hosts[0]
    return str(_host_vars(root, host).get("ansible_host") or host)


def _vault_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path)) from None
    if not text.startswith(VAULT_HEADER):
        return text
    password_file = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    tool = shutil.which("ansible-vault", path=str(Path(sys.executable).parent)) \
        or shutil.which("ansible-vault")
    if not password_file or tool is None:
        raise ConfigError("encrypted with ansible-vault", path=str(path),
                          hint="set ANSIBLE_VAULT_PASSWORD_FILE so planb can read "
                               f"{SYNC_PASSWORD_KEY}")
    proc = subprocess.run([tool, "view", "--vault-password-file", password_file, str(path)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ConfigError("ansible-vault could not decrypt it", path=str(path),
                          hint="check ANSIBLE_VAULT_PASSWORD_FILE")
    return proc.stdout


def vault_value(inventory_dir: Path, key: str) -> Secret:
    """One secret from ``group_vars/all/vault.yml``; ConfigError if unset or a placeholder."""
    path = inventory_dir / "group_vars" / "all" / "vault.yml"
    data = _load_yaml(path, _vault_text(path))
    value = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(value, str) or not value or value == "CHANGE-ME":
        raise ConfigError(f"{key} is not set", path=str(path),
                          hint="set it (the same value the playbooks gave the LDAP account)")
    return Secret(value)


def fallback_endpoint(site: SiteConfig) -> LdapEndpoint:
    """How the sync binds to the fallback LDAP: ldaps to the directory host, as
    ``cn=planb-sync,ou=services,<suffix>``, trusting the site's CA
    (``<state_dir>/pki/ca.crt``, made by the pki role)."""
    inventory = site.inventory_dir
    return LdapEndpoint(
        url=f"ldaps://{directory_address(inventory)}",
        bind_dn=f"cn=planb-sync,ou=services,{site.fallback.ldap_suffix}",
        password=vault_value(inventory, SYNC_PASSWORD_KEY),
        ca_file=site.state_dir / "pki" / "ca.crt",
        label="the fallback directory",
    )
