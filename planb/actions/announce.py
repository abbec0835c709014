"""``messaging.announce``: post the activation announcement to every agent.

The text is :func:`planb.messaging.announcement.incident_announcement`, the same one
``failover activate`` prints for administrators; :func:`planb.messaging.announce.announce`
posts it to the announcement room every active agent is in.
"""

from __future__ import annotations

import logging

from planb.engine.actions import ActionContext, ActionRegistry, ActionResult, NoArgs
from planb.errors import PlanbError
from planb.messaging.announce import announce as post_announcement
from planb.messaging.announcement import incident_announcement

log = logging.getLogger(__name__)


def announce(ctx: ActionContext, args: NoArgs) -> ActionResult:
    """Render the announcement for this incident and post it."""
    incident = ctx.incident
    if incident is None:
        raise PlanbError("messaging.announce only runs inside a failover activation")
    report = post_announcement(ctx.site, incident_announcement(ctx.site, incident))
    return ActionResult(report.ok, report.summary())


def register_announce_action(registry: ActionRegistry) -> None:
    """Register ``messaging.announce``."""
    registry.action("messaging.announce", summary="post the activation announcement to the "
                    "announcement room", timeout=120)(announce)
