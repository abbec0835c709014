"""Small helpers to run the host commands the lab needs, with errors a person can act on."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence

from planb.commands import run_command
from planb.errors import LabError, PrerequisiteError

log = logging.getLogger(__name__)

#: Commands the lab uses, and the Debian package each comes from.
REQUIRED_COMMANDS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "mount": "mount",
    "umount": "mount",
    "nsenter": "util-linux",
}


def check_prerequisites() -> None:
    """Fail with one clear message if not root or a needed command is missing."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("it must run as root (it creates a bridge, mounts and containers)")
    missing = sorted({pkg for cmd, pkg in REQUIRED_COMMANDS.items() if shutil.which(cmd) is None})
    if missing:
        cmds = sorted(cmd for cmd, pkg in REQUIRED_COMMANDS.items() if pkg in missing)
        problems.append(f"missing commands: {', '.join(cmds)}")
    if problems:
        hint = None
        if missing:
            hint = f"as root: apt-get install -y {' '.join(missing)}"
        raise PrerequisiteError("planb lab cannot run here: " + "; ".join(problems), hint=hint)


def run(argv: Sequence[str], *, check: bool = True, timeout: float | None = 120,
        input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing output; raise LabError with its stderr when it fails."""
    return run_command(argv, check=check, timeout=timeout, input_text=input_text,
                       error=LabError)
