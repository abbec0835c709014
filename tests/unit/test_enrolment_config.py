"""planb.yml's enrolment section and primary.ldap.copy_password_hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from planb.config import EnrolmentConfig, load_config
from planb.errors import ConfigError

BASE = """\
site: lyon
organisation: "Métropole de Lyon"
matrix:
  server_name: lyon.example
  public_hostname: matrix.lyon.example
primary:
  kind: ldap
  ldap:
    url: ldaps://ad.lyon.example
    base_dn: ou=agents,dc=lyon,dc=example
    bind_dn: cn=reader,dc=lyon,dc=example
    bind_password: s3cret-value
    flavour: {flavour}
{extra}"""


def load(tmp_path: Path, flavour: str = "openldap", extra: str = "") -> object:
    path = tmp_path / "planb.yml"
    path.write_text(BASE.format(flavour=flavour, extra=extra), encoding="utf-8")
    return load_config(path)


def test_defaults_enrolment_on_with_the_contract_values(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.enrolment == EnrolmentConfig(  # type: ignore[attr-defined]
        enabled=True, code_valid_days=365, max_failures=5, password_min_length=12)


@pytest.mark.parametrize(("flavour", "setting", "copies"), [
    ("openldap", "", True), ("active_directory", "", False),
    ("openldap", "    copy_password_hashes: false\n", False),
    ("openldap", "    copy_password_hashes: true\n", True),
    ("active_directory", "    copy_password_hashes: false\n", False),
])
def test_copy_password_hashes_defaults_by_flavour(tmp_path: Path, flavour: str, setting: str,
                                                  copies: bool) -> None:
    path = tmp_path / "planb.yml"
    text = BASE.format(flavour=flavour, extra="").replace(
        f"    flavour: {flavour}\n", f"    flavour: {flavour}\n{setting}")
    path.write_text(text, encoding="utf-8")
    assert load_config(path).primary.copies_password_hashes is copies


def test_active_directory_cannot_claim_to_copy_hashes(tmp_path: Path) -> None:
    path = tmp_path / "planb.yml"
    path.write_text(BASE.format(flavour="active_directory", extra="").replace(
        "flavour: active_directory\n", "flavour: active_directory\n"
        "    copy_password_hashes: true\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match="never gives out"):
        load_config(path)


def test_a_csv_source_copies_no_hashes(tmp_path: Path) -> None:
    path = tmp_path / "planb.yml"
    path.write_text(BASE.format(flavour="openldap", extra="").replace(
        "  kind: ldap\n", "  kind: csv\n  csv:\n    path: agents.csv\n"), encoding="utf-8")
    assert load_config(path).primary.copies_password_hashes is False


def test_enrolment_settings_load(tmp_path: Path) -> None:
    config = load(tmp_path, extra="enrolment:\n  enabled: false\n  code_valid_days: 30\n"
                                  "  max_failures: 3\n  password_min_length: 14\n")
    assert config.enrolment == EnrolmentConfig(False, 30, 3, 14)  # type: ignore[attr-defined]


def test_an_unknown_enrolment_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra="enrolment:\n  code_valid_dyas: 30\n")
    assert info.value.key == "enrolment.code_valid_dyas"
    assert "unknown key" in str(info.value)


@pytest.mark.parametrize("bad", ["code_valid_days: 0", "max_failures: 0",
                                 "password_min_length: 4", "code_valid_days: many"])
def test_bad_enrolment_values_are_errors(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra=f"enrolment:\n  {bad}\n")
    assert (info.value.key or "").startswith("enrolment")
