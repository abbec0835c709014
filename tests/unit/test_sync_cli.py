"""``planb sync`` through the CLI where no directory is needed: help, refusals that come
before any directory is touched (failover active, primary unreachable)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.errors import EXIT_ERROR, EXIT_USAGE
from planb.mode import freeze_sync

runner = CliRunner()
PASSWORD = "primary-Bind-Password-42"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site made by 'planb init' whose primary is on a closed local port."""
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    done = runner.invoke(app, ["init", str(tmp_path / "site"), "--site", "demo"])
    assert done.exit_code == 0, done.output
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "site" / "planb.yml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "ldaps://ldap.example.org", f"ldaps://127.0.0.1:{port}"), encoding="utf-8")
    secret = tmp_path / "site" / "secrets" / "primary-bind-password"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    return config


def test_help_explains_refusals_and_passwords() -> None:
    expected = {
        (): ("Never deletes", "max_deactivate_percent", "--from-snapshot",
             "Active Directory does not expose", "enrolment"),
        ("apply",): ("--force", "--yes", "--strict", "kill -9", "130 interrupted"),
        ("plan",): ("--output", "--json", "--snapshot-out", "Writes nothing"),
    }
    for command, texts in expected.items():
        done = runner.invoke(app, ["sync", *command, "--help"], env={"COLUMNS": "200"})
        assert done.exit_code == 0
        shown = " ".join(done.output.split())
        for text in texts:
            assert text in shown, text


def test_unreachable_primary_is_an_error_that_names_it_and_hides_the_password(
        site: Path) -> None:
    done = runner.invoke(app, ["--config", str(site), "sync", "plan"])
    assert done.exit_code == EXIT_ERROR, done.output
    assert "cannot reach the primary directory at ldaps://127.0.0.1:" in done.stderr
    assert "nothing was changed" in done.stderr
    assert PASSWORD not in done.output + done.stderr
    done = runner.invoke(app, ["--config", str(site), "sync", "apply", "--yes", "--ldap-only"])
    assert done.exit_code == EXIT_ERROR
    assert "cannot reach the primary directory" in done.stderr


def test_apply_without_a_matrix_target_refuses_unless_ldap_only(site: Path) -> None:
    """The site has no admin token (not deployed): apply must not sync LDAP alone and
    exit 0 as if the agents could log in to Matrix."""
    done = runner.invoke(app, ["--config", str(site), "sync", "apply", "--yes"])
    assert done.exit_code == EXIT_USAGE, done.output
    assert "Matrix target is not configured" in done.stderr
    assert "nothing was changed" in done.stderr and "--ldap-only" in done.stderr
    # asked for LDAP only, it goes on (here to the unreachable primary)
    done = runner.invoke(app, ["--config", str(site), "sync", "apply", "--yes", "--ldap-only"])
    assert done.exit_code == EXIT_ERROR
    assert "cannot reach the primary directory" in done.stderr


@pytest.mark.parametrize("command", [["plan"], ["apply", "--yes", "--ldap-only"]])
def test_active_failover_refuses_to_read_the_primary(site: Path, command: list[str]) -> None:
    freeze_sync(site.parent / ".planb", by="test", why="drill", at="2026-01-01T00:00:00Z")
    done = runner.invoke(app, ["--config", str(site), "sync", *command])
    assert done.exit_code == EXIT_USAGE, done.output
    assert "failover is active" in done.stderr
    assert "--from-snapshot" in done.stderr
    # with a snapshot, it goes on (here to the missing snapshot file)
    done = runner.invoke(app, ["--config", str(site), "sync", *command, "--from-snapshot",
                               str(site.parent / "missing.json")])
    assert done.exit_code == EXIT_USAGE
    assert "snapshot not found" in done.stderr


def test_damaged_plan_file_is_refused_before_anything_is_read(site: Path) -> None:
    plan = site.parent / "plan.json"
    plan.write_text('{"schema": "planb/sync-plan", "schema_version": 1}', encoding="utf-8")
    done = runner.invoke(app, ["--config", str(site), "sync", "apply", str(plan), "--yes"])
    assert done.exit_code == EXIT_USAGE
    assert "damaged plan" in done.stderr
