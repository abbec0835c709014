"""``planb deploy`` through the CLI, without running Ansible: help text and bad set-ups."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.errors import EXIT_USAGE

runner = CliRunner()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site made by 'planb init', with planb's machine state kept in tmp_path."""
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    done = runner.invoke(app, ["init", str(tmp_path / "site"), "--site", "demo"])
    assert done.exit_code == 0, done.output
    return tmp_path / "site" / "planb.yml"


def test_help_explains_options_and_exit_codes() -> None:
    done = runner.invoke(app, ["deploy", "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0
    for text in ("site.yml", "--check", "--tags", "--limit", "--json", "changed=0",
                 "vault.yml", "Ctrl-C", "3 a task failed"):
        assert text in done.output, text


def test_deploy_is_listed_in_planb_help() -> None:
    done = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0
    assert "deploy" in done.output


def test_missing_inventory_exits_2_and_says_how_to_fix_it(site: Path) -> None:
    inventory = site.parent / "inventories" / "demo"
    shutil.rmtree(inventory)
    done = runner.invoke(app, ["--config", str(site), "deploy"])
    assert done.exit_code == EXIT_USAGE
    assert str(inventory) in done.stderr
    assert "does not exist" in done.stderr
    assert "planb init" in done.stderr
    assert not (site.parent / ".planb" / "runs").exists()


def test_missing_config_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    done = runner.invoke(app, ["--config", str(tmp_path / "nope.yml"), "deploy"])
    assert done.exit_code == EXIT_USAGE
    assert "nope.yml" in done.stderr and "not found" in done.stderr
