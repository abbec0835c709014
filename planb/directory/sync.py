"""The account sync, end to end: read the source, read the targets, plan, check, apply,
then read the targets again and confirm nothing is left to do.

Targets: the fallback LDAP (always) and Matrix (a :class:`MatrixTarget`, which the
caller passes in: ``planb.messaging.sync_target.target_for``, wired by the CLI;
without one the plan holds no Matrix items and says so).
The plan is recomputed from what the targets really hold on every run, which is
what makes an interrupted apply converge on the next one. ``apply`` given a plan
file refuses when a fresh plan differs from it (the directories changed since it
was reviewed). Apply holds the site's sync lock (one apply at a time,
:mod:`planb.directory.sync_lock`) and, reading the primary, checks the failover
freeze flag again right before it writes: a failover activated while the plan was
being read or confirmed stops it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from planb.config import SiteConfig
from planb.directory.enrolment import expiry, hash_issues, site_key
from planb.directory.fallback_apply import (
    DEFAULT_WORKERS,
    ApplyReport,
    FallbackApplier,
    Progress,
)
from planb.directory.fallback_endpoint import fallback_endpoint
from planb.directory.fallback_ldap import Layout, read_state
from planb.directory.ldap_conn import DirectoryUnreachable, LdapEndpoint
from planb.directory.ldap_source import read_primary
from planb.directory.model import SourceResult
from planb.directory.plan import Plan, PlanOptions, compute_plan
from planb.directory.plan_json import plan_to_dict
from planb.directory.safety import check_site_safety
from planb.directory.snapshot import read_snapshot
from planb.directory.sync_lock import sync_lock
from planb.directory.targets import FallbackState, MatrixState
from planb.errors import UsageError
from planb.mode import sync_frozen

log = logging.getLogger(__name__)

#: Plan attributes that belong to the Matrix target.
MATRIX_ITEMS = ("matrix_creates", "matrix_deactivations", "matrix_reactivations",
                "display_names", "room_creates", "room_changes")
LDAP_ITEMS = ("ldap_adds", "ldap_updates", "ldap_deactivations", "ldap_reactivations", "moves",
              "code_issues", "code_revocations")
MATRIX_NOT_CONFIGURED = "Matrix target not configured: the plan holds LDAP items only"
WRITE_FROZEN = "write what it read from the primary directory"


class MatrixTarget(Protocol):
    """What ``planb.messaging`` provides so the same plan also drives Synapse.

    ``read_state`` returns users and managed rooms' members (see
    :mod:`planb.directory.targets`); ``apply`` performs the Matrix sections of the
    plan (after the LDAP entries are written: localparts live there first) and
    must be resumable: a re-run after an interruption plans only what is left.
    """

    name: str

    def plan_options(self) -> PlanOptions: ...

    def read_state(self) -> MatrixState: ...

    def apply(self, plan: Plan, progress: Progress) -> ApplyReport: ...


@dataclass(frozen=True)
class SyncPlan:
    """A computed plan and what it was computed from."""

    plan: Plan
    source: SourceResult
    fallback: FallbackState
    matrix: MatrixState | None
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def matrix_configured(self) -> bool:
        return self.matrix is not None


@dataclass(frozen=True)
class SyncResult:
    """An apply: the plan applied, each target's report, and the re-read plan."""

    applied: SyncPlan
    reports: tuple[ApplyReport, ...]
    remaining: Plan
    seconds: float

    def ldap_converged(self) -> bool:
        return not any(getattr(self.remaining, name) for name in LDAP_ITEMS)

    def converged(self) -> bool:
        return self.remaining.is_empty()


def without_matrix(plan: Plan) -> Plan:
    """``plan`` with its Matrix sections emptied (no Matrix target to apply them)."""
    empty: dict[str, Any] = {name: () for name in MATRIX_ITEMS}
    return dataclasses.replace(plan, **empty)


def comparable(plan: Plan) -> dict[str, object]:
    """The parts of a plan's JSON form that must match for a reviewed plan to apply."""
    data = plan_to_dict(plan)
    data.pop("meta", None)
    data["source"] = {k: v for k, v in data["source"].items() if k != "name"}
    return data


