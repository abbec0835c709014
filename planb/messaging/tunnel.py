"""An SSH local port forward to Synapse's admin API on the messaging host's loopback.

The admin API listens only on ``127.0.0.1:8008`` of the ``fallback_messaging`` host
(nginx never proxies ``/_synapse/admin``). planb reaches it the way Ansible reaches
the host: ``ssh`` with the inventory's address, user, key and options, read with
:mod:`planb.inventory` (``ansible-inventory``, so group_vars
apply). :func:`admin_tunnel` picks a free local port, starts ``ssh -L``, waits until
Synapse answers through it, and on exit stops the ssh process it started, by its
pid. The remote side runs ``cat``, reading ssh's stdin: if planb itself is killed
(kill -9), that pipe closes, ``cat`` ends and the orphaned tunnel closes itself.
No secret is on the ssh command line (the token goes in HTTP headers only).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import subprocess
import time
from collections.abc import Iterator

from planb.config import SiteConfig
from planb.errors import PlanbError
from planb.inventory import FALLBACK_MESSAGING, InventoryHost, SshTarget, hosts_in

log = logging.getLogger(__name__)

#: Where Synapse's client and admin API listen on the messaging host (role synapse).
REMOTE_PORT = 8008


class TunnelError(PlanbError):
    """The SSH tunnel to the admin API could not be opened."""


def tunnel_argv(target: SshTarget, local_port: int, remote_port: int = REMOTE_PORT
                ) -> list[str]:
    """The ssh command forwarding ``127.0.0.1:local_port`` to the host's loopback."""
    return ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
            "-o", "ServerAliveInterval=15", "-o", "ConnectTimeout=10",
            "-L", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}", *target.ssh_args(),
            target.destination, "cat >/dev/null"]


def messaging_host(site: SiteConfig) -> InventoryHost | None:
    """The first host of ``fallback_messaging`` in the site's inventory, if any."""
    hosts = hosts_in(site, FALLBACK_MESSAGING)
    return hosts[0] if hosts else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _start(target: SshTarget, timeout: float) -> tuple[subprocess.Popen[bytes], int] | str:
    """One attempt: the ssh process and its port, or why it ended."""
    port = free_port()
    proc = subprocess.Popen(tunnel_argv(target, port), stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
            _stop(proc)
            lines = [ln for ln in err.splitlines() if ln.strip()]
            return lines[-1] if lines else f"ssh exited with {proc.returncode}"
        if _answers(port):
            return proc, port
        time.sleep(0.1)
    _stop(proc)
    return f"Synapse did not answer through the tunnel within {timeout:.0f} s"


@contextlib.contextmanager
def admin_tunnel(target: SshTarget, *, timeout: float = 30.0) -> Iterator[str]:
    """``http://127.0.0.1:<port>``, forwarded to Synapse on ``target``, while open."""
    why = ""
    for _attempt in range(3):  # a port taken between free_port() and ssh: try another
        started = _start(target, timeout)
        if isinstance(started, str):
            why = started
            if "forward" not in why.lower() and "address already in use" not in why.lower():
                break
            continue
        proc, port = started
        log.info("admin API tunnel to %s open on 127.0.0.1:%d (ssh pid %d)",
                 target.name, port, proc.pid)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(proc)
            log.info("admin API tunnel to %s closed", target.name)
        return
    raise TunnelError(f"cannot reach Synapse's admin API on {target.name} ({target.address}) "
                      f"through ssh: {why}",
                      hint="check that the host is up and deployed ('planb verify')")
