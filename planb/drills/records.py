"""What a drill records: step records, verify rounds, RTO, findings, and the journal payload.

The journal follows chaostoolkit's shape: ``status``, ``deviated``, ``steady_states``
(``before``/``after``), ``run`` (fault, activate and the deciding verify round) and
``rollbacks`` (restore), plus planb's own ``rto`` against the ``objective``,
``verify_rounds``, ``versions`` and ``footprint``. It is the payload handed to
:meth:`planb.reports.store.JournalStore.append` with kind ``drill``.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import planb
from planb.config import SiteConfig
from planb.drills.scenario import Scenario
from planb.engine.actions import Measure
from planb.engine.records import StepRecord
from planb.i18n import N_

log = logging.getLogger(__name__)

PAYLOAD_FORMAT = "planb-drill/1"
Outcome = Literal["pass", "deviated", "failed", "interrupted"]
#: Version keys every drill journal carries (None: no collector reported it).
#: "client": the browser client the proxy serves (``hydrogen-view-sdk 0.3.1, olm 3.2.15``).
VERSION_KEYS = ("planb", "playbooks_commit", "synapse", "slapd", "client")


@dataclass(frozen=True)
class VerifyRound:
    """One pass over the verify steps."""

    number: int
    started_at: str
    duration_seconds: float
    passed: bool
    failing: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"round": self.number, "started_at": self.started_at,
                "duration_seconds": round(self.duration_seconds, 3), "passed": self.passed,
                "failing": list(self.failing)}


@dataclass(frozen=True)
class Finding:
    """Why a drill did not pass: ``failed`` (could not run) or ``deviated`` (ran, missed)."""

    kind: Literal["failed", "deviated", "interrupted"]
    message: str
    #: The message before its values went in (an English msgid of planb's catalogues)
    #: and those values: a report translates it into the site's language.
    template: str = ""
    values: dict[str, str | int | float] = field(default_factory=dict)

    def record(self) -> dict[str, object]:
        """The finding as the journal keeps it."""
        data: dict[str, object] = {"kind": self.kind, "message": self.message}
        if self.template:
            data.update(template=self.template, values=dict(self.values))
        return data


@dataclass(frozen=True)
class Footprint:
    """What one service of the fallback uses at the end of a drill."""

    host: str
    service: str
    memory_bytes: int | None = None
    disk_bytes: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "service": self.service,
                "memory_bytes": self.memory_bytes, "disk_bytes": self.disk_bytes}


VersionCollector = Callable[[SiteConfig], Mapping[str, str | None]]
FootprintCollector = Callable[[SiteConfig], Sequence[Footprint]]


def planb_versions(site: SiteConfig) -> dict[str, str | None]:
    """planb's version and the playbooks' git commit (None outside a git checkout)."""
    commit: str | None = None
    if (planb.PROJECT_ROOT / ".git").exists():
        try:
            proc = subprocess.run(["git", "-C", str(planb.PROJECT_ROOT), "rev-parse", "HEAD"],
                                  capture_output=True, text=True, timeout=10, check=False)
            if proc.returncode == 0:
                commit = proc.stdout.strip() or None
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.info("playbooks commit not known: %s", exc)
    return {"planb": planb.__version__, "playbooks_commit": commit}


@dataclass(frozen=True)
class Collectors:
    """Pluggable collectors run when the drill ends (their errors are recorded, not raised)."""

    versions: tuple[VersionCollector, ...] = (planb_versions,)
    footprint: tuple[FootprintCollector, ...] = ()


@dataclass
class DrillJournal:
    """The record of one drill, filled in as it runs and finished in ``finally``."""

    drill_id: str
    scenario: Scenario
    site: SiteConfig
    operator: str
    started_at: str
    objective_seconds: int
    objective_source: Literal["scenario", "site"]
    #: The site's objective the RTO is held to (rto_seconds or restore_rto_seconds).
    objective_key: str = "rto_seconds"
    rpo_objective_seconds: int | None = None
    ended_at: str | None = None
    steady_before: list[StepRecord] = field(default_factory=list)
    run: list[StepRecord] = field(default_factory=list)
    rollbacks: list[StepRecord] = field(default_factory=list)
    steady_after: list[StepRecord] = field(default_factory=list)
    verify_rounds: list[VerifyRound] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    fault_started_at: str | None = None
    recovered_at: str | None = None
    rto_seconds: float | None = None
    duration_seconds: float = 0.0
    versions: dict[str, str | None] = field(default_factory=dict)
    footprint: list[Footprint] = field(default_factory=list)
    collector_errors: list[str] = field(default_factory=list)
    #: What the steps measured (traffic.stop: rpo_seconds, rpo_messages, ...).
    measures: dict[str, Measure] = field(default_factory=dict)

    def add(self, kind: Literal["failed", "deviated", "interrupted"], template: str,
            **values: str | int | float) -> None:
        """Record a finding: ``template`` (marked with N_) filled with ``values``."""
        message = template % values if values else template
        log.warning("drill %s: %s", kind, message)
        self.findings.append(Finding(kind, message, template, values))

    @property
    def outcome(self) -> Outcome:
        kinds = {f.kind for f in self.findings}
        if "interrupted" in kinds:
            return "interrupted"
        if "failed" in kinds:
            return "failed"
        return "deviated" if "deviated" in kinds else "pass"

    @property
    def rto_met(self) -> bool | None:
        return None if self.rto_seconds is None else self.rto_seconds <= self.objective_seconds

    @property
    def rpo_seconds(self) -> float | None:
        value = self.measures.get("rpo_seconds")
        return float(value) if isinstance(value, int | float) and not isinstance(
            value, bool) else None

    @property
    def rpo_met(self) -> bool | None:
        if self.rpo_seconds is None or self.rpo_objective_seconds is None:
            return None
        return self.rpo_seconds <= self.rpo_objective_seconds

    def judge_rpo(self) -> None:
        """Findings for an RPO a step measured: beyond the objective, messages missing
        that the backup held, or agents' sessions lost (DEVIATED)."""
        if "rpo_messages" not in self.measures:
            return
        if self.rpo_met is False:
            self.add("deviated", N_("RPO %(rpo)s s exceeds the objective of %(objective)s s "
                                    "(%(messages)s messages lost)"),
                     rpo=round(self.rpo_seconds or 0.0, 1), objective=self.rpo_objective_seconds
                     or 0, messages=_count(self.measures.get("rpo_messages")))
        lost = _count(self.measures.get("lost_before_backup"))
        if lost:
            self.add("deviated", N_("%(count)s messages sent before the backup are missing "
                                    "after the restore"), count=lost)
        if self.measures.get("sessions_kept") is False:
            self.add("deviated", N_("agents' sessions did not survive the restore (a token "
                                    "from before the loss was refused)"))

    def collect(self, collectors: Collectors) -> None:
        """Run the version and footprint collectors; a failing one is noted, not fatal."""
        versions: dict[str, str | None] = dict.fromkeys(VERSION_KEYS)
        for collect_versions in collectors.versions:
            try:
                versions.update(collect_versions(self.site))
            except Exception as exc:  # a collector must never lose the journal
                self.collector_errors.append(f"{_name(collect_versions)}: {exc}")
        self.versions = versions
        for collect_footprint in collectors.footprint:
            try:
                self.footprint.extend(collect_footprint(self.site))
            except Exception as exc:
                self.collector_errors.append(f"{_name(collect_footprint)}: {exc}")

    def _rpo(self) -> dict[str, Any]:
        m = self.measures
        return {"seconds": self.rpo_seconds, "messages": m.get("rpo_messages"),
                "objective_seconds": self.rpo_objective_seconds, "met": self.rpo_met,
                "sent_before_loss": m.get("sent_before_loss"),
                "lost_before_backup": m.get("lost_before_backup"),
                "sessions_kept": m.get("sessions_kept")}

    def payload(self) -> dict[str, Any]:
        """The JSON object the journal store signs."""
        outcome = self.outcome
        return {
            "format": PAYLOAD_FORMAT,
            "drill_id": self.drill_id,
            "scenario": {"name": self.scenario.name, "description": self.scenario.description,
                         "source": self.scenario.source, "sha256": self.scenario.sha256},
            "site": self.site.site,
            "organisation": self.site.organisation,
            "operator": self.operator,
            "status": outcome,
            "deviated": outcome == "deviated",
            "findings": [f.record() for f in self.findings],
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_seconds": round(self.duration_seconds, 3),
            "objective": {"rto_seconds": self.objective_seconds,
                          "source": self.objective_source}
            | ({"site_key": self.objective_key}
               if self.objective_key != "rto_seconds" else {})
            | ({"rpo_seconds": self.rpo_objective_seconds}
               if "rpo_messages" in self.measures else {}),
            "rto": {"seconds": None if self.rto_seconds is None else round(self.rto_seconds, 3),
                    "met": self.rto_met, "fault_started_at": self.fault_started_at,
                    "recovered_at": self.recovered_at},
            "steady_states": {
                "before": _steady(self.steady_before),
                "after": _steady(self.steady_after),
            },
            "run": [r.as_json() for r in self.run],
            "verify_rounds": [r.as_json() for r in self.verify_rounds],
            "rollbacks": [r.as_json() for r in self.rollbacks],
            **({"rpo": self._rpo()} if "rpo_messages" in self.measures else {}),
            **({"measures": dict(self.measures)} if self.measures else {}),
            "versions": dict(self.versions),
            "footprint": [f.as_json() for f in self.footprint],
            "collector_errors": list(self.collector_errors),
        }


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _steady(records: list[StepRecord]) -> dict[str, Any]:
    ran = [r for r in records if r.status != "skipped"]
    met = all(r.ok for r in ran) if ran else None  # None: not checked
    return {"steady_state_met": met, "probes": [r.as_json() for r in records]}


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)
