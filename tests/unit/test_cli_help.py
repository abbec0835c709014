"""Every command's --help reads well, and 'planb --help' starts without the heavy libraries."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from planb.cli.main import app

runner = CliRunner()

#: Libraries a command imports when it runs; 'import planb.cli.main' must not.
HEAVY = ("ansible", "ansible_runner", "nio", "testinfra", "ldap3")


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = sorted(_commands(typer.main.get_command(app)), key=lambda item: item[0])


def _help(path: tuple[str, ...], width: int = 100) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_is_walked() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "sync apply", "bundle build", "report show", "lab up", "keys init"} <= paths
    assert len(paths) > 30


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=" ".join)
def test_flags_show_no_bool_type_and_usage_no_double_brackets(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert "<bool>" not in text
    assert "--help" in text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "[[" not in usage, usage  # typer brackets an optional argument's metavar itself


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_paragraphs_reflow_to_the_terminal(path: tuple[str, ...], command: Any) -> None:
    """A paragraph of the help, hand-wrapped in the source, shows as one line on a wide
    terminal: the terminal wraps it, not the docstring's line breaks."""
    source = command.help
    if not source:
        pytest.skip("no help text")
    text = _help(path, width=400)
    paragraphs = inspect.cleandoc(source).split("\n\n")
    for paragraph in paragraphs:
        line = " ".join(paragraph.split())
        if "[" in line or len(line) > 380:  # rich markup, or too long for one line
            continue
        assert line in text, f"{' '.join(path)}: paragraph not on one line: {line!r}"


def test_verify_help_lists_every_check_and_the_cert_default() -> None:
    """The check names and the default are read when the help is shown, not at start."""
    from planb.verify import CHECKS
    from planb.verify.registry import DEFAULT_CERT_MIN_DAYS

    text = _help(("verify",), width=400)
    assert "Checks: package.slapd" in text
    assert all(f" {check.name}" in text for check in CHECKS)
    assert f"(default: {DEFAULT_CERT_MIN_DAYS})" in text


def test_sync_apply_help_states_the_default_workers() -> None:
    from planb.directory.fallback_apply import DEFAULT_WORKERS

    assert f"(default: {DEFAULT_WORKERS})" in _help(("sync", "apply"), width=400)


def test_import_of_the_cli_does_not_load_heavy_libraries() -> None:
    code = ("import json, sys; import planb.cli.main; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