class Sync:
    """One site's sync: its source, fallback directory and (optional) Matrix target."""

    def __init__(self, site: SiteConfig, *, matrix: MatrixTarget | None = None,
                 fallback: LdapEndpoint | None = None,
                 workers: int = DEFAULT_WORKERS, adopt: bool = False) -> None:
        self.site, self.matrix, self.workers, self.adopt = site, matrix, workers, adopt
        self._fallback = fallback
        self.layout = Layout(site.fallback.ldap_suffix)

    @property
    def fallback(self) -> LdapEndpoint:
        if self._fallback is None:
            self._fallback = fallback_endpoint(self.site)
        return self._fallback

    def refuse_if_frozen(self, doing: str = "read the primary directory",
                         done: str = "nothing was changed") -> None:
        """UsageError while failover froze the sync (the primary may be compromised)."""
        if sync_frozen(self.site.state_dir):
            raise UsageError(
                f"failover is active: the sync will not {doing} (it may be the compromised "
                f"system); {done}",
                hint="sync from a snapshot taken before the incident: --from-snapshot FILE "
                     "(written by 'planb sync plan --snapshot-out FILE')")

    def read_primary(self, *, strict: bool = False) -> SourceResult:
        """The primary directory's agents (LDAP or CSV, as planb.yml says)."""
        return read_primary(self.site, strict=strict)

    def read_source(self, *, from_snapshot: Path | None = None, strict: bool = False
                    ) -> SourceResult:
        """The source agents: from a snapshot, or the primary unless failover froze it."""
        if from_snapshot is not None:
            result = read_snapshot(from_snapshot)
        else:
            self.refuse_if_frozen()
            result = self.read_primary(strict=strict)
        if strict and result.rejections:
            raise UsageError(f"{result.source}: {len(result.rejections)} record(s) rejected; "
                             "nothing done (--strict)")
        if not self.site.primary.copies_password_hashes:
            result = without_hashes(result)
        return result

    def read_fallback(self) -> FallbackState:
        conn = self.fallback.connect(read_only=True)
        try:
            return read_state(conn, self.layout)
        except ValueError as exc:
            raise DirectoryUnreachable(str(exc)) from None
        finally:
            conn.unbind()

    def read_matrix(self) -> MatrixState | None:
        return self.matrix.read_state() if self.matrix is not None else None

    def plan_from(self, source: SourceResult) -> SyncPlan:
        """Read both targets (side by side) and plan against ``source``. Writes nothing."""
        with ThreadPoolExecutor(2, thread_name_prefix="sync-read") as pool:
            matrix_read = pool.submit(self.read_matrix)
            fallback = self.read_fallback()
            matrix = matrix_read.result()
        return self._planned(source, fallback, matrix)

    def _planned(self, source: SourceResult, fallback: FallbackState,
                 matrix: MatrixState | None) -> SyncPlan:
        options = self.matrix.plan_options() if self.matrix is not None else PlanOptions()
        options = dataclasses.replace(options, adopt=self.adopt,
                                      codes=self.site.enrolment.enabled)
        plan = compute_plan(source, fallback, matrix or MatrixState(), options)
        if matrix is None:
            plan = without_matrix(plan)
        meta = {"site": self.site.site,
                "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "matrix": self.matrix.name if self.matrix else MATRIX_NOT_CONFIGURED}
        return SyncPlan(plan, source, fallback, matrix, meta)

    def plan(self, *, from_snapshot: Path | None = None, strict: bool = False) -> SyncPlan:
        """Read the source and both targets side by side (the three are different
        servers), then plan. Writes nothing."""
        with ThreadPoolExecutor(2, thread_name_prefix="sync-read") as pool:
            fallback_read = pool.submit(self.read_fallback)
            matrix_read = pool.submit(self.read_matrix)
            source = self.read_source(from_snapshot=from_snapshot, strict=strict)
            return self._planned(source, fallback_read.result(), matrix_read.result())

    def apply(self, *, from_snapshot: Path | None = None, strict: bool = False,
              force: bool = False, reviewed: Plan | None = None,
              progress: Progress | None = None,
              confirm: Callable[[SyncPlan], bool] | None = None) -> SyncResult | None:
        """Plan afresh, refuse if unsafe or stale, apply LDAP then Matrix, re-read, confirm.

        ``confirm`` sees the checked plan before anything is written; when it returns
        False nothing is written and None is returned. Holds the site's sync lock
        throughout (:class:`~planb.directory.sync_lock.SyncLocked` if another apply does).
        """
        with sync_lock(self.site.state_dir):
            return self._apply(from_snapshot=from_snapshot, strict=strict, force=force,
                               reviewed=reviewed, progress=progress, confirm=confirm)

    def _apply(self, *, from_snapshot: Path | None, strict: bool, force: bool,
               reviewed: Plan | None, progress: Progress | None,
               confirm: Callable[[SyncPlan], bool] | None) -> SyncResult | None:
        started = time.monotonic()
        planned = self.plan(from_snapshot=from_snapshot, strict=strict)
        if reviewed is not None and comparable(reviewed) != comparable(planned.plan):
            raise UsageError(
                "the directories changed since the plan file was written: a fresh plan "
                "differs from it; nothing was changed",
                hint="review the new plan ('planb sync plan -o plan.json') and apply that")
        check_site_safety(planned.plan, self.site.safety, force=force)
        if confirm is not None and not confirm(planned):
            return None
        # Minutes for thousands of codes: made before the last look at the freeze flag.
        issued = hash_issues(site_key(self.site), planned.plan.code_issues, expiry(self.site),
                             progress=progress) if planned.plan.code_issues else {}
        # A failover may have begun while the plan was read or confirmed: ask again.
        if from_snapshot is None:
            self.refuse_if_frozen(WRITE_FROZEN)
        reports = [FallbackApplier(self.fallback, self.layout, workers=self.workers)
                   .apply(planned.plan, planned.fallback, progress, issued)]
        if self.matrix is not None:
            if from_snapshot is None:
                self.refuse_if_frozen(WRITE_FROZEN, "the fallback LDAP was written, Matrix "
                                                    "was left as it was")
            reports.append(self.matrix.apply(planned.plan, progress or _quiet))
        remaining = self.plan_from(planned.source).plan
        return SyncResult(planned, tuple(reports), remaining, time.monotonic() - started)


def without_hashes(result: SourceResult) -> SourceResult:
    """``result`` with no password hash (primary.ldap.copy_password_hashes false): the
    sync then never writes userPassword, and passwords set by enrolment survive."""
    if not any(a.password_hash is not None for a in result.agents):
        return result
    agents = tuple(dataclasses.replace(a, password_hash=None) for a in result.agents)
    return dataclasses.replace(result, agents=agents)


def _quiet(phase: str, done: int, total: int) -> None:
    return None
