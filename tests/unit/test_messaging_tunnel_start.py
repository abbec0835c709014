"""The admin API tunnel when ssh fails or Synapse never answers: a TunnelError that says
why, and no ssh process left behind. ``ssh`` is a small script on PATH."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from planb.errors import PlanbError
from planb.inventory import SshTarget
from planb.messaging.tunnel import admin_tunnel

TARGET = SshTarget("fallback", "10.77.3.11", user="root")


def _fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ssh = bin_dir / "ssh"
    ssh.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "ssh.pid"


def test_ssh_that_ends_is_reported_with_its_last_error_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_ssh(tmp_path, monkeypatch, "echo 'Warning: noise' >&2\n"
              "echo 'ssh: connect to host 10.77.3.11 port 22: No route to host' >&2\nexit 255\n")
    with pytest.raises(PlanbError, match="through ssh: ssh: connect to host 10.77.3.11 port "
                                         "22: No route to host$"), \
            admin_tunnel(TARGET, timeout=10):
        pass


def test_synapse_that_never_answers_times_out_and_ssh_is_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = _fake_ssh(tmp_path, monkeypatch, f"echo $$ > {tmp_path}/ssh.pid\nexec sleep 60\n")
    with pytest.raises(PlanbError, match="did not answer through the tunnel within 1 s"), \
            admin_tunnel(TARGET, timeout=1):
        pass
    pid = int(pid_file.read_text(encoding="utf-8"))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
