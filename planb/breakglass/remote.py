"""The controller's side of the hosts' failover lock: held over SSH while it switches.

``planb failover activate|deactivate`` runs ``planb-breakglass lock`` on each messaging
host (with the site's own SSH access, not the break-glass key) and keeps the connection
open for the length of its switch, so a break-glass activation on the host is refused
meanwhile and names the controller's operator. Closing the connection releases the lock:
at the end, on an error, on Ctrl-C, or when the controller dies (the host's process
then reads end-of-file, or is killed with the session). A host whose lock is already
held refuses the controller's switch too, naming who holds it.

A host that does not answer, or has no break-glass command yet (deployed before it
existed), is not locked: the switch goes on (the playbook then reaches, or fails to
reach, that host as before) and the result says so.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from planb.breakglass.paths import COMMAND
from planb.config import SiteConfig
from planb.errors import UsageError
from planb.inventory import FALLBACK_MESSAGING, InventoryHost, hosts_in

log = logging.getLogger(__name__)

#: How long a host may take to answer "locked".
ANSWER_SECONDS = 30.0
_NOT_INSTALLED = 127


@dataclass(frozen=True)
class HostLocks:
    """Which hosts are locked, and the ones that could not be (with why)."""

    locked: tuple[str, ...]
    skipped: tuple[str, ...]


def lock_argv(host: InventoryHost, operator: str, what: str) -> list[str]:
    target = host.ssh
    return ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-o", "ServerAliveInterval=10", *target.ssh_args(), target.destination,
            shlex.join([COMMAND, "lock", "--operator", operator, "--what", what])]


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return proc.stdout.readline()


def _release(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def host_locks(site: SiteConfig, *, operator: str, what: str,
               hosts: Sequence[InventoryHost] | None = None,
               timeout: float = ANSWER_SECONDS) -> Iterator[HostLocks]:
    """Hold the failover lock of every messaging host while the block runs.

    :class:`UsageError` naming the holder when a host's lock is taken (nothing locked
    is kept: the ones already taken are released first).
    """
    held: list[subprocess.Popen[str]] = []
    locked, skipped = [], []
    try:
        for host in hosts_in(site, FALLBACK_MESSAGING) if hosts is None else hosts:
            proc = subprocess.Popen(lock_argv(host, operator, what), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            if _first_line(proc, timeout).startswith("locked "):
                held.append(proc)
                locked.append(host.name)
                continue
            _release(proc)
            error = (proc.stderr.read() if proc.stderr else "").strip()
            if "failover lock is held" in error:
                reason = error.removeprefix("error: ").splitlines()[0]
                raise UsageError(f"{host.name}: {reason}",
                                 hint="someone is switching the fallback on the host itself "
                                      "(break-glass); see 'planb failover status'")
            why = ("no break-glass command there (run 'planb deploy')"
                   if proc.returncode == _NOT_INSTALLED else
                   (error.splitlines() or [f"exit {proc.returncode}"])[-1])
            log.warning("%s: failover lock not taken: %s", host.name, why)
            skipped.append(f"{host.name}: {why}")
        yield HostLocks(tuple(locked), tuple(skipped))
    finally:
        for proc in held:
            _release(proc)
