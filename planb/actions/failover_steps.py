"""The actions failover steps run: freeze/unfreeze the sync, switch the fallback, instructions.

``fallback.switch`` runs ``playbooks/failover.yml`` with ``planb_failover_mode``
through :mod:`planb.provisioning`. ``verify.checks`` and ``probes.run`` live in
:mod:`planb.actions.stack`, ``messaging.announce`` in :mod:`planb.actions.announce`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import planb
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult, NoArgs
from planb.errors import PlanbError, UsageError
from planb.hostkeys import known_hosts_path
from planb.inventory import check_inventory, playbook_limit
from planb.messaging.announcement import incident_announcement
from planb.mode import freeze_flag, freeze_sync, unfreeze_sync
from planb.provisioning.deploy import b64
from planb.provisioning.results import failure_message
from planb.provisioning.runner import new_run_dir, run_playbook
from planb.reports.store import utc_now
from planb.verify.registry import select_checks

log = logging.getLogger(__name__)

FAILOVER_PLAYBOOK = planb.PLAYBOOKS_DIR / "failover.yml"


@dataclass(frozen=True)
class SwitchArgs:
    """``fallback.switch``: which mode to put the fallback in."""

    mode: Literal["active", "standby"]


@dataclass(frozen=True)
class ChecksArgs:
    """``verify.checks``: which ``planb verify`` checks (empty: those that matter for failover).

    ``wait_seconds``: keep re-running the checks (every 2 s) until they pass or this
    long has gone by (a service that systemd is restarting gets its chance).
    ``heal``: start a stopped or failed unit once before refusing (the failover
    preflight; :mod:`planb.actions.heal`), and say so in the output.
    """

    checks: list[str] = field(default_factory=list)
    wait_seconds: float = 0.0
    heal: bool = False

    def __post_init__(self) -> None:
        if self.wait_seconds < 0:
            raise ValueError("wait_seconds must not be negative")
        try:
            select_checks(self.checks)
        except UsageError as exc:
            raise ValueError(f"{exc.message} ({exc.hint})") from None


def _why(ctx: ActionContext) -> str:
    return ctx.incident.reason if ctx.incident else ctx.purpose


def sync_freeze(ctx: ActionContext, args: NoArgs) -> ActionResult:
    """Create the flag the account sync honours (nothing is applied while it exists)."""
    created = freeze_sync(ctx.site.state_dir, by=ctx.operator, why=_why(ctx), at=utc_now())
    flag = freeze_flag(ctx.site.state_dir)
    return ActionResult(True, f"sync frozen ({flag})" if created
                        else f"sync was already frozen ({flag})")


def sync_unfreeze(ctx: ActionContext, args: NoArgs) -> ActionResult:
    """Remove the sync freeze flag."""
    removed = unfreeze_sync(ctx.site.state_dir)
    return ActionResult(True, "sync unfrozen" if removed else "sync was not frozen")


def instructions(ctx: ActionContext, args: NoArgs) -> ActionResult:
    """What to tell agents: the announcement text, as the administrator prints it."""
    incident = ctx.incident
    if incident is None:
        raise PlanbError("failover.instructions only runs inside a failover activation")
    return ActionResult(True, incident_announcement(ctx.site, incident))


def switch(ctx: ActionContext, args: SwitchArgs) -> ActionResult:
    """Run playbooks/failover.yml with planb_failover_mode=<mode> on the site's inventory."""
    site = ctx.site
    result = run_playbook(
        FAILOVER_PLAYBOOK, check_inventory(site),
        run_dir=new_run_dir(site.state_dir, FAILOVER_PLAYBOOK),
        limit=playbook_limit(site),  # a promoted standby's lost host: left out
        extravars={"planb_action": "failover", "planb_site": site.site,
                   "planb_state_dir": str(site.state_dir), "planb_failover_mode": args.mode,
                   # Public text (the welcome page shows it while active), never a secret;
                   # base64 so that Ansible never reads the site's text as a template.
                   "planb_failover_public_message_b64":
                       b64(ctx.incident.public_message if ctx.incident else "")},
        timeout_s=int(ctx.remaining(10)), known_hosts=known_hosts_path(site),
    )
    if result.status == "canceled":
        raise KeyboardInterrupt
    if result.ok:
        return ActionResult(True, f"fallback switched to {args.mode} in {result.duration_s:.1f} s"
                            f" ({result.changed_total} changed; {result.artifacts_dir})")
    return ActionResult(False, failure_message(result))


def register_failover_actions(registry: ActionRegistry) -> None:
    """Register the failover step actions that planb can run here."""
    registry.action("sync.freeze", summary="freeze the account sync (flag file)",
                    timeout=10)(sync_freeze)
    registry.action("sync.unfreeze", summary="unfreeze the account sync", timeout=10)(
        sync_unfreeze)
    registry.action("failover.instructions", summary="render what to tell agents "
                    "(the activation announcement)", timeout=10)(instructions)
    registry.action("fallback.switch", summary="switch the fallback to active or standby "
                    "(playbooks/failover.yml)", args=SwitchArgs, timeout=600)(switch)
