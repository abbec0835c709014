"""Real faults and checks on lab hosts: cut a host off the network, power it off, kill a
service, wait for it.

Network isolation is done on this machine (the controller): the host's veth on the
lab bridge is set down, so the host loses its network exactly as if its cable were
pulled, without touching anything inside it; reconnecting sets it up again and waits
until the host answers SSH. Powering off (``lab.stop_host``) shuts the host down
cleanly and keeps its disk; ``lab.start_host`` boots it again with the same address
(:meth:`planb.lab.lab.Lab.stop_host`, :meth:`~planb.lab.lab.Lab.start_host`).
Service actions run ``systemctl`` on the host over SSH
(:meth:`planb.lab.lab.Lab.run_on`). ``host`` is a lab host name (``primary``) or an
inventory group (``fallback_messaging``), in which case every host of the group is
acted on.
"""

from __future__ import annotations

import re
import signal
import time
from dataclasses import dataclass
from typing import Any, Literal

from planb.engine.actions import ActionContext, ActionRegistry, ActionResult
from planb.errors import PlanbError, UsageError
from planb.lab import machines, network
from planb.lab.lab import Lab
from planb.lab.system import run
from planb.lab.topology import LabHost
from planb.polling import poll_until

_UNIT = re.compile(r"^[A-Za-z0-9@._:-]+$")
_HOST = re.compile(r"^[a-z][a-z0-9_-]*$")
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class HostArgs:
    """A lab host name or inventory group."""

    host: str

    def __post_init__(self) -> None:
        if not _HOST.match(self.host):
            raise ValueError(f"host {self.host!r} is not a lab host or group name")


@dataclass(frozen=True)
class UnitArgs:
    """A systemd unit on a lab host (or on each host of a group)."""

    host: str
    unit: str

    def __post_init__(self) -> None:
        HostArgs(self.host)
        if not _UNIT.match(self.unit):
            raise ValueError(f"unit {self.unit!r} is not a systemd unit name")


@dataclass(frozen=True)
class KillArgs:
    """``service.kill``: which unit, where, and with which signal."""

    host: str
    unit: str
    signal: str = "SIGKILL"
    #: main: the unit's main process only (a crash); all: every process of the unit.
    whom: Literal["main", "all"] = "main"

    def __post_init__(self) -> None:
        UnitArgs(self.host, self.unit)
        if self.signal not in signal.Signals.__members__:
            raise ValueError(f"signal {self.signal!r} is not a signal name like SIGKILL")


def _lab(ctx: ActionContext) -> Lab:
    lab = Lab(ctx.site)
    if not (lab.dir / "lab.json").exists():
        raise PlanbError("the lab is not up", hint="run 'planb lab up'")
    return lab


def _hosts(lab: Lab, name: str) -> list[LabHost]:
    topology = lab.topology()
    by_name = [h for h in topology.hosts if h.name == name]
    hosts = by_name or list(topology.in_group(name))
    if not hosts:
        known = ", ".join(sorted({h.name for h in topology.hosts}
                                 | {g for h in topology.hosts for g in h.groups}))
        raise UsageError(f"no lab host or group {name!r} (known: {known})")
    return hosts


def _systemctl(lab: Lab, host: LabHost, ctx: ActionContext, *args: str) -> tuple[int, str]:
    """Run ``systemctl ARGS`` on ``host``; (exit code, output). PlanbError if SSH fails."""
    proc = lab.run_on(host.name, ["systemctl", *args], timeout=ctx.remaining())
    if proc.returncode == 255:
        detail = (proc.stderr.strip().splitlines() or ["ssh failed"])[-1]
        raise PlanbError(f"cannot reach {host.name} ({host.address}) over SSH: {detail}")
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _unit_state(lab: Lab, host: LabHost, unit: str, ctx: ActionContext) -> dict[str, str]:
    _, out = _systemctl(lab, host, ctx, "show", "--property=ActiveState,SubState,MainPID,"
                        "NRestarts,LoadState", unit)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def isolate_host(ctx: ActionContext, args: HostArgs) -> ActionResult:
    """Set the host's veth down on the lab bridge: it loses its network."""
    lab = _lab(ctx)
    links = network.link_names()
    done = []
    for host in _hosts(lab, args.host):
        if host.veth not in links:
            raise PlanbError(f"{host.name} has no link {host.veth} on this machine: is it up?")
        run(["ip", "link", "set", host.veth, "down"])
        done.append(f"{host.name}: {host.veth} down")
    return ActionResult(True, "\n".join(done))


def reconnect_host(ctx: ActionContext, args: HostArgs) -> ActionResult:
    """Set the host's veth up again and wait until the host answers SSH."""
    lab = _lab(ctx)
    links = network.link_names()
    lines, ok = [], True
    for host in _hosts(lab, args.host):
        if host.veth not in links:
            raise PlanbError(f"{host.name} has no link {host.veth} on this machine: is it up?")
        run(["ip", "link", "set", host.veth, "up"])

        def state(left: float, address: str = host.address) -> str:
            return machines.system_state(lab.key, address, timeout=min(10, max(left, 1)))

        polled = poll_until(state, lambda s: s != "unreachable", timeout=ctx.remaining(0),
                            interval=POLL_SECONDS)
        ok = ok and polled.ok
        lines.append(f"{host.name}: {host.veth} up, "
                     + (f"answers SSH after {polled.seconds:.1f} s (system {polled.value})"
                        if polled.ok else "still unreachable"))
    return ActionResult(ok, "\n".join(lines))


