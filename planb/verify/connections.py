"""SSH connections to inventory hosts for checks: testinfra, one multiplexed connection each.

Hosts and how to reach them come from :mod:`planb.inventory`; commands run through
testinfra's SSH backend with the host's user, port, key and options, one multiplexed
SSH connection per host (closed by :meth:`HostConnections.close`).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import testinfra
from testinfra.host import Host

from planb.hostkeys import HostKeyError, is_key_refusal, refusal_error
from planb.inventory import InventoryHost

_SSH_TIMEOUT = 10


class HostConnections:
    """testinfra hosts over SSH, one multiplexed connection each, made on first use."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="planb-verify-ssh-"))
        self._hosts: dict[str, Host] = {}
        self._lock = threading.Lock()

    def get(self, host: InventoryHost) -> Host:
        """The testinfra host for ``host`` (SSH with the inventory's user, key and options)."""
        with self._lock:
            if host.name not in self._hosts:
                self._hosts[host.name] = self._connect(host)
            return self._hosts[host.name]

    def _control_path(self, host: InventoryHost) -> Path:
        return self._dir / host.name

    def _connect(self, host: InventoryHost) -> Host:
        ssh = host.ssh
        address = f"[{ssh.address}]" if ":" in ssh.address else ssh.address
        spec = (f"ssh://{ssh.user + '@' if ssh.user else ''}{address}"
                f"{':' + str(ssh.port) if ssh.port else ''}")
        extra = " ".join(shlex.quote(o) for o in ssh.option_args())
        remote = testinfra.get_host(spec, ssh_identity_file=ssh.key_file,
                                    ssh_extra_args=extra or None, timeout=_SSH_TIMEOUT,
                                    controlpersist=30,
                                    controlpath=str(self._control_path(host)))
        if ssh.known_hosts:
            # The first command opens the connection: a refused host key is told as
            # planb tells it (host and fix), not as ssh's raw banner on every check.
            try:
                remote.run("true")
            except RuntimeError as exc:  # testinfra: ssh itself failed (exit 255)
                if is_key_refusal(str(exc)):
                    refused = refusal_error(ssh.key_target, Path(ssh.known_hosts))
                    raise HostKeyError(f"{refused} ({refused.hint})") from None
                raise
        return remote

    def close(self) -> None:
        """Stop the SSH master connections and remove their sockets."""
        with self._lock:
            for name in self._hosts:
                socket = self._dir / name
                if socket.exists():
                    subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", name],
                                   capture_output=True, timeout=10, check=False)
            self._hosts.clear()
        shutil.rmtree(self._dir, ignore_errors=True)
