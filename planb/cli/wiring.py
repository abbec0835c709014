"""The composition root: the action registry and journal store a site's commands run with.

Drills and failover never import each other; this module wires them together. The
registry holds every action a scenario or a failover step may name: lab network
isolation and service kill/wait/check (:mod:`planb.actions.lab`, lab sites only), sync
freeze/unfreeze, the agents' instructions and ``fallback.switch``
(:mod:`planb.actions.failover_steps`), ``verify.checks`` and ``probes.run``
(:mod:`planb.actions.stack`), ``messaging.announce`` (:mod:`planb.actions.announce`),
``lab.destroy_host`` / ``lab.rebuild_host`` (:mod:`planb.actions.lab_rebuild`, lab sites
only), ``deploy.run``, ``backup.now`` and ``backup.restore``
(:mod:`planb.actions.backup_steps`), ``traffic.start`` / ``traffic.wait`` /
``traffic.stop`` (:mod:`planb.actions.traffic`),
``breakglass.*`` (the fallback host's own switch over SSH, :mod:`planb.actions.breakglass`),
``controller.restore`` (:mod:`planb.actions.controller`), ``failover.promote`` and
``ha.serving`` (the hot standby, :mod:`planb.actions.promote`), and ``failover.activate`` /
``failover.deactivate``, which run the real failover machine
(:class:`planb.failover.machine.Failover`) inside a drill.
"""

from __future__ import annotations

from dataclasses import dataclass

from planb.actions.announce import register_announce_action
from planb.actions.backup_steps import register_backup_actions
from planb.actions.breakglass import register_breakglass_actions
from planb.actions.controller import register_controller_actions
from planb.actions.failover_steps import SwitchArgs, register_failover_actions
from planb.actions.lab import register_lab_actions
from planb.actions.lab_rebuild import register_rebuild_actions
from planb.actions.pages import register_pages_action
from planb.actions.promote import register_promote_actions
from planb.actions.stack import ProbeArgs, register_stack_actions
from planb.actions.traffic import register_traffic_actions
from planb.config import SiteConfig
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult, NoArgs
from planb.errors import UsageError
from planb.failover.machine import Failover
from planb.mode import StateFile
from planb.reports.keys import KeyPaths, load_signer
from planb.reports.store import JournalStore


@dataclass(frozen=True)
class ActivateArgs:
    """``failover.activate`` inside a drill."""

    reason: str = "drill"


def default_registry(site: SiteConfig, store: JournalStore) -> ActionRegistry:
    """Every action a scenario or a failover step may name, for ``site``."""
    registry = ActionRegistry()
    register_lab_actions(registry, lab_site=site.lab is not None)
    register_rebuild_actions(registry, lab_site=site.lab is not None)
    register_backup_actions(registry)
    register_traffic_actions(registry)
    register_failover_actions(registry)
    register_stack_actions(registry)
    register_pages_action(registry)
    register_announce_action(registry)
    register_breakglass_actions(registry)
    register_controller_actions(registry)
    register_promote_actions(registry, store)
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

    #: Runs (drill ids) that asked for an activation: their restore makes sure of standby.
    attempted: set[str | None] = set()

    def activate(ctx: ActionContext, args: ActivateArgs) -> ActionResult:
        attempted.add(ctx.run_id)
        done = machine.activate(f"{args.reason} ({ctx.purpose})", operator=ctx.operator,
                                drill=True)
        lines = [done.message]
        for step in done.steps:
            detail = step.error or (step.output.strip().splitlines() or [""])[-1]
            lines.append(f"{step.name}: {step.status}"
                         + (f" - {detail[:300]}" if step.name != "instructions" else ""))
        lines += [f"warning: {w}" for w in done.warnings]
        return ActionResult(done.changed, "\n".join(lines))

    def deactivate(ctx: ActionContext, args: NoArgs) -> ActionResult:
        done = machine.deactivate(f"end of drill ({ctx.purpose})", operator=ctx.operator)
        if done.changed or ctx.run_id not in attempted:
            return ActionResult(True, done.message)
        # An activation interrupted inside the switch leaves the state file in standby
        # but maybe not Synapse: put the switch itself back (idempotent).
        switched = registry.get("fallback.switch").call(ctx, SwitchArgs("standby"))
        return ActionResult(switched.ok, f"{done.message}\nswitch re-applied: "
                            f"{switched.output}")

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


def site_store(site: SiteConfig, *, signing: bool = True) -> JournalStore:
    """The site's journal store; with ``signing``, its signer (UsageError if no key yet).

    The key's passphrase, if any, comes from ``PLANB_KEY_PASSPHRASE``.
    """
    if not signing:
        return JournalStore.for_state_dir(site.state_dir)
    paths = KeyPaths.for_state_dir(site.state_dir)
    if not paths.private.exists():
        raise UsageError(f"no signing key at {paths.private}: drills and failovers sign "
                         "their journals", hint="create it with 'planb keys init'")
    return JournalStore.for_state_dir(site.state_dir, load_signer(paths))


__all__ = ["ActivateArgs", "ProbeArgs", "default_registry", "site_store"]
