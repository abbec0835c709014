"""Check: the hot standby is in step with the fallback (issue 14): PostgreSQL streaming
with its replay lag within the site's RPO (``objectives.rpo_seconds``), slapd's
contextCSN equal on both, Synapse's files copied recently. Runs on each host of the
inventory group fallback_standby (a site without one has no such check)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from planb.ha.replication import replication_state
from planb.verify.model import CheckFailed

if TYPE_CHECKING:
    from planb.inventory import InventoryHost
    from planb.verify.registry import CheckContext


def standby_replication(ctx: CheckContext, host: InventoryHost) -> str:
    """The standby's lag and parts in step; CheckFailed naming the lag and what is not."""
    limit = ctx.site.objectives.rpo_seconds
    state = replication_state(ctx.site, only=host.name)
    standby = state.standbys[0]
    problems = standby.problems(limit)
    if problems:
        raise CheckFailed(f"{'; '.join(problems)} ({standby.summary()})")
    return standby.summary()
