"""An SSH forward to Synapse's admin API on the messaging host's loopback, to a
Unix socket no other local user can reach.

The admin API listens only on ``127.0.0.1:8008`` of the ``fallback_messaging`` host
(nginx never proxies ``/_synapse/admin``). planb reaches it the way Ansible reaches
the host: ``ssh`` with the inventory's address, user, key and options, read with
:mod:`planb.inventory` (``ansible-inventory``, so group_vars apply).

The local end is a Unix socket that ssh itself creates (``-L PATH:127.0.0.1:8008``)
inside a fresh directory only planb's user may enter (``mkdtemp``: mode 0700). A
local TCP port could not be made safe: between picking a free port and ssh binding
it another local user could bind it first and, answering ``/health``, receive the
admin token; and once bound, any local user could connect to it. In a private
directory nobody else can create the socket first or connect to it (ssh also
creates it with mode 0600). The admin API client then speaks HTTP over that socket
(``http+unix://`` URLs, :mod:`planb.messaging.admin_api`).

:func:`admin_tunnel` starts ``ssh``, waits until Synapse answers through the socket,
and on exit stops the ssh process it started, by its pid, and removes the
directory. The remote side runs ``cat``, reading ssh's stdin: if planb itself is
killed (kill -9), that pipe closes, ``cat`` ends and the orphaned tunnel closes
itself. No secret is on the ssh command line (the token goes in HTTP headers only).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from planb.config import SiteConfig
from planb.errors import PlanbError
from planb.hostkeys import is_key_refusal, refusal_error
from planb.inventory import FALLBACK_MESSAGING, InventoryHost, SshTarget, hosts_in
from planb.messaging.admin_api import unix_connection, unix_url
from planb.polling import poll_until

log = logging.getLogger(__name__)

#: Where Synapse's client and admin API listen on the messaging host (role synapse).
REMOTE_PORT = 8008
#: The socket's name in its private directory.
SOCKET_NAME = "admin.sock"
#: sun_path holds 108 bytes with its NUL.
_MAX_SOCKET_PATH = 107


class TunnelError(PlanbError):
    """The SSH tunnel to the admin API could not be opened."""


def tunnel_argv(target: SshTarget, local: Path | str | int, remote_port: int = REMOTE_PORT
                ) -> list[str]:
    """The ssh command forwarding ``local`` (a Unix socket path) to the host's loopback."""
    return ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
            "-o", "ServerAliveInterval=15", "-o", "ConnectTimeout=10",
            "-o", "StreamLocalBindMask=0177", "-o", "StreamLocalBindUnlink=no",
            "-L", f"{local}:127.0.0.1:{remote_port}", *target.ssh_args(),
            target.destination, "cat >/dev/null"]


def messaging_host(site: SiteConfig) -> InventoryHost | None:
    """The first host of ``fallback_messaging`` in the site's inventory, if any."""
    hosts = hosts_in(site, FALLBACK_MESSAGING)
    return hosts[0] if hosts else None


def private_dir() -> Path:
    """A new directory only this user may enter (0700), short enough for a socket path."""
    folder = Path(tempfile.mkdtemp(prefix="planb-admin-"))
    if len(str(folder / SOCKET_NAME)) > _MAX_SOCKET_PATH:
        folder.rmdir()
        folder = Path(tempfile.mkdtemp(prefix="planb-admin-", dir="/tmp"))
    return folder


def _answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    conn = unix_connection(socket_path, timeout=3)
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


def _start(target: SshTarget, socket_path: Path, timeout: float
           ) -> subprocess.Popen[bytes] | str:
    """The ssh process once Synapse answers through ``socket_path``, or why not."""
    proc = subprocess.Popen(tunnel_argv(target, socket_path), stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def outcome(_left: float) -> subprocess.Popen[bytes] | str | None:
        """The process once Synapse answers, why ssh ended, or None: not yet."""
        if proc.poll() is not None:
            err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
            _stop(proc)
            lines = [ln for ln in err.splitlines() if ln.strip()]
            return lines[-1] if lines else f"ssh exited with {proc.returncode}"
        return proc if _answers(socket_path) else None

    polled = poll_until(outcome, lambda found: found is not None, timeout=timeout,
                        interval=0.1)
    if polled.value is not None:
        return polled.value
    _stop(proc)
    return f"Synapse did not answer through the tunnel within {timeout:.0f} s"


@contextlib.contextmanager
def admin_tunnel(target: SshTarget, *, timeout: float = 30.0) -> Iterator[str]:
    """``http+unix://...``: a URL for :class:`~planb.messaging.admin_api.AdminApi`,
    forwarded to Synapse on ``target``, while open."""
    folder = private_dir()
    socket_path = folder / SOCKET_NAME
    try:
        started = _start(target, socket_path, timeout)
        if isinstance(started, str) and target.known_hosts and is_key_refusal(started):
            raise refusal_error(target.key_target, Path(target.known_hosts))
        if isinstance(started, str):
            raise TunnelError(
                f"cannot reach Synapse's admin API on {target.name} ({target.address}) "
                f"through ssh: {started}",
                hint="check that the host is up and deployed ('planb verify')")
        log.info("admin API tunnel to %s open on %s (ssh pid %d)", target.name, socket_path,
                 started.pid)
        try:
            yield unix_url(socket_path)
        finally:
            _stop(started)
            log.info("admin API tunnel to %s closed", target.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
