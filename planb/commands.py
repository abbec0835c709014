"""Running a program: output captured, and a failure raised as a PlanbError naming it."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from planb.errors import PlanbError

log = logging.getLogger(__name__)


def run_command(argv: Sequence[str], *, check: bool = True, timeout: float | None = 120,
                input_text: str | None = None, env: Mapping[str, str] | None = None,
                cwd: Path | None = None, what: str | None = None,
                error: type[PlanbError] = PlanbError, hint: str | None = None,
                ) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with text output captured; return the finished process.

    With ``check``, a non-zero exit raises ``error`` saying ``what`` failed (default:
    the command line) and the last line it wrote on stderr (else stdout); a missing
    program or a ``timeout`` raises it too, ``hint`` attached to each.
    """
    shown = what or f"'{' '.join(argv)}'"
    log.debug("run: %s", " ".join(argv))
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              input=input_text, env=None if env is None else dict(env),
                              cwd=cwd, check=False)
    except subprocess.TimeoutExpired:
        raise error(f"{shown} did not finish within {timeout:g} s", hint=hint) from None
    except FileNotFoundError:
        raise error(f"{argv[0]} not found: {shown} cannot run", hint=hint) from None
    if check and proc.returncode != 0:
        raise error(f"{shown} failed: {last_line(proc)}", hint=hint)
    return proc


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The last non-empty line a finished process wrote (stderr first), else its exit."""
    for stream in (proc.stderr, proc.stdout):
        lines = [line.strip() for line in (stream or "").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return f"exit {proc.returncode}"