def stop_host(ctx: ActionContext, args: HostArgs) -> ActionResult:
    """Power the host(s) off cleanly, disk kept (:meth:`planb.lab.lab.Lab.stop_host`)."""
    lab = _lab(ctx)
    lines: list[str] = []
    for host in _hosts(lab, args.host):
        start = time.monotonic()
        if not lab.stop_host(host.name, timeout=max(5.0, ctx.remaining() - 5)):
            return ActionResult(False, "\n".join([*lines, f"{host.name} was not running: "
                                                  "nothing to stop"]))
        lines.append(f"{host.name}: powered off in {time.monotonic() - start:.1f} s "
                     "(disk kept)")
    return ActionResult(True, "\n".join(lines))


def start_host(ctx: ActionContext, args: HostArgs) -> ActionResult:
    """Boot the host(s) again from their kept disk and wait until systemd is up.

    A host that already runs is fine (restore runs this whatever the fault did)."""
    lab = _lab(ctx)
    lines, ok = [], True
    for host in _hosts(lab, args.host):
        start = time.monotonic()
        try:
            state = lab.start_host(host.name, timeout=max(5.0, ctx.remaining() - 2))
        except PlanbError as exc:
            ok = False
            lines.append(f"{host.name}: not started: {exc.message}")
            continue
        lines.append(f"{host.name}: up after {time.monotonic() - start:.1f} s (system {state})")
    return ActionResult(ok, "\n".join(lines))


def kill_service(ctx: ActionContext, args: KillArgs) -> ActionResult:
    """``systemctl kill --kill-whom=WHOM -s SIGNAL UNIT`` on the host(s); the unit must be
    active first. (Killing ``all`` made systemd 252 report EIO for the processes that
    died with the main one: ``main`` is the realistic crash, and the default.)"""
    lab = _lab(ctx)
    lines = []
    for host in _hosts(lab, args.host):
        before = _unit_state(lab, host, args.unit, ctx)
        if before.get("ActiveState") != "active":
            return ActionResult(False, f"{host.name}: {args.unit} is "
                                f"{before.get('ActiveState', 'unknown')}, not active: nothing "
                                "to kill")
        code, out = _systemctl(lab, host, ctx, "kill", f"--kill-whom={args.whom}", "--signal",
                               args.signal, args.unit)
        if code != 0:
            return ActionResult(False, f"{host.name}: systemctl kill {args.unit} failed: {out}")
        lines.append(f"{host.name}: sent {args.signal} to {args.unit} "
                     f"(main pid was {before.get('MainPID')})")
    return ActionResult(True, "\n".join(lines))


def wait_active(ctx: ActionContext, args: UnitArgs) -> ActionResult:
    """Wait until the unit is active on the host(s) (systemd restarted it), up to the timeout."""
    lab = _lab(ctx)
    lines, ok = [], True
    for host in _hosts(lab, args.host):
        def unit_state(_left: float, host: LabHost = host) -> dict[str, str]:
            return _unit_state(lab, host, args.unit, ctx)

        polled = poll_until(unit_state, lambda unit: unit.get("ActiveState") == "active",
                            timeout=ctx.remaining(0), interval=POLL_SECONDS)
        state = polled.value
        ok = ok and polled.ok
        lines.append(f"{host.name}: {args.unit} {state.get('ActiveState', 'unknown')}/"
                     f"{state.get('SubState', '?')} after {polled.seconds:.1f} s, "
                     f"main pid {state.get('MainPID')}, restarts {state.get('NRestarts')}")
    return ActionResult(ok, "\n".join(lines))


def is_active(ctx: ActionContext, args: UnitArgs) -> ActionResult:
    """Whether the unit is active on the host(s) right now."""
    lab = _lab(ctx)
    lines, ok = [], True
    for host in _hosts(lab, args.host):
        state = _unit_state(lab, host, args.unit, ctx)
        active = state.get("ActiveState") == "active"
        ok = ok and active
        lines.append(f"{host.name}: {args.unit} {state.get('ActiveState', 'unknown')} "
                     f"(load {state.get('LoadState', '?')})")
    return ActionResult(ok, "\n".join(lines))


LAB_ACTIONS: tuple[tuple[str, str, type, float, Any], ...] = (
    ("lab.isolate_host", "cut a lab host off the network (its veth down)", HostArgs, 30,
     isolate_host),
    ("lab.reconnect_host", "put a lab host back on the network and wait for SSH", HostArgs, 90,
     reconnect_host),
    ("lab.stop_host", "power a lab host off cleanly (its disk kept)", HostArgs, 90,
     stop_host),
    ("lab.start_host", "boot a stopped lab host again and wait until it is up", HostArgs, 150,
     start_host),
    ("service.kill", "kill a systemd unit with a signal (SIGKILL by default)", KillArgs, 30,
     kill_service),
    ("service.wait_active", "wait until a systemd unit is active again", UnitArgs, 120,
     wait_active),
    ("service.is_active", "check that a systemd unit is active", UnitArgs, 30, is_active),
)


def register_lab_actions(registry: ActionRegistry, *, lab_site: bool) -> None:
    """Register the lab actions: real on a lab site, unavailable elsewhere."""
    for name, summary, args, timeout, func in LAB_ACTIONS:
        if lab_site:
            registry.action(name, summary=summary, args=args, timeout=timeout)(func)
        else:
            registry.unavailable(name, summary=summary, args=args, timeout=timeout,
                                 needs="a lab site ('planb lab up'): drills reach production "
                                 "hosts only through the stack's own checks for now")
