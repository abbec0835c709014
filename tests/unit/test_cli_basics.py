"""The CLI as a user meets it: help that teaches, exit codes that mean something."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def test_root_help_lists_commands_and_exit_codes() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("init", "config", "lab", "Exit codes", "130 interrupted"):
        assert word in result.output


@pytest.mark.parametrize("command", [["init"], ["config", "show"], ["lab", "up"], ["lab", "down"],
                                     ["lab", "status"], ["lab", "ssh"]])
def test_each_subcommand_explains_itself(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
    # The docstring's first line is shown, not an empty help.
    assert len(result.output.splitlines()) > 5


def test_init_then_config_show_masks_and_records_site(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", "site", "--site", "ville"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "site/inventories/ville/group_vars/all/vault.yml").exists()
    # planb init records the current site, so config show needs no --config.
    shown = runner.invoke(app, ["config", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    assert '"site": "ville"' in shown.output


def test_init_json_lists_what_it_wrote(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", "site", "--site", "ville", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["site"] == "ville" and data["config"] == str(tmp_path / "site" / "planb.yml")
    assert str(Path("site") / "inventories" / "ville" / "hosts.yml") in data["written"]


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", "site"]).exit_code == 0
    again = runner.invoke(app, ["init", "site"])
    assert again.exit_code == 2
    assert "refusing to overwrite" in again.output
    assert runner.invoke(app, ["init", "site", "--force"]).exit_code == 0


def test_bad_config_exit_2_names_file_and_key(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", "site"]).exit_code == 0
    config = tmp_path / "site/planb.yml"
    config.write_text(config.read_text() + "colour: blue\n")
    result = runner.invoke(app, ["-c", str(config), "config", "show"])
    assert result.exit_code == 2
    assert str(config) in result.output
    assert "colour: unknown key" in result.output


def test_missing_config_exit_2_with_hint() -> None:
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert "no site configuration found" in result.output
    assert "planb init" in result.output


def test_lab_commands_refuse_a_site_without_lab_section(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", "site"]).exit_code == 0
    result = runner.invoke(app, ["-c", str(tmp_path / "site/planb.yml"), "lab", "status"])
    assert result.exit_code == 2
    assert "no 'lab:' section" in result.output


@pytest.mark.parametrize("as_json", [False, True])
def test_config_show_never_prints_the_bind_password(tmp_path: Path, as_json: bool) -> None:
    assert runner.invoke(app, ["init", "site", "--site", "ville"]).exit_code == 0
    config = tmp_path / "site/planb.yml"
    secret = "Pr1mary-bind-S3cret"
    text = config.read_text(encoding="utf-8")
    assert "    bind_password_file: " in text
    config.write_text(text.replace("    bind_password_file: ",
                                   f"    bind_password: {secret}\n    # was: "), encoding="utf-8")
    shown = runner.invoke(app, ["-c", str(config), "config", "show",
                                *(["--json"] if as_json else [])])
    assert shown.exit_code == 0, shown.output
    assert secret not in shown.output
    assert ('"bind_password": "********"' if as_json else "bind_password: '********'"
            ) in shown.output


def test_lab_up_ha_refuses_split_and_a_lab_made_without_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from planb.lab.lab import Lab

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("refused 'lab up --ha' must not boot anything")

    monkeypatch.setattr(Lab, "up", never)
    both = runner.invoke(app, ["--config", str(tmp_path / "planb.yml"), "lab", "up", "--ha",
                               "--split"])
    assert both.exit_code == 2, both.output
    assert "not with --split" in both.output
    assert not (tmp_path / "planb.yml").exists()
    from planb.config import LabConfig
    from planb.lab.site import write_lab_site
    from planb.lab.topology import build_topology

    lab = LabConfig(subnet="10.77.3.0/24", bridge="planb3")
    write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge), tmp_path / "key", lab)
    later = runner.invoke(app, ["--config", str(tmp_path / "planb.yml"), "lab", "up", "--ha"])
    assert later.exit_code == 2, later.output
    assert "made without a standby" in " ".join(later.output.split())
