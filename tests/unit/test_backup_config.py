"""Issue 13's first steps without a lab: planb.yml's backup section, the lab's backup
host (only when the site asks), its inventory group and the vault's passphrase."""

from __future__ import annotations

from pathlib import Path

import pytest

from planb.config import LabConfig, load_config
from planb.errors import ConfigError
from planb.inventory import BACKUP, load_hosts
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology

BASE = """site: x
organisation: X
matrix: {server_name: a.example, public_hostname: m.a.example}
primary: {kind: csv, csv: {path: a.csv}}
"""


def _site(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "planb.yml"
    path.write_text(BASE + extra, encoding="utf-8")
    return path


def test_backups_are_off_unless_asked_and_the_objectives_have_defaults(tmp_path: Path) -> None:
    site = load_config(_site(tmp_path, ""))
    assert site.backup.enabled is False
    assert (site.objectives.rpo_seconds, site.objectives.restore_rto_seconds) == (900, 3600)
    site = load_config(_site(tmp_path, "backup:\n  enabled: true\n  active_interval_minutes: 5\n"
                                       "  retention: {keep_daily: 3}\n"))
    assert site.backup.enabled and site.backup.active_interval_minutes == 5
    assert site.backup.retention.keep_daily == 3
    assert site.backup.standby_interval_minutes == 360


@pytest.mark.parametrize(("extra", "says"), [
    ("backup:\n  retention: {keep_yearly: 3}\n", "backup.retention.keep_yearly: unknown key"),
    ("backup:\n  every: 5\n", "backup.every: unknown key"),
    ("backup:\n  active_interval_minutes: 0\n", "active_interval_minutes must be between"),
    ("backup:\n  retention: {keep_within: 2 days}\n", "keep_within must be"),
    ("objectives: {rpo_seconds: 0}\n", "rpo_seconds must be positive"),
])
def test_a_wrong_backup_section_is_an_error_naming_the_key(
        tmp_path: Path, extra: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_site(tmp_path, extra))
    assert says in str(caught.value)


def test_the_default_lab_has_no_backup_host() -> None:
    assert "backup" not in [h.name for h in build_topology("10.77.9.0/24", "planb9").hosts]
    assert "backup" not in [h.name for h in build_topology("10.77.9.0/24", "planb9",
                                                           split=True).hosts]


def test_a_lab_that_asks_for_backups_gets_a_backup_host_in_its_own_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    topology = build_topology("10.77.7.0/24", "planb7", backup=True)
    backup = topology.host("backup")
    assert (backup.address, backup.groups, backup.machine) == ("10.77.7.20", (BACKUP,),
                                                              "p7-backup")
    lab = LabConfig(subnet="10.77.7.0/24", bridge="planb7")
    path = write_lab_site(tmp_path, topology, tmp_path / "key", lab)
    site = load_config(path)
    hosts = {h.name: h for h in load_hosts(site)}
    assert BACKUP in hosts["backup"].groups and not hosts["backup"].is_fallback
    assert BACKUP not in hosts["fallback"].groups
    vault = (site.inventory_dir / "group_vars" / "all" / "vault.yml").read_text()
    [line] = [line for line in vault.splitlines() if line.startswith("vault_backup_passphrase:")]
    assert len(line.split(":", 1)[1].strip()) >= 20 and "CHANGE-ME" not in line
