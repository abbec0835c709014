"""planb.backup without a lab: which hosts back up, and reading borg's answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planb.backup.core import BackupError, _why, backup_hosts, parse_info
from planb.config import LabConfig, load_config
from planb.errors import ConfigError
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology


def test_backup_hosts_need_backups_on_and_a_backup_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    lab = LabConfig(subnet="10.77.7.0/24", bridge="planb7")
    path = write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge), tmp_path / "key", lab)
    with pytest.raises(ConfigError, match="backups are off"):
        backup_hosts(load_config(path))
    text = path.read_text().replace("backup:\n  enabled: false", "backup:\n  enabled: true")
    path.write_text(text)
    with pytest.raises(ConfigError, match="no host in group backup"):
        backup_hosts(load_config(path))
    write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge, backup=True),
                   tmp_path / "key", lab)
    assert [h.name for h in backup_hosts(load_config(path))] == ["fallback"]


def test_borg_info_is_read_into_archives() -> None:
    answer = {"archives": [{"name": "fallback-2026-11-30T05:40:00", "start":
                            "2026-11-30T05:40:00.000000", "duration": 3.5,
                            "stats": {"original_size": 2_000_000, "compressed_size": 900_000,
                                      "deduplicated_size": 800_000, "nfiles": 120}}]}
    [archive] = parse_info("fallback", json.dumps(answer),
                           {"fallback-2026-11-30T05:40:00": "2026-11-30T06:00:00Z\n"},
                           offset="+01:00")
    assert archive.as_dict() == {
        "host": "fallback", "name": "fallback-2026-11-30T05:40:00",
        "time": "2026-11-30T05:40:00.000000+01:00", "duration_s": 3.5, "original_size": 2_000_000,
        "deduplicated_size": 800_000, "files": 120, "verified": True,
        "verified_at": "2026-11-30T06:00:00Z"}
    assert parse_info("fallback", json.dumps({"archives": []})) == []
    with pytest.raises(BackupError, match="unexpected UTC offset"):
        parse_info("fallback", json.dumps(answer), offset="Mon Nov 30")
    with pytest.raises(BackupError, match="unexpected answer from borg on fallback"):
        parse_info("fallback", "Repository does not exist.")


def test_a_failed_backup_names_its_cause_not_borgmatic_boilerplate() -> None:
    """The journal of a backup whose backup host was cut off (seen on the lab)."""
    journal = "\n".join([
        "summary:",
        "/etc/borgmatic/config.yaml: Error running configuration file",
        "ssh://borg@10.77.7.20/var/lib/planb-backup/repos/fallback: Error running actions "
        "for repository",
        "Connection closed by remote host. Is borg working on the server?",
        "Command 'borg prune --keep-within 1d " + "x" * 400 + "' returned non-zero exit status 2.",
        "Need some help? https://torsion.org/borgmatic/#issues",
        "CRITICAL Connection closed by remote host. Is borg working on the server?",
        "planb-backup.service: Failed with result 'exit-code'.",
    ])
    assert _why(journal) == "Connection closed by remote host. Is borg working on the server?"
    long = _why("Command '" + "y" * 500 + "'")
    assert len(long) == 241 and long.endswith("…")
