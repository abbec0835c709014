"""A lab host lost and stood up again from nothing: ``lab.destroy_host``, ``lab.rebuild_host``;
or its power cut: ``lab.power_off``.

- ``lab.power_off``: the host's container is killed at once (no service stops
  cleanly), its disk kept; the loss time is marked as for ``lab.destroy_host``
  (the ``fallback-host-down`` drill: the standby is promoted in its place).

- ``lab.destroy_host``: the host's container is killed at once and its disk (the
  overlay's writable layer) removed, as a machine that dies and is not coming back
  (:meth:`planb.lab.lab.Lab.destroy_host`). Its loss time is marked for the run
  (:mod:`planb.actions.marks`): the RPO is counted up to it.
- ``lab.rebuild_host``: a new host from the lab image with the same name and address
  and NEW SSH host keys; the site's known_hosts entry is replaced and the step output
  says so, with both fingerprints (:meth:`planb.lab.lab.Lab.rebuild_host`). On a real
  site the same is done by hand with ``planb hosts trust --replace HOST`` after checking
  the new fingerprint on the host's console. Nothing is deployed: ``deploy.run`` next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from planb.actions import marks
from planb.actions.lab import HostArgs, _hosts, _lab
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult
from planb.hostkeys import fingerprint


@dataclass(frozen=True)
class RebuildArgs:
    """``lab.rebuild_host``: which host; ``if_lost``: a host that still has its disk is
    left as it is (ok) instead of refused (for a drill's restore phase)."""

    host: str
    if_lost: bool = False

    def __post_init__(self) -> None:
        HostArgs(self.host)


def destroy_host(ctx: ActionContext, args: HostArgs) -> ActionResult:
    """Kill the host(s) at once and remove their disks; mark the loss time."""
    lab = _lab(ctx)
    lines = []
    # The loss is the moment the first host is killed (SIGKILL comes first; removing
    # its disk after may take a while): the RPO counts up to it.
    lost = marks.mark(ctx.run_id, marks.HOST_LOST)
    for host in _hosts(lab, args.host):
        started = time.monotonic()
        was_running = lab.destroy_host(host.name)
        lines.append(f"{host.name} ({host.address}): "
                     + ("killed" if was_running else "was not running")
                     + f", disk removed in {time.monotonic() - started:.1f} s "
                     f"(lost at {time.strftime('%H:%M:%S', time.gmtime(lost))} UTC)")
    return ActionResult(True, "\n".join(lines))


def power_off(ctx: ActionContext, args: HostArgs) -> ActionResult:
    """Cut the host's power: its container killed at once, disk kept; mark the loss."""
    lab = _lab(ctx)
    lines = []
    lost = marks.mark(ctx.run_id, marks.HOST_LOST)
    for host in _hosts(lab, args.host):
        was_running = lab.stop_host(host.name, abrupt=True)
        lines.append(f"{host.name} ({host.address}): "
                     + ("power cut, disk kept" if was_running else "was not running")
                     + f" (lost at {time.strftime('%H:%M:%S', time.gmtime(lost))} UTC)")
    return ActionResult(True, "\n".join(lines))


def rebuild_host(ctx: ActionContext, args: RebuildArgs) -> ActionResult:
    """A new host in place of each lost one: same name and address, new SSH host keys."""
    lab = _lab(ctx)
    lines = []
    for host in _hosts(lab, args.host):
        paths = lab.host_paths(host.name)
        if args.if_lost and paths.upper.is_dir():
            lines.append(f"{host.name}: still has its disk, not rebuilt")
            continue
        started = time.monotonic()
        done = lab.rebuild_host(host.name, timeout=max(10.0, ctx.remaining() - 5))
        old = ", ".join(fingerprint(k) for k in done.old_keys if k[0] == "ssh-ed25519")
        new = ", ".join(fingerprint(k) for k in done.new_keys if k[0] == "ssh-ed25519")
        lines.append(f"{host.name} ({host.address}): new host up in "
                     f"{time.monotonic() - started:.1f} s (system {done.system})")
        lines.append(f"{host.name}: known_hosts entry {done.known_hosts}: ed25519 "
                     f"{old or 'none'} -> {new} (a real site: 'planb hosts trust --replace "
                     f"{host.name}' after checking the fingerprint on its console)")
    return ActionResult(True, "\n".join(lines))


def register_rebuild_actions(registry: ActionRegistry, *, lab_site: bool) -> None:
    """``lab.destroy_host`` and ``lab.rebuild_host``: real on a lab site only."""
    table: tuple[tuple[str, str, type, float, object], ...] = (
        ("lab.power_off", "cut a lab host's power (killed at once, disk kept: the "
         "fallback-host-down drill)", HostArgs, 60, power_off),
        ("lab.destroy_host", "kill a lab host and remove its disk (a lost machine)",
         HostArgs, 60, destroy_host),
        ("lab.rebuild_host", "a new lab host in place of a lost one: same name and "
         "address, new SSH host keys (known_hosts replaced)", RebuildArgs, 180,
         rebuild_host),
    )
    for name, summary, args, timeout, func in table:
        if lab_site:
            registry.action(name, summary=summary, args=args, timeout=timeout)(func)  # type: ignore[arg-type]
        else:
            registry.unavailable(name, summary=summary, args=args, timeout=timeout,
                                 needs="a lab site ('planb lab up'): a production host is "
                                 "lost and rebuilt by people, not by planb")
