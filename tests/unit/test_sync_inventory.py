"""Reading the fallback directory's address and the sync password from the inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from planb.directory.inventory_values import directory_address, vault_value
from planb.errors import ConfigError

HOSTS = """\
all:
  hosts:
    front: {ansible_host: 192.0.2.1}
    ldap1: {ansible_host: 192.0.2.7}
  children:
    fallback:
      children:
        fallback_directory:
          hosts:
            ldap1:
        fallback_proxy:
          hosts:
            front:
"""


def inventory(tmp_path: Path, hosts: str = HOSTS, vault: str | None = None) -> Path:
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    (tmp_path / "hosts.yml").write_text(hosts, encoding="utf-8")
    if vault is not None:
        (tmp_path / "group_vars" / "all" / "vault.yml").write_text(vault, encoding="utf-8")
    return tmp_path


def test_directory_host_is_found_in_nested_groups(tmp_path: Path) -> None:
    assert directory_address(inventory(tmp_path)) == "192.0.2.7"


def test_host_without_ansible_host_is_its_name(tmp_path: Path) -> None:
    hosts = HOSTS.replace("    ldap1: {ansible_host: 192.0.2.7}\n", "")
    assert directory_address(inventory(tmp_path, hosts)) == "ldap1"


def test_no_directory_host_is_a_config_error(tmp_path: Path) -> None:
    hosts = "all:\n  hosts:\n    a: {}\n"
    with pytest.raises(ConfigError, match="no host in group fallback_directory"):
        directory_address(inventory(tmp_path, hosts))


def test_vault_value_is_a_secret(tmp_path: Path) -> None:
    value = vault_value(inventory(tmp_path, vault="vault_ldap_sync_password: s3cr3t-v4lue\n"),
                        "vault_ldap_sync_password")
    assert value == "s3cr3t-v4lue"
    assert "s3cr3t" not in repr(value)


@pytest.mark.parametrize("vault", ["other: 1\n", "vault_ldap_sync_password: CHANGE-ME\n"])
def test_unset_or_placeholder_password_is_refused(tmp_path: Path, vault: str) -> None:
    with pytest.raises(ConfigError, match="vault_ldap_sync_password is not set"):
        vault_value(inventory(tmp_path, vault=vault), "vault_ldap_sync_password")


def test_encrypted_vault_without_password_file_says_what_to_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    path = inventory(tmp_path, vault="$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    with pytest.raises(ConfigError, match="encrypted") as info:
        vault_value(path, "vault_ldap_sync_password")
    assert "ANSIBLE_VAULT_PASSWORD_FILE" in (info.value.hint or "")
