"""The default action registry of a site: what scenarios and failover steps can name.

Real now: lab network isolation and service kill/wait/check (lab sites), sync
freeze/unfreeze, the agents' instructions, the failover state check, and
``fallback.switch`` once ``playbooks/failover.yml`` exists; ``failover.activate`` and
``failover.deactivate`` become real as soon as every failover step is. Registered but
not available yet (scenarios naming them load, runs refuse to start): the ones in
:data:`PENDING`, each saying what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from planb.config import SiteConfig
from planb.drills.actions import ActionContext, ActionRegistry, ActionResult, NoArgs
from planb.drills.lab_actions import register_lab_actions
from planb.failover.actions import ChecksArgs, register_failover_actions
from planb.failover.machine import Failover
from planb.failover.state import StateFile
from planb.reports.store import JournalStore


@dataclass(frozen=True)
class ProbeArgs:
    """``probes.run``: how many agents to sample, with which seed (None: a new recorded one)."""

    sample: int = 20
    seed: int | None = None
    announcement: bool = True

    def __post_init__(self) -> None:
        if self.sample <= 0:
            raise ValueError("sample must be positive")


@dataclass(frozen=True)
class ActivateArgs:
    """``failover.activate`` inside a drill."""

    reason: str = "drill"


#: name -> (summary, argument dataclass, default timeout, what it needs)
PENDING: dict[str, tuple[str, type, float, str]] = {
    "verify.checks": ("the 'planb verify' checks that matter (services, TLS, LDAP, Matrix)",
                      ChecksArgs, 120, "planb.verify (the testinfra checks shipped in the "
                      "package)"),
    "probes.run": ("a sample of agents bind to LDAP, log in to Matrix, send, receive and see "
                   "the announcement", ProbeArgs, 120, "planb.verify probes (ldap3 bind, "
                   "matrix-nio login/send/receive) on a deployed and synced fallback"),
    "messaging.announce": ("post the activation announcement to the announcement room",
                           NoArgs, 60, "planb.messaging (Synapse admin API client) and the "
                           "announcement room made by the sync"),
}


def default_registry(site: SiteConfig, store: JournalStore) -> ActionRegistry:
    """Every action a scenario or a failover step may name, for ``site``."""
    registry = ActionRegistry()
    register_lab_actions(registry, lab_site=site.lab is not None)
    register_failover_actions(registry)
    for name, (summary, args, timeout, needs) in PENDING.items():
        registry.unavailable(name, summary=summary, args=args, timeout=timeout, needs=needs)
    _register_drill_failover(registry, site, store)
    return registry


def _register_drill_failover(registry: ActionRegistry, site: SiteConfig,
                             store: JournalStore) -> None:
    """failover.* actions for drills: the real failover machine, with this registry."""
    machine = Failover(site, registry, store)

    def is_standby(ctx: ActionContext, args: NoArgs) -> ActionResult:
        state = StateFile(ctx.site.state_dir).load()
        return ActionResult(state.mode == "standby", f"fallback is {state.mode}"
                            + (f" since {state.since} ({state.reason})" if state.since else ""))

    def activate(ctx: ActionContext, args: ActivateArgs) -> ActionResult:
        done = machine.activate(f"{args.reason} ({ctx.purpose})", operator=ctx.operator,
                                drill=True)
        return ActionResult(done.changed, done.message + "".join(
            f"\n{s.name}: {s.status}" for s in done.steps))

    def deactivate(ctx: ActionContext, args: NoArgs) -> ActionResult:
        done = machine.deactivate(f"end of drill ({ctx.purpose})", operator=ctx.operator)
        return ActionResult(True, done.message)

    registry.action("failover.is_standby", summary="check the fallback is in standby",
                    timeout=10)(is_standby)
    for event, func, args, summary in (
            ("activate", activate, ActivateArgs, "activate the fallback (as a drill)"),
            ("deactivate", deactivate, NoArgs, "put the fallback back in standby")):
        missing = machine.missing(event)  # type: ignore[arg-type]
        if missing:
            registry.unavailable(f"failover.{event}", summary=summary, args=args, timeout=900,
                                 needs="its failover steps: " + "; ".join(missing))
        else:
            registry.action(f"failover.{event}", summary=summary, args=args,
                            timeout=900)(func)  # type: ignore[arg-type]
