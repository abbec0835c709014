"""Start a stopped or failed service once before a failover preflight refuses.

Every long-running service on the fallback has a systemd drop-in that restarts it after
a crash (playbooks: roles/common/tasks/restart_on_failure.yml). What that cannot cover:
a unit someone stopped, or one systemd gave up on (its start limit was hit). Before
``verify.checks`` with ``heal`` refuses a failover, :class:`Healer` looks at each
failing ``service.*`` check, asks systemd over SSH (as the checks do) what state the
unit is in, and starts it once (``systemctl reset-failed`` then ``start``) when nothing
else will; a unit systemd is already (re)starting is left to it. What it did is said in
the step's output, which the failover journal keeps.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Iterable
from typing import Literal

from planb.inventory import InventoryHost
from planb.verify.connections import HostConnections
from planb.verify.host_checks import POSTGRESQL_UNIT, unit_name
from planb.verify.model import VerifyReport

log = logging.getLogger(__name__)

Decision = Literal["start", "wait", "leave"]
#: Runs a shell command on a host: (exit code, stdout + stderr).
Runner = Callable[[InventoryHost, str], tuple[int, str]]

#: States where systemd itself is bringing the unit up or down (auto-restart included).
_SYSTEMD_AT_WORK = frozenset({"activating", "deactivating", "reloading", "refreshing"})
#: States where nothing will bring the unit back by itself.
_DOWN = frozenset({"failed", "inactive"})
#: The unit a ``service.*`` check looks at, where it is not the check's own suffix.
_CHECK_UNITS = {"service.postgresql": POSTGRESQL_UNIT}


def decide(state: str, tried: bool) -> Decision:
    """What to do with a unit that ``systemctl is-active`` says is in ``state``.

    ``start``: it is down (failed or stopped) and was not started by us yet; ``wait``:
    systemd is at work on it (e.g. auto-restart after a crash); ``leave``: it is
    active, already tried once, or its state is unknown (host unreachable, no unit).
    """
    if state in _SYSTEMD_AT_WORK:
        return "wait"
    if state in _DOWN and not tried:
        return "start"
    return "leave"


def unit_for(check: str, host: InventoryHost) -> str | None:
    """The systemd unit a ``service.*`` check looks at on ``host`` (None: not one)."""
    if not check.startswith("service."):
        return None
    return unit_name(_CHECK_UNITS.get(check, check.removeprefix("service.")), host)


def _privileged(host: InventoryHost, command: str) -> str:
    """``command`` as root: through ``sudo -n`` when Ansible logs in as another user."""
    user = host.ssh.user
    return command if user in (None, "root") else f"sudo -n sh -c {shlex.quote(command)}"


class Healer:
    """Starts each down unit of failing ``service.*`` checks once; says what it did.

    ``enabled`` false: does nothing (:meth:`checked` only runs the checks). ``run``
    executes a command on a host (default: over SSH, as the verify checks do, through
    :class:`~planb.verify.connections.HostConnections`). A context manager: leaving it
    closes the SSH connections.
    """

    def __init__(self, hosts: Iterable[InventoryHost], *, enabled: bool = True,
                 run: Runner | None = None) -> None:
        self.enabled = enabled
        self._hosts = {h.name: h for h in hosts}
        self._connections: HostConnections | None = None
        self._run = run or self._ssh
        self._tried: set[tuple[str, str]] = set()
        #: One line per start tried, for the step's output (and the journal).
        self.done: list[str] = []

    def __enter__(self) -> Healer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def checked(self, run_checks: Callable[[], VerifyReport]) -> VerifyReport:
        """``run_checks()``; when it fails and a unit was started, the checks again."""
        report = run_checks()
        if self.enabled and not report.ok and self.heal(report):
            report = run_checks()
        return report

    def heal(self, report: VerifyReport) -> bool:
        """Start, once each, the down units behind the report's failing service checks.

        True when a start was tried (the caller re-runs the checks to see its effect).
        """
        started = False
        for result in report.problems:
            host = self._hosts.get(result.host)
            unit = unit_for(result.name, host) if host else None
            if host is None or unit is None:
                continue
            state = self._state(host, unit)
            decision = decide(state, (host.name, unit) in self._tried)
            log.debug("%s on %s is %s: %s", unit, host.name, state or "unknown", decision)
            if decision == "start":
                self._tried.add((host.name, unit))
                self.done.append(self._start(host, unit, state))
                started = True
        return started

    def close(self) -> None:
        """Close the SSH connections opened for the starts."""
        if self._connections is not None:
            self._connections.close()
            self._connections = None

    def _state(self, host: InventoryHost, unit: str) -> str:
        _, out = self._run(host, f"systemctl is-active {shlex.quote(unit)}")
        return out.strip().splitlines()[-1] if out.strip() else ""

    def _start(self, host: InventoryHost, unit: str, was: str) -> str:
        quoted = shlex.quote(unit)
        log.warning("starting %s on %s (it was %s) before the preflight decides",
                    unit, host.name, was)
        code, out = self._run(host, _privileged(
            host, f"systemctl reset-failed {quoted}; systemctl start {quoted}"))
        now = self._state(host, unit)
        if code == 0 and now == "active":
            line = f"started {unit} on {host.name} once (it was {was}): now active"
            log.warning("%s", line)
            return line
        why = (out.strip().splitlines() or [f"exit {code}"])[-1][:200]
        line = (f"tried to start {unit} on {host.name} once (it was {was}): "
                f"{now or 'unknown'} ({why})")
        log.error("%s", line)
        return line

    def _ssh(self, host: InventoryHost, command: str) -> tuple[int, str]:
        if self._connections is None:
            self._connections = HostConnections()
        out = self._connections.get(host).run(command)
        return out.rc, out.stdout + out.stderr
