"""Every ``planb ...`` command a runbook prints exists, with the flags it uses.

A person follows these on paper during an incident: a command that does not exist
(a renamed subcommand, a dropped flag) must fail here, not then.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from planb.cli.main import app
from tests.unit.test_runbooks_render import RUNBOOKS, lab_site, render_cli  # noqa: F401

runner = CliRunner()
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"`(planb [^`]+)`")
_SHELL_OPERATORS = {">", ">>", "|", "&&", "||", ";", "<"}
#: Root options taking a value (skipped before the subcommand path).
_ROOT_WITH_VALUE = {"-c", "--config"}


def planb_commands(markdown: str) -> list[str]:
    """Command lines starting with ``planb`` in code blocks and inline code."""
    found = []
    for block in _FENCE.findall(markdown):
        found += [line.strip() for line in block.splitlines()
                  if line.strip().startswith("planb ")]
    found += [m.strip() for m in _INLINE.findall(markdown)]
    return found


def split_command(line: str) -> tuple[list[str], list[str]]:
    """``(subcommand path, option names used)`` for one ``planb ...`` line."""
    tokens = shlex.split(line)
    for index, token in enumerate(tokens):
        if token in _SHELL_OPERATORS:
            tokens = tokens[:index]
            break
    assert tokens[0] == "planb"
    rest = tokens[1:]
    while rest and rest[0] in _ROOT_WITH_VALUE:
        rest = rest[2:]
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    while rest and rest[0] in getattr(command, "commands", {}):
        path.append(rest[0])
        command = command.commands[rest.pop(0)]
    assert not hasattr(command, "commands"), f"{line!r}: no such command under {path}"
    flags = [token.split("=", 1)[0] for token in rest if token.startswith("-")]
    return path, flags


def test_the_extractor_finds_commands_and_their_flags() -> None:
    text = "run `planb -c /x/planb.yml keys export > k.pub`\n\n```\nplanb sync plan -o p.json\n" \
           "echo no\n```\n"
    assert planb_commands(text) == ["planb sync plan -o p.json",
                                    "planb -c /x/planb.yml keys export > k.pub"]
    assert split_command("planb -c '/a b/planb.yml' failover activate --reason 'x y' --force") \
        == (["failover", "activate"], ["--reason", "--force"])
    with pytest.raises(AssertionError, match="no such command"):
        split_command("planb failover activat")


@pytest.mark.parametrize("name", RUNBOOKS)
def test_every_printed_command_exists_with_its_flags(lab_site: Path,  # noqa: F811
                                                     name: str) -> None:
    commands = planb_commands(render_cli(lab_site, name))
    assert commands, f"{name} prints no planb command"
    for line in commands:
        path, flags = split_command(line)
        assert path, f"{name}: {line!r} names no subcommand"
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, f"{name}: {line!r}: {result.output}"
        for flag in flags:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", result.output), \
                f"{name}: {line!r}: {flag} is not an option of planb {' '.join(path)}"
