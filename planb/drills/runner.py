"""The drill runner: steady state, fault, activate, verify until it passes, restore, steady after.

Restore always runs: after a failed step, an unexpected error or Ctrl-C (a second
Ctrl-C during restore is ignored with a warning, so the lab or fallback is not left
half-broken). The journal is always appended to the signed store, then:

- PASS: :meth:`DrillResult.raise_for_outcome` returns quietly;
- DEVIATED (objective missed, activation or a probe failed, steady state not back):
  :class:`~planb.errors.DrillDeviated`, exit 4;
- FAILED (could not run: steady state not met before the fault, the fault could not
  be injected, an action is not available, restore failed): PlanbError, exit 1;
- INTERRUPTED: :meth:`DrillRunner.run` itself raises :class:`~planb.errors.Interrupted`
  (exit 130) once the journal is written.

RTO is measured on the monotonic clock from the start of the first fault step to the
end of the first verify round in which every step passed, against the scenario's
objective or the site's (``rto_seconds``, or ``restore_rto_seconds`` for a scenario that
rebuilds and restores a host). A step may hand back measures (``ActionResult.measures``):
the journal keeps them, and an RPO measured by ``traffic.stop`` is held to the site's
``rpo_seconds`` (DEVIATED beyond it, or when messages sent before the backup are missing).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Literal

from planb.config import SiteConfig
from planb.drills.records import Collectors, DrillJournal, Outcome, VerifyRound
from planb.drills.scenario import Phase, Scenario, Step
from planb.engine.actions import ActionContext, ActionRegistry, Attempt, attempt
from planb.engine.records import StepRecord, resolve_operator
from planb.engine.redaction import Redactor
from planb.errors import DrillDeviated, Interrupted, PlanbError, UsageError
from planb.i18n import N_
from planb.reports.journal import StoredJournal
from planb.reports.store import JournalStore, utc_now

log = logging.getLogger(__name__)

JOURNAL_KIND = "drill"
DRILLS_DIR = "drills"


@dataclass(frozen=True)
class StepEvent:
    """What an observer hears: a step starts, ends (with its record) or is skipped."""

    kind: Literal["start", "end"]
    step: Step
    record: StepRecord | None = None
    round: int | None = None


#: Called from the runner's thread for each step start and end (e.g. a live display).
Observer = Callable[[StepEvent], None]


@dataclass(frozen=True)
class DrillResult:
    """A finished drill: its outcome, RTO and the signed journal."""

    outcome: Outcome
    findings: tuple[str, ...]
    rto_seconds: float | None
    objective_seconds: int
    duration_seconds: float
    journal: StoredJournal

    def raise_for_outcome(self) -> None:
        """DrillDeviated (exit 4) or PlanbError (exit 1) unless the drill passed."""
        where = f"journal {self.journal.path.name}"
        summary = "; ".join(self.findings) or self.outcome
        if self.outcome == "deviated":
            raise DrillDeviated(f"drill DEVIATED: {summary}", hint=where)
        if self.outcome == "failed":
            raise PlanbError(f"drill FAILED: {summary}", hint=where)
        if self.outcome == "interrupted":
            raise Interrupted(f"drill interrupted: restore ran ({where})")


class DrillRunner:
    """Runs scenarios of one site with one action registry, journaling into one store."""

    def __init__(self, site: SiteConfig, registry: ActionRegistry, store: JournalStore, *,
                 operator: str | None = None, collectors: Collectors | None = None,
                 redactor: Redactor | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 observer: Observer | None = None) -> None:
        self.site = site
        self.registry = registry
        self.store = store
        self.operator = resolve_operator(operator)
        self.collectors = collectors or Collectors()
        self.redact = redactor or Redactor()
        self.clock = clock
        self.sleep = sleep
        self.observer = observer
        self._run_id: str | None = None
        self._journal: DrillJournal | None = None

    # -- the whole drill --------------------------------------------------------------

    def run(self, scenario: Scenario) -> DrillResult:
        """Run ``scenario`` and return its result (Interrupted is raised after restore)."""
        if self.store.signer is None:
            raise UsageError("drills need the site's signing key to journal their result",
                             hint="create it with 'planb keys init'")
        if scenario.rto_seconds is not None:
            objective, source = scenario.rto_seconds, "scenario"
        else:
            objective = getattr(self.site.objectives, scenario.rto_objective)
            source = "site"
        journal = DrillJournal(
            drill_id=str(uuid.uuid4()), scenario=scenario, site=self.site,
            operator=self.operator, started_at=utc_now(), objective_seconds=objective,
            objective_source=source,  # type: ignore[arg-type]
            objective_key=scenario.rto_objective if source == "site" else "rto_seconds",
            rpo_objective_seconds=self.site.objectives.rpo_seconds,
        )
        self._run_id = journal.drill_id
        self._journal = journal
        started = self.clock()
        with self._lock():
            try:
                self._drive(scenario, journal)
            finally:
                journal.ended_at = utc_now()
                journal.duration_seconds = self.clock() - started
                journal.collect(self.collectors)
                stored = self.store.append(JOURNAL_KIND, journal.payload())
        result = DrillResult(
            outcome=journal.outcome, findings=tuple(f.message for f in journal.findings),
            rto_seconds=journal.rto_seconds, objective_seconds=objective,
            duration_seconds=journal.duration_seconds, journal=stored,
        )
        log.info("drill %s: %s, RTO %s s (objective %d s), journal %s", scenario.name,
                 result.outcome, result.rto_seconds, objective, stored.path.name)
        if result.outcome == "interrupted":
            result.raise_for_outcome()
        return result

    def _drive(self, scenario: Scenario, journal: DrillJournal) -> None:
        missing = self.registry.missing(scenario.actions)
        if missing:
            needs = "; ".join(f"{a.name} (needs {a.needs})" for a in missing)
            journal.add("failed", N_("cannot run: actions not available yet: %(needs)s"),
                        needs=needs)
            self._skip(scenario.steps, journal)
            return
        forward_done = False
        try:
            forward_done = self._forward(scenario, journal)
        except KeyboardInterrupt:
            journal.add("interrupted", N_("interrupted by the operator (Ctrl-C)"))
        except Exception as exc:
            log.exception("drill %s stopped on an unexpected error", scenario.name)
            journal.add("failed", N_("stopped on an unexpected error: %(error)s"),
                        error=f"{type(exc).__name__}: {exc}")
        finally:
            with _sigint_deferred():
                self._restore(scenario, journal)
            journal.judge_rpo()
        if journal.outcome == "interrupted" or not forward_done:
            self._skip(scenario.phase("steady_state_after"), journal)
            return
        try:
            after = self._phase(scenario.phase("steady_state_after"), journal.steady_after)
        except KeyboardInterrupt:
            journal.add("interrupted", N_("interrupted by the operator (Ctrl-C) after restore"))
            return
        if after is not None:
            journal.add("deviated", N_("steady state not back after the drill: %(why)s"),
                        why=after.why())

    # -- phases -----------------------------------------------------------------------

    def _forward(self, scenario: Scenario, journal: DrillJournal) -> bool:
        """Steady state, prepare, fault, activate, verify. True when the fault was injected."""
        failing = self._phase(scenario.phase("steady_state"), journal.steady_before)
        if failing is not None:
            journal.add("failed", N_("steady state not met before the fault: %(why)s"),
                        why=failing.why())
            self._skip(_phases(scenario, "prepare", "fault", "activate", "verify"), journal)
            return False
        failing = self._phase(scenario.phase("prepare"), journal.run)
        if failing is not None:
            journal.add("failed", N_("the scene could not be set before the fault: %(why)s"),
                        why=failing.why())
            self._skip(_phases(scenario, "fault", "activate", "verify"), journal)
            return True  # it may have changed the fallback: steady state after is checked
        fault_start = self.clock()
        journal.fault_started_at = utc_now()
        failing = self._phase(scenario.phase("fault"), journal.run)
        if failing is not None:
            journal.add("failed", N_("the fault could not be injected: %(why)s"),
                        why=failing.why())
            self._skip(_phases(scenario, "activate", "verify"), journal)
            return True
        failing = self._phase(scenario.phase("activate"), journal.run)
        if failing is not None:
            journal.add("deviated", N_("activation failed: %(why)s"), why=failing.why())
            self._skip(scenario.phase("verify"), journal)
            return True
        self._verify(scenario, journal, fault_start)
        return True

    def _verify(self, scenario: Scenario, journal: DrillJournal, fault_start: float) -> None:
        steps = scenario.phase("verify")
        deadline = self.clock() + scenario.verify_timeout
        number = 0
        while True:
            number += 1
            round_start, round_at = self.clock(), utc_now()
            records: list[StepRecord] = []
            failing = self._phase(steps, records, round_number=number, deadline=deadline)
            now = self.clock()
            journal.verify_rounds.append(VerifyRound(
                number, round_at, now - round_start, failing is None,
                tuple(r.name for r in records if not r.ok and r.status != "skipped")))
            if failing is None:
                journal.run.extend(records)
                journal.recovered_at = utc_now()
                journal.rto_seconds = now - fault_start
                if not journal.rto_met:
                    journal.add("deviated", N_("RTO %(rto)s s exceeds the objective of "
                                               "%(objective)s s"),
                                rto=round(journal.rto_seconds, 1),
                                objective=journal.objective_seconds)
                return
            if now + scenario.verify_interval >= deadline:
                journal.run.extend(records)
                journal.add("deviated", N_("verify did not pass within %(timeout)s s "
                                           "(%(rounds)s rounds); last round: %(why)s"),
                            timeout=_number(scenario.verify_timeout), rounds=number,
                            why=failing.why())
                return
            self.sleep(scenario.verify_interval)

    def _restore(self, scenario: Scenario, journal: DrillJournal) -> None:
        for step in scenario.phase("restore"):
            record = self._step(step, journal.rollbacks)
            if not record.ok:
                journal.add("failed", N_("restore incomplete, check the lab/fallback by "
                                         "hand: %(why)s"), why=record.why())

    def _phase(self, steps: tuple[Step, ...], into: list[StepRecord], *,
               round_number: int | None = None, deadline: float | None = None
               ) -> StepRecord | None:
        """Run steps in order until one does not pass; return that one (None: all passed)."""
        for position, step in enumerate(steps):
            record = self._step(step, into, round_number=round_number, deadline=deadline)
            if not record.ok:
                for later in steps[position + 1:]:
                    into.append(_skipped(later, round_number))
                    self._notify(StepEvent("end", later, into[-1], round_number))
                return record
        return None

    def _skip(self, steps: tuple[Step, ...], journal: DrillJournal) -> None:
        """Record steps that did not run, each in its place in the journal."""
        targets = {"steady_state": journal.steady_before, "steady_state_after":
                   journal.steady_after, "restore": journal.rollbacks}
        for step in steps:
            record = _skipped(step)
            targets.get(step.phase, journal.run).append(record)
            self._notify(StepEvent("end", step, record))

    # -- one step ---------------------------------------------------------------------

    def _step(self, step: Step, into: list[StepRecord], *, round_number: int | None = None,
              deadline: float | None = None) -> StepRecord:
        spec = self.registry.get(step.action)
        started_at, start = utc_now(), self.clock()
        timeout = step.timeout if deadline is None else max(0.1, min(step.timeout,
                                                                      deadline - start))
        ctx = ActionContext(site=self.site, operator=self.operator,
                            purpose=f"drill {step.phase} {step.name}",
                            deadline=time.monotonic() + timeout, redact=self.redact,
                            run_id=self._run_id)
        log.info("%s: %s (%s)", step.phase, step.name, step.action)
        self._notify(StepEvent("start", step, round=round_number))
        try:
            done = attempt(spec, ctx, step.args)
        except KeyboardInterrupt:
            done = Attempt("error", error="interrupted by the operator (Ctrl-C)")
            into.append(self._record(step, done, started_at, start, round_number))
            self._notify(StepEvent("end", step, into[-1], round_number))
            raise
        elapsed = self.clock() - start
        if done.ok and elapsed > timeout + 0.5:
            done = Attempt("failed", done.output, f"took {elapsed:.1f} s, more than its "
                           f"timeout of {timeout:g} s", done.probes)
        record = self._record(step, done, started_at, start, round_number)
        into.append(record)
        if self._journal is not None:
            self._journal.measures.update(record.measures)
        self._notify(StepEvent("end", step, record, round_number))
        return record

    def _notify(self, event: StepEvent) -> None:
        """Tell the observer; a failing observer is logged, never stops the drill."""
        if self.observer is None:
            return
        try:
            self.observer(event)
        except Exception:
            log.exception("drill observer failed on %s %s", event.kind, event.step.name)

    def _record(self, step: Step, done: Attempt, started_at: str, start: float,
                round_number: int | None) -> StepRecord:
        return StepRecord(
            name=step.name, action=step.action, phase=step.phase, args=step.args,
            status=done.status, started_at=started_at, ended_at=utc_now(),
            duration_seconds=self.clock() - start, output=done.output, error=done.error,
            probes=done.probes, round=round_number, measures=done.measures,
        )

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        folder = self.site.state_dir / DRILLS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError("another drill is running for this site") from None
            yield


def _number(value: float) -> int | float:
    """``120.0`` as ``120`` (as ``:g`` shows it), other values as they are."""
    return int(value) if float(value).is_integer() else value


def _phases(scenario: Scenario, *phases: Phase) -> tuple[Step, ...]:
    return tuple(s for s in scenario.steps if s.phase in phases)


def _skipped(step: Step, round_number: int | None = None) -> StepRecord:
    return StepRecord(name=step.name, action=step.action, phase=step.phase, args=step.args,
                      status="skipped", round=round_number)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """While restoring, a Ctrl-C is logged and ignored (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def warn(signum: int, frame: FrameType | None) -> None:
        log.warning("restoring the lab/fallback: Ctrl-C ignored until restore is done")

    previous = signal.signal(signal.SIGINT, warn)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


__all__ = ["DrillResult", "DrillRunner", "Observer", "Phase", "StepEvent"]
