"""planb.commands.run_command: real programs, and the error a person reads when one fails."""

from __future__ import annotations

import sys

import pytest

from planb.commands import run_command
from planb.errors import LabError, PlanbError


def test_returns_the_output_of_a_command_that_works() -> None:
    proc = run_command([sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"],
                       input_text="fallback")
    assert proc.returncode == 0 and proc.stdout == "FALLBACK\n"


def test_a_failure_names_the_command_and_its_last_stderr_line() -> None:
    script = "import sys; print('noise'); sys.stderr.write('first\\nE: no such package\\n'); " \
             "sys.exit(3)"
    with pytest.raises(LabError) as caught:
        run_command([sys.executable, "-c", script], what="apt-get install", error=LabError,
                    hint="check the mirror")
    assert str(caught.value) == "apt-get install failed: E: no such package"
    assert caught.value.hint == "check the mirror"


def test_without_stderr_the_last_stdout_line_or_the_exit_is_shown() -> None:
    with pytest.raises(PlanbError, match=r"failed: only on stdout$"):
        run_command([sys.executable, "-c", "print('only on stdout'); raise SystemExit(1)"])
    with pytest.raises(PlanbError, match=r"failed: exit 7$"):
        run_command([sys.executable, "-c", "raise SystemExit(7)"])


def test_check_false_returns_the_failed_process() -> None:
    proc = run_command([sys.executable, "-c", "raise SystemExit(2)"], check=False)
    assert proc.returncode == 2


def test_a_missing_program_and_a_timeout_are_planb_errors() -> None:
    with pytest.raises(PlanbError, match="planb-no-such-program not found"):
        run_command(["planb-no-such-program", "--version"])
    with pytest.raises(PlanbError, match=r"did not finish within 0.5 s"):
        run_command([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.5)
