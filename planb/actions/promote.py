"""The hot standby promoted inside a drill: ``failover.promote``; who serves: ``ha.serving``.

``failover.promote {force, reason}`` runs :class:`planb.ha.promote.Promoter` (the same
checks, steps, audit lines and signed journal as ``planb failover promote``), marked
as a drill; its duration goes to the drill's journal as the measure
``promote_seconds``. ``ha.serving`` checks that the promoted host holds
``fallback.standby.service_address`` and no other fallback host does (a returning old
host must not take it back: keepalived's nopreempt).
"""

from __future__ import annotations

from dataclasses import dataclass

from planb.engine.actions import ActionContext, ActionRegistry, ActionResult, NoArgs
from planb.ha.promote import Promoter, address_holders, promoted_already
from planb.inventory import load_hosts
from planb.reports.store import JournalStore


@dataclass(frozen=True)
class PromoteArgs:
    """``failover.promote``: override the refusals (recorded), and why."""

    force: bool = False
    reason: str = "drill"


def register_promote_actions(registry: ActionRegistry, store: JournalStore) -> None:
    """``failover.promote`` (journaled in ``store``) and ``ha.serving``."""

    def promote(ctx: ActionContext, args: PromoteArgs) -> ActionResult:
        done = Promoter(ctx.site, store).promote(f"{args.reason} ({ctx.purpose})",
                                                 operator=ctx.operator, force=args.force,
                                                 drill=True)
        lines = [done.message, *(f"forced: {f}" for f in done.forced)]
        lines += [f"{s.name}: {s.status} in {s.duration_seconds:.1f} s - "
                  + (s.error or (s.output.strip().splitlines() or [""])[-1])[:300]
                  for s in done.steps]
        if done.journal:
            lines.append(f"journal {done.journal.path.name}")
        return ActionResult(True, "\n".join(lines),
                            measures={"promote_seconds": round(done.duration_seconds, 3)}
                            if done.changed else {})

    def serving(ctx: ActionContext, args: NoArgs) -> ActionResult:
        hosts = load_hosts(ctx.site)
        promoted = promoted_already(hosts)
        address = ctx.site.fallback.standby.service_address
        if promoted is None:
            return ActionResult(False, "no promotion is recorded (inventory "
                                "planb-promotion.yml)")
        if not address:
            return ActionResult(True, f"{promoted.name} is promoted; the site has no "
                                "service address (fallback.standby.service_address)")
        holders = address_holders(ctx.site, address, hosts)
        lines = [f"{name}: " + {True: f"holds {address}", False: "does not hold it",
                                None: "unreachable"}[held] for name, held in holders.items()]
        ok = holders.get(promoted.name) is True and not any(
            held for name, held in holders.items() if name != promoted.name)
        return ActionResult(ok, "\n".join(lines))

    registry.action("failover.promote", summary="promote the hot standby in place of the "
                    "lost fallback host (as a drill)", args=PromoteArgs, timeout=600)(promote)
    registry.action("ha.serving", summary="the promoted host, and only it, holds the "
                    "service address", timeout=120)(serving)
