"""planb restore without a lab: the host scripts as rendered for each kind of host, the
dump hook's soft failure on a host that never held data, reading the counts, the CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import planb
from planb.backup.restore import describe, holds_data, parse_counts
from planb.cli.main import app

ROLE = planb.PLAYBOOKS_DIR / "roles" / "backup"
GROUPS = {"combined": ["fallback_directory", "fallback_messaging", "fallback_proxy"],
          "directory": ["fallback_directory"], "messaging": ["fallback_messaging"]}


def render(template: str, groups: list[str], **extra: Any) -> str:
    """A backup role template as Ansible renders it for a host in ``groups``."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    variables: dict[str, Any] = defaults | {
        "planb_config": {}, "inventory_hostname": "fallback", "group_names": groups,
        "groups": {"backup": ["backup"]}, "hostvars": {}} | extra
    templar = Templar(loader=DataLoader(), variables=variables)
    text = (ROLE / "templates" / template).read_text(encoding="utf-8")
    return str(templar.template(text, preserve_trailing_newlines=True,
                                escape_backslashes=False))


@pytest.mark.parametrize("kind", sorted(GROUPS))
@pytest.mark.parametrize("template", ["planb-backup-restore.j2", "planb-backup-dump.j2",
                                      "planb-backup-counts.j2"])
def test_the_host_scripts_are_valid_shell_on_every_kind_of_host(template: str,
                                                                kind: str) -> None:
    script = render(template, GROUPS[kind])
    subprocess.run(["sh", "-n", "-c", script], check=True)
    if template == "planb-backup-restore.j2":
        assert ("systemctl stop synapse" in script) == (kind != "directory")
        assert ("slapadd -q -n 0 -F \"$ldap_conf\"" in script) == (kind != "messaging")
        # Every check comes before the first service is stopped.
        assert script.rindex("check_failed \"") < script.index("systemctl stop")


def _dump_hook(tmp_path: Path, counts: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    fake = tmp_path / "counts"
    fake.write_text(f"#!/bin/sh\necho '{counts}'\n")
    fake.chmod(0o755)
    marker = tmp_path / "held-data"
    script = render("planb-backup-dump.j2", ["fallback_messaging"],
                    backup_counts_script=str(fake), backup_dump_dir=str(tmp_path / "dumps"),
                    backup_held_data_marker=str(marker),
                    backup_skipped_marker=str(tmp_path / "skipped"))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False,
                          env=os.environ | {"PATH": os.environ["PATH"]})
    return done, marker


def test_a_host_that_never_held_data_soft_fails_its_backup(tmp_path: Path) -> None:
    """Exit 75 (borgmatic: skip, no error) and no counts file while empty and never
    restored or backed up with data; once it held data, empty backups go on."""
    empty = "users=0 rooms=1 events=9 agents=0"
    done, marker = _dump_hook(tmp_path, empty)
    assert done.returncode == 75, done
    assert "holds no data yet" in done.stderr
    assert not (tmp_path / "dumps" / "counts").exists()
    # What 'planb backup now' reads to say "no archive made" rather than "backed up".
    assert (tmp_path / "skipped").read_text().strip() == empty
    done, _ = _dump_hook(tmp_path, "users=4 rooms=2 events=30 agents=0")
    assert done.returncode == 0, done.stderr
    assert marker.exists()
    assert not (tmp_path / "skipped").exists()
    assert (tmp_path / "dumps" / "counts").read_text().startswith("users=4 ")
    done, _ = _dump_hook(tmp_path, empty)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dumps" / "counts").read_text().strip() == empty


def test_counts_are_read_and_only_people_make_data() -> None:
    counts = parse_counts("users=0 rooms=2 events=41 agents=0\n")
    assert counts == {"users": 0, "rooms": 2, "events": 41, "agents": 0}
    assert not holds_data(counts)  # planb's own rooms and announcements
    assert holds_data(parse_counts("users=0 rooms=0 events=0 agents=3"))
    assert holds_data(parse_counts("users=12 rooms=0 events=0 agents=0"))
    assert parse_counts("sh: 1: planb-backup-counts: not found") == {}
    assert describe(parse_counts("users=12 rooms=3 events=140 agents=60")) == (
        "12 users, 3 rooms, 140 events, 60 agents")


def test_restore_help_teaches_the_path_and_the_refusal() -> None:
    done = CliRunner().invoke(app, ["restore", "--help"], terminal_width=200)
    assert done.exit_code == 0, done.output
    for words in ("--archive", "--previous", "--force", "--json", "planb deploy",
                  "fresh database", "signing key", "slapadd with slapd stopped",
                  "nothing running is touched", "planb verify"):
        assert words in done.output, words


def test_previous_and_archive_together_are_refused(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from planb.backup import BackupError, restore
    from planb.config import LabConfig, load_config
    from planb.lab.site import write_lab_site
    from planb.lab.topology import build_topology

    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    lab = LabConfig(subnet="10.77.7.0/24", bridge="planb7")
    path = write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge, backup=True),
                          tmp_path / "key", lab)
    path.write_text(path.read_text().replace("backup:\n  enabled: false",
                                             "backup:\n  enabled: true"))
    site = load_config(path)
    with pytest.raises(BackupError, match="not with --archive"):
        restore(site, archive="fallback-20270101T000000Z", previous=True)
    with pytest.raises(BackupError, match="no fallback host made archive 'other-1'"):
        restore(site, archive="other-1")
