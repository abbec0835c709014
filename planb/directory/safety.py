"""The checks that stop a sync from turning into a mass deactivation by accident."""

from __future__ import annotations

from planb.directory.plan import Plan
from planb.errors import UsageError


class UnsafePlan(UsageError):
    """A plan that apply refuses; the message says why and how to proceed."""


def check_plan_safety(plan: Plan, *, max_deactivate_percent: float = 5.0,
                      force: bool = False) -> None:
    """Raise :class:`UnsafePlan` if ``plan`` must not be applied; return quietly otherwise.

    * an empty source always refuses (``--force`` does not override it): a primary
      that answers with nobody is far more likely broken or compromised than empty;
    * deactivations (LDAP or Matrix, counted once per agent) above
      ``max_deactivate_percent`` of the agents active in the fallback refuse unless
      ``force``.
    """
    if plan.source_agents == 0:
        raise UnsafePlan(
            f"the source {plan.source} gave no agents; refusing to plan deactivations "
            "for everyone (nothing was changed)",
            hint="check that the primary directory is reachable and the search base, filter "
                 "or CSV export are right; this refusal cannot be forced",
        )
    count = len(plan.deactivated_ids())
    if count == 0 or force:
        return
    base = plan.active_before
    percent = 100.0 * count / base if base else 100.0
    if percent > max_deactivate_percent:
        raise UnsafePlan(
            f"the plan deactivates {count} of {base} active agents ({percent:.1f} %), more "
            f"than safety.max_deactivate_percent ({max_deactivate_percent:g} %); "
            "nothing was changed",
            hint="read the plan's deactivations (and the source's rejections); if they are "
                 "right, run again with --force",
        )
