"""The one inventory reader: real ``ansible-inventory`` on site inventories in tmp_path.

The promise: every package sees a host where Ansible sees it. An ``ansible_host`` set
only in ``host_vars/`` (which a hand-made walk of hosts.yml misses) must reach the
sync's LDAP endpoint, verify's hosts, the runbooks and the admin tunnel alike.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from planb.config import LabConfig, SiteConfig, load_config
from planb.directory.fallback_endpoint import fallback_endpoint
from planb.directory.sync import Sync
from planb.errors import ConfigError
from planb.inventory import (
    FALLBACK_DIRECTORY,
    FALLBACK_PROXY,
    first_host,
    load_hosts,
    vault_value,
)
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.messaging.tunnel import messaging_host, tunnel_argv
from planb.runbooks.values import site_values
from planb.verify.registry import plan, select_checks

MOVED = "192.0.2.77"


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    lab = LabConfig(subnet="10.77.9.0/24", bridge="planb9")
    config = write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge),
                            tmp_path / "key", lab)
    return load_config(config)


def move_fallback_in_host_vars(site: SiteConfig) -> None:
    """Set the fallback host's address only in host_vars/fallback.yml (hosts.yml keeps
    the old one), as a site that moved its host would."""
    host_vars = site.inventory_dir / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / "fallback.yml").write_text(f"ansible_host: {MOVED}\n", encoding="utf-8")


def test_lab_inventory_has_the_fallback_in_every_fallback_group(site: SiteConfig) -> None:
    hosts = {h.name: h for h in load_hosts(site)}
    assert set(hosts) == {"primary", "fallback"}
    assert hosts["fallback"].is_fallback and not hosts["primary"].is_fallback
    assert first_host(site, FALLBACK_DIRECTORY).name == "fallback"
    assert hosts["fallback"].address == "10.77.9.11"
    ssh = hosts["fallback"].ssh
    assert ssh.user == "root" and ssh.key_file and ssh.key_file.endswith("key")


def test_an_address_in_host_vars_reaches_sync_verify_runbooks_and_tunnel(
        site: SiteConfig) -> None:
    move_fallback_in_host_vars(site)
    assert MOVED not in (site.inventory_dir / "hosts.yml").read_text(encoding="utf-8")
    # the sync binds to it
    assert fallback_endpoint(site).url == f"ldaps://{MOVED}"
    assert Sync(site).fallback.url == f"ldaps://{MOVED}"
    # verify checks it
    pairs = plan(select_checks(["service.slapd"]), load_hosts(site))
    assert [(c.name, h.address) for c, h in pairs] == [("service.slapd", MOVED)]
    # the runbooks print it
    values = site_values(site)
    assert values["directory_host"]["address"] == MOVED
    assert values["proxy_host"]["address"] == MOVED
    assert MOVED in values["host_list"]
    # the admin tunnel goes there
    host = messaging_host(site)
    assert host is not None and tunnel_argv(host.ssh, 40000)[-2] == f"root@{MOVED}"


def test_a_group_with_no_host_is_a_config_error_naming_it(site: SiteConfig) -> None:
    (site.inventory_dir / "hosts.yml").write_text("all:\n  hosts:\n    a: {}\n",
                                                   encoding="utf-8")
    with pytest.raises(ConfigError, match=f"no host in group {FALLBACK_PROXY}"):
        first_host(site, FALLBACK_PROXY)


def test_vault_value_is_a_secret(site: SiteConfig) -> None:
    vault = site.inventory_dir / "group_vars" / "all" / "vault.yml"
    vault.write_text("vault_ldap_sync_password: s3cr3t-v4lue\n", encoding="utf-8")
    value = vault_value(site.inventory_dir, "vault_ldap_sync_password")
    assert value == "s3cr3t-v4lue"
    assert "s3cr3t" not in repr(value)


@pytest.mark.parametrize("text", ["other: 1\n", "vault_ldap_sync_password: CHANGE-ME\n"])
def test_unset_or_placeholder_password_is_refused(site: SiteConfig, text: str) -> None:
    vault = site.inventory_dir / "group_vars" / "all" / "vault.yml"
    vault.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="vault_ldap_sync_password is not set"):
        vault_value(site.inventory_dir, "vault_ldap_sync_password")


def test_encrypted_vault_is_read_with_ansible_vault(site: SiteConfig, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    vault = site.inventory_dir / "group_vars" / "all" / "vault.yml"
    vault.write_text("vault_ldap_sync_password: from-the-vault-123\n", encoding="utf-8")
    key = tmp_path / "vault-pass"
    key.write_text("unlock\n", encoding="utf-8")
    tool = Path(sys.executable).parent / "ansible-vault"
    subprocess.run([str(tool), "encrypt", "--vault-password-file", str(key), str(vault)],
                   check=True, capture_output=True)
    assert vault.read_text(encoding="utf-8").startswith("$ANSIBLE_VAULT")
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(key))
    assert vault_value(site.inventory_dir, "vault_ldap_sync_password") == "from-the-vault-123"
    # and ansible-inventory reads the rest of the inventory with the vault encrypted
    assert first_host(site, FALLBACK_DIRECTORY).name == "fallback"


def test_encrypted_vault_without_password_file_says_what_to_set(
        site: SiteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    vault = site.inventory_dir / "group_vars" / "all" / "vault.yml"
    vault.write_text("$ANSIBLE_VAULT;1.1;AES256\n6162\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="encrypted") as info:
        vault_value(site.inventory_dir, "vault_ldap_sync_password")
    assert "ANSIBLE_VAULT_PASSWORD_FILE" in (info.value.hint or "")
