"""The checks that stop a sync from doing damage in one run, by accident or by attack.

A primary directory that is broken, or compromised, can hand the sync a plan that
locks everyone out (mass deactivations), takes over accounts (mass password-hash
changes: the fallback would then let the attacker's passwords in) or brings back
leavers (mass reactivations). Each is limited to a share of the agents active in
the fallback (planb.yml ``safety``); above it, apply refuses unless ``--force``.
"""

from __future__ import annotations

from dataclasses import dataclass

from planb.config import SafetyConfig
from planb.directory.plan import Plan
from planb.errors import UsageError


class UnsafePlan(UsageError):
    """A plan that apply refuses; the message says why and how to proceed."""


@dataclass(frozen=True)
class _Limit:
    what: str
    count: int
    key: str
    percent: float


def _counts(plan: Plan, *, max_deactivate_percent: float, max_password_change_percent: float,
            max_reactivate_percent: float) -> list[_Limit]:
    reactivated = {c.id for c in (*plan.ldap_reactivations, *plan.matrix_reactivations)}
    return [
        _Limit("deactivates", len(plan.deactivated_ids()), "max_deactivate_percent",
               max_deactivate_percent),
        _Limit("changes the password hash of",
               sum(1 for u in plan.ldap_updates if u.password_changed),
               "max_password_change_percent", max_password_change_percent),
        _Limit("reactivates", len(reactivated), "max_reactivate_percent",
               max_reactivate_percent),
    ]


def check_plan_safety(plan: Plan, *, max_deactivate_percent: float = 5.0,
                      max_password_change_percent: float = 10.0,
                      max_reactivate_percent: float = 5.0, force: bool = False) -> None:
    """Raise :class:`UnsafePlan` if ``plan`` must not be applied; return quietly otherwise.

    * an empty source always refuses (``--force`` does not override it): a primary
      that answers with nobody is far more likely broken or compromised than empty;
    * deactivations (LDAP or Matrix, counted once per agent), password-hash changes
      and reactivations (LDAP or Matrix, once per agent), each above its share of
      the agents active in the fallback, refuse unless ``force`` (every limit
      exceeded is named in the one message).
    """
    if plan.source_agents == 0:
        raise UnsafePlan(
            f"the source {plan.source} gave no agents; refusing to plan deactivations "
            "for everyone (nothing was changed)",
            hint="check that the primary directory is reachable and the search base, filter "
                 "or CSV export are right; this refusal cannot be forced",
        )
    if force:
        return
    base = plan.active_before
    over = []
    for limit in _counts(plan, max_deactivate_percent=max_deactivate_percent,
                         max_password_change_percent=max_password_change_percent,
                         max_reactivate_percent=max_reactivate_percent):
        if limit.count == 0:
            continue
        percent = 100.0 * limit.count / base if base else 100.0
        if percent > limit.percent:
            over.append(f"{limit.what} {limit.count} of {base} active agents ({percent:.1f} %), "
                        f"more than safety.{limit.key} ({limit.percent:g} %)")
    if over:
        raise UnsafePlan(
            f"the plan {'; and '.join(over)}; nothing was changed",
            hint="read the plan (its deactivations, password changes, reactivations and the "
                 "source's rejections); a primary that is broken or compromised gives such "
                 "plans; if they are right, run again with --force",
        )


def check_site_safety(plan: Plan, limits: SafetyConfig, *, force: bool = False) -> None:
    """:func:`check_plan_safety` with a site's limits (planb.yml ``safety``)."""
    check_plan_safety(plan, force=force, max_deactivate_percent=limits.max_deactivate_percent,
                      max_password_change_percent=limits.max_password_change_percent,
                      max_reactivate_percent=limits.max_reactivate_percent)
