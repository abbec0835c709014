"""The runner's set-up: run folders, Ansible's environment, artifact hygiene, bad input."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

import planb
from planb.errors import EXIT_USAGE, ConfigError, UsageError
from planb.provisioning import new_run_dir, run_playbook
from planb.provisioning.runner import _hide_foreign_env, ansible_env


def test_run_dirs_are_named_by_utc_time_and_playbook_and_never_reused(tmp_path: Path) -> None:
    when = datetime(2025, 3, 1, 8, 30, 5, tzinfo=UTC)
    first = new_run_dir(tmp_path, Path("/x/site.yml"), now=when)
    second = new_run_dir(tmp_path, Path("/x/site.yml"), now=when)
    assert first == tmp_path / "runs" / "20250301T083005Z-site"
    assert second != first and second.name.startswith("20250301T083005Z-site")
    assert first.is_dir() and second.is_dir()
    assert (first.stat().st_mode & 0o777) == 0o700


def test_ansible_env_points_at_planbs_roles_and_runs_unattended() -> None:
    env = ansible_env()
    roles = Path(env["ANSIBLE_ROLES_PATH"])
    assert roles == planb.PLAYBOOKS_DIR / "roles"
    assert (roles / "common" / "tasks" / "main.yml").is_file()
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["ANSIBLE_PIPELINING"] == "True"
    assert env["ANSIBLE_RETRY_FILES_ENABLED"] == "False"
    # planb's own ansible-playbook comes first on PATH.
    first = env["PATH"].split(os.pathsep)[0]
    assert (Path(first) / "ansible-playbook").exists()


def test_recorded_environment_keeps_only_planbs_values(tmp_path: Path) -> None:
    command = tmp_path / "command"
    command.write_text(json.dumps({
        "command": ["ansible-playbook", "site.yml"],
        "env": {"ANSIBLE_NOCOLOR": "1", "PATH": "/usr/bin", "AWS_SECRET_ACCESS_KEY": "s3cr3t"},
    }), encoding="utf-8")
    _hide_foreign_env(command, keep={"ANSIBLE_NOCOLOR", "PATH"})
    recorded = json.loads(command.read_text(encoding="utf-8"))
    assert recorded["command"] == ["ansible-playbook", "site.yml"]
    assert recorded["env"]["ANSIBLE_NOCOLOR"] == "1"
    assert "AWS_SECRET_ACCESS_KEY" in recorded["env"]
    assert "s3cr3t" not in command.read_text(encoding="utf-8")
    assert (command.stat().st_mode & 0o777) == 0o600


def test_missing_playbook_is_a_usage_error(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all: {}\n", encoding="utf-8")
    with pytest.raises(UsageError, match="playbook not found") as caught:
        run_playbook(tmp_path / "nope.yml", inventory, run_dir=tmp_path / "run")
    assert caught.value.exit_code == EXIT_USAGE
    assert not (tmp_path / "run").exists()


def test_missing_inventory_is_a_config_error_with_a_hint(tmp_path: Path) -> None:
    playbook = tmp_path / "play.yml"
    playbook.write_text("- hosts: all\n  tasks: []\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        run_playbook(playbook, tmp_path / "inventories" / "x", run_dir=tmp_path / "run")
    assert str(tmp_path / "inventories" / "x") in str(caught.value)
    assert caught.value.hint and "planb init" in caught.value.hint
