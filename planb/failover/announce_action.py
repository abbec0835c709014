"""``messaging.announce``: post the activation announcement, through planb.messaging.

planb.messaging (being built alongside) provides ``announce(site, text) -> report``.
This module finds it at run time: while it does not exist the action is registered
as unavailable, saying what it needs, and the failover records the announcement step
as *unavailable* instead of pretending it was sent. The text is the same rendered
template that ``failover activate`` prints for administrators.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from planb.drills.actions import ActionContext, ActionRegistry, ActionResult, NoArgs
from planb.errors import PlanbError
from planb.failover.announcement import AnnouncementContext, local_time_fr, render_announcement

log = logging.getLogger(__name__)

#: Where planb.messaging's ``announce(site, text)`` may live (first found wins).
ANNOUNCE_MODULES = ("planb.messaging.announce", "planb.messaging.announcement",
                    "planb.messaging")
NEEDS = ("planb.messaging.announce: announce(site, text) posting to the announcement room "
         "every agent is in (being built)")


def announcement_module() -> tuple[ModuleType | None, str | None]:
    """The module providing ``announce`` (and None), or (None, what is missing)."""
    for name in ANNOUNCE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise  # the module exists but one of its own imports is missing
            continue
        if callable(getattr(module, "announce", None)):
            return module, None
    return None, NEEDS


def _describe(report: Any) -> tuple[bool, str]:
    """(ok, text) from whatever report announce returned."""
    ok = getattr(report, "ok", True)
    ok = ok() if callable(ok) else bool(ok)
    summary = getattr(report, "summary", None)
    if callable(summary):
        text = str(summary())
    elif isinstance(summary, str):
        text = summary
    else:
        text = str(report)
    return ok, text


def announce(ctx: ActionContext, args: NoArgs) -> ActionResult:
    """Render the announcement for this incident and have planb.messaging post it."""
    module, needs = announcement_module()
    if module is None:
        raise PlanbError(f"the announcement cannot be posted: needs {needs}")
    incident = ctx.incident
    if incident is None:
        raise PlanbError("messaging.announce only runs inside a failover activation")
    text = render_announcement(ctx.site, AnnouncementContext(
        activated_at=local_time_fr(incident.started_at, ctx.site.deploy.timezone),
        incident_id=incident.id, reason=incident.reason, drill=incident.drill))
    ok, summary = _describe(module.announce(ctx.site, text))
    return ActionResult(ok, summary)


def register_announce_action(registry: ActionRegistry) -> None:
    """Real when planb.messaging provides ``announce``, else unavailable (saying so)."""
    summary = "post the activation announcement to the announcement room"
    module, needs = announcement_module()
    if module is None:
        registry.unavailable("messaging.announce", summary=summary, needs=needs or NEEDS,
                             timeout=120)
    else:
        registry.action("messaging.announce", summary=summary, timeout=120)(announce)
