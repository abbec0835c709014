"""Site configuration: a valid file loads; each kind of mistake names file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from planb.config import find_config_path, load_config, masked
from planb.errors import ConfigError
from planb.site_init import SiteSpec, write_site

VALID = """\
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
objectives:
  rto_seconds: 90
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "planb.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.site == "lyon"
    assert config.organisation == "Métropole de Lyon"
    assert config.objectives.rto_seconds == 90
    assert config.safety.max_deactivate_percent == 5.0
    assert config.matrix.federation is False
    assert config.state_dir == (tmp_path / ".planb").resolve()
    assert config.inventory_dir == (tmp_path / "inventories" / "lyon").resolve()
    assert config.lab is None


def test_unknown_key_names_file_key_and_line(tmp_path: Path) -> None:
    text = VALID.replace("  rto_seconds: 90", "  rto_seconds: 90\n  rto_secnods: 5")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert error.exit_code == 2
    assert error.key == "objectives.rto_secnods"
    assert error.line == 15
    assert str(path) in str(error) and "unknown key" in str(error)


def test_wrong_type_names_key_and_expected_type(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("rto_seconds: 90", "rto_seconds: soon"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "objectives.rto_seconds"
    assert info.value.line == 14
    assert "must be an integer" in str(info.value)


def test_missing_required_key(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("  server_name: lyon.example\n", ""))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "matrix.server_name"
    assert "required key is missing" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yml")
    assert "nope.yml" in str(info.value) and "file not found" in str(info.value)
    assert info.value.exit_code == 2


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("  rto_seconds: 90", "  rto_seconds: [90"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "YAML syntax error" in str(info.value)
    assert info.value.line is not None and info.value.line >= 14


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "site: other\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "site" and "duplicate" in str(info.value)


def test_value_checks_name_the_section(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("kind: ldap", "kind: csv"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "primary"
    assert "'csv' section is missing" in str(info.value)


def test_masked_hides_secrets(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    shown = masked(config)
    assert "s3cret-value" not in repr(shown)
    assert shown["primary"]["ldap"]["bind_password"] == "********"  # type: ignore[index]
    assert "s3cret-value" not in repr(config)


def test_find_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="no site configuration found"):
        find_config_path()
    local = write(tmp_path, VALID)
    assert find_config_path() == local
    monkeypatch.setenv("PLANB_CONFIG", "/elsewhere/planb.yml")
    assert find_config_path() == Path("/elsewhere/planb.yml")
    assert find_config_path(Path("given.yml")) == Path("given.yml")


def test_init_files_load_and_are_not_overwritten(tmp_path: Path) -> None:
    spec = SiteSpec(site="prod", organisation="Ville", server_name="ville.example",
                    public_hostname="matrix.ville.example")
    written = write_site(spec, tmp_path)
    assert {p.name for p in written} == {"planb.yml", "hosts.yml", "main.yml", "vault.yml"}
    config = load_config(tmp_path / "planb.yml")
    assert config.site == "prod"
    vault = tmp_path / "inventories/prod/group_vars/all/vault.yml"
    assert vault.stat().st_mode & 0o777 == 0o600
    before = (tmp_path / "planb.yml").read_text()
    (tmp_path / "planb.yml").write_text(before + "# edited\n")
    with pytest.raises(Exception, match="refusing to overwrite"):
        write_site(spec, tmp_path)
    assert (tmp_path / "planb.yml").read_text().endswith("# edited\n")
