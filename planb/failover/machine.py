"""The failover state machine: standby -> active -> standby, each step as data, recorded.

Activation runs :data:`ACTIVATION_STEPS` in order, deactivation
:data:`DEACTIVATION_STEPS`. Every request and step goes to the audit log; every
transition that was attempted is journaled (kind ``failover``) in the signed store.

- Before anything changes, every step's action must be available; else nothing runs.
  *Optional* steps (the announcement) are the exception: when their action is not
  available they are recorded as ``unavailable``, with what they need, and a warning.
- A *critical* step that fails stops the transition: completed steps with an ``undo``
  are undone in reverse order and the mode stays what it was. ``--force`` lets a
  failed preflight through (recorded as such).
- The step marked ``commit`` is the switch itself: once it succeeded the new mode is
  saved, whatever happens to the later (non-critical) steps.
- Activating an active fallback (or deactivating a standby one) changes nothing and
  says so; the request is still audited.
- Ctrl-C: the transition is recorded as interrupted; before the commit step, completed
  steps are undone; then :class:`~planb.errors.Interrupted` is raised.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from planb.actions.failover_steps import ChecksArgs, SwitchArgs
from planb.actions.pages import PagesArgs
from planb.config import SiteConfig
from planb.engine.actions import (
    ActionContext,
    ActionRegistry,
    Attempt,
    Incident,
    NoArgs,
    attempt,
)
from planb.engine.records import StepRecord, StepStatus, resolve_operator
from planb.engine.redaction import Redactor
from planb.errors import Interrupted, PlanbError, UsageError
from planb.i18n import N_
from planb.mode import (
    AuditEntry,
    AuditLog,
    FailoverState,
    Mode,
    StateFile,
    sync_frozen,
)
from planb.reports.journal import StoredJournal
from planb.reports.store import JournalStore, utc_now

log = logging.getLogger(__name__)

JOURNAL_KIND = "failover"
PAYLOAD_FORMAT = "planb-failover/1"
Event = Literal["activate", "deactivate"]


@dataclass(frozen=True)
class FailoverStep:
    """One step of a transition: an action with its arguments, and what failure means."""

    name: str
    action: str
    args: Any = field(default_factory=NoArgs)
    critical: bool = True
    #: This step is the switch: once it succeeded, the new mode holds.
    commit: bool = False
    #: ``(action, args)`` that reverses this step if the transition is abandoned.
    undo: tuple[str, Any] | None = None
    #: ``--force`` turns a failure of this step into a recorded warning.
    forceable: bool = False
    #: Runs when its action is available; else it is recorded as ``unavailable`` (with
    #: what it needs) and the transition goes on. Never refuses the transition.
    optional: bool = False


ACTIVATION_STEPS: tuple[FailoverStep, ...] = (
    # Services restarting (a crash during activation) get up to 30 s to come back; a
    # unit left stopped or failed is started once (planb.actions.heal).
    FailoverStep("preflight", "verify.checks", ChecksArgs(wait_seconds=30, heal=True),
                 forceable=True),
    FailoverStep("freeze-sync", "sync.freeze", undo=("sync.unfreeze", NoArgs())),
    FailoverStep("flip", "fallback.switch", SwitchArgs("active"), commit=True),
    FailoverStep("announce", "messaging.announce", critical=False, optional=True),
    FailoverStep("instructions", "failover.instructions", critical=False),
    # What an agent's browser reads now: the welcome page and the client say "active".
    FailoverStep("public-pages", "pages.check", PagesArgs("active"), critical=False),
)
DEACTIVATION_STEPS: tuple[FailoverStep, ...] = (
    FailoverStep("flip", "fallback.switch", SwitchArgs("standby"), commit=True),
    FailoverStep("unfreeze-sync", "sync.unfreeze", critical=False),
    FailoverStep("public-pages", "pages.check", PagesArgs("standby"), critical=False),
)


@dataclass(frozen=True)
class Transition:
    """What an activate or deactivate request did."""

    event: Event
    changed: bool
    state: FailoverState
    message: str
    steps: tuple[StepRecord, ...] = ()
    warnings: tuple[str, ...] = ()
    incident_duration_seconds: float | None = None
    journal: StoredJournal | None = None

    def output_of(self, step: str) -> str:
        """The output of step ``step`` (e.g. ``instructions``), empty if it did not run."""
        return next((s.output for s in self.steps if s.name == step), "")


@dataclass(frozen=True)
class FailoverStatus:
    """What ``planb failover status`` shows."""

    state: FailoverState
    sync_frozen: bool
    recent: tuple[AuditEntry, ...]


class _Abort(Exception):
    """A critical step failed: the transition stops (internal)."""


class Failover:
    """The failover of one site."""

    def __init__(self, site: SiteConfig, registry: ActionRegistry, store: JournalStore, *,
                 activation: tuple[FailoverStep, ...] = ACTIVATION_STEPS,
                 deactivation: tuple[FailoverStep, ...] = DEACTIVATION_STEPS,
                 redactor: Redactor | None = None) -> None:
        self.site = site
        self.registry = registry
        self.store = store
        self.steps: dict[Event, tuple[FailoverStep, ...]] = {
            "activate": activation, "deactivate": deactivation}
        self.state_file = StateFile(site.state_dir)
        self.audit = AuditLog(site.state_dir, signer=store.signer)
        self.redact = redactor or Redactor()

    def status(self, recent: int = 10) -> FailoverStatus:
        entries = self.audit.entries()
        return FailoverStatus(self.state_file.load(), sync_frozen(self.site.state_dir),
                              tuple(entries[-recent:]))

    def missing(self, event: Event) -> list[str]:
        """``"action (needs …)"`` for each step action of ``event`` not available yet."""
        actions = [s.action for s in self.steps[event] if not s.optional]
        actions += [s.undo[0] for s in self.steps[event] if s.undo]
        unknown = [f"{a} (not registered)" for a in actions if a not in self.registry]
        return unknown + [f"{a.name} (needs {a.needs})"
                          for a in self.registry.missing(a for a in actions if a in self.registry)]

    def unavailable(self, event: Event) -> list[str]:
        """``"step: action (needs …)"`` for each optional step of ``event`` that will not run."""
        return [f"{s.name}: {s.action} (needs {self.registry.get(s.action).needs})"
                for s in self.steps[event] if s.optional and s.action in self.registry
                and not self.registry.get(s.action).available]

    def activate(self, reason: str, *, operator: str | None = None, drill: bool = False,
                 force: bool = False, public_message: str = "") -> Transition:
        """standby -> active. Already active: nothing changes (and the result says so).

        ``public_message``: what the public welcome page shows agents while active.
        """
        return self._transition("activate", "active", reason, resolve_operator(operator),
                                drill=drill, force=force, public_message=public_message)

    def deactivate(self, reason: str = "incident over", *, operator: str | None = None
                   ) -> Transition:
        """active -> standby, recording how long the incident lasted."""
        return self._transition("deactivate", "standby", reason, resolve_operator(operator))

    # -- internals -------------------------------------------------------------------

    def _transition(self, event: Event, target: Mode, reason: str, operator: str, *,
                    drill: bool = False, force: bool = False,
                    public_message: str = "") -> Transition:
        if not reason.strip():
            raise UsageError("give a reason: it goes to the audit log and the journal")
        if self.store.signer is None:
            raise UsageError("failover needs the site's signing key to journal the transition",
                             hint="create it with 'planb keys init'")
        with self.state_file.locked():
            current = self.state_file.load()
            audit = _Auditor(self.audit, operator, reason, event, current.incident_id)
            audit("requested")
            if current.mode == target:
                message = (f"the fallback is already {target}"
                           + (f" since {current.since} (incident {current.incident_id})"
                              if target == "active" else "") + ": nothing changed")
                audit("unchanged", detail=message)
                return Transition(event, False, current, message)
            missing = self.missing(event)
            if missing:
                detail = "; ".join(missing)
                audit("refused", detail=detail)
                raise PlanbError(f"cannot {event}: steps not available yet: {detail}",
                                 hint="nothing was changed")
            # Deactivation closes the incident that activation opened.
            incident_id = (current.incident_id if event == "deactivate" else None) \
                or str(uuid.uuid4())
            incident = Incident(
                id=incident_id,
                reason=reason, started_at=utc_now(), drill=drill or current.drill,
                public_message=public_message.strip())
            audit.incident_id = incident.id
            return self._run(event, target, current, incident, operator, audit, force)

    def _run(self, event: Event, target: Mode, current: FailoverState, incident: Incident,
             operator: str, audit: _Auditor, force: bool) -> Transition:
        done: list[tuple[FailoverStep, StepRecord]] = []
        warnings: list[str] = []
        #: Each warning's English template (a catalogue msgid) and values, for reports.
        templates: list[dict[str, object]] = []

        def warn(template: str, **values: str) -> None:
            warnings.append(template % values)
            templates.append({"template": template, "values": values})

        committed = False
        result: Literal["completed", "failed", "interrupted"] = "completed"
        new_state = current
        failure = ""
        start = time.monotonic()
        try:
            for step in self.steps[event]:
                outcome = self._step(step, operator, incident, audit, force=force)
                done.append((step, outcome))
                if outcome.status in ("ok", "forced"):
                    if outcome.status == "forced":
                        warn(N_("%(step)s failed and was forced: %(error)s"), step=step.name,
                             error=outcome.error or "")
                    if step.commit:
                        committed = True
                        new_state = self._commit(target, current, incident, operator)
                    continue
                if step.critical and not (force and step.forceable):
                    raise _Abort(f"{step.name} ({step.action}) {outcome.status}: "
                                 f"{outcome.error or outcome.output.strip()[-300:]}")
                warn(N_("%(step)s %(status)s: %(error)s"), step=step.name,
                     status=outcome.status,
                     error=outcome.error or outcome.output.strip()[-300:])
        except _Abort as stop:
            result = "failed"
            self._undo(done, operator, incident, audit)
            failure = f"{event} stopped at {stop}; the fallback stays {current.mode}"
        except KeyboardInterrupt:
            result = "interrupted"
            if not committed:
                self._undo(done, operator, incident, audit)
            failure = (f"{event} interrupted; the fallback is "
                       f"{target if committed else current.mode}")
        ended = utc_now()
        duration = _incident_seconds(current.since, ended) if event == "deactivate" \
            and committed else None
        audit(result, detail=failure if result != "completed" else "; ".join(warnings))
        journal = self._journal(event, result, current, new_state, incident, operator, done,
                                warnings, time.monotonic() - start, ended, duration, templates)
        if result == "interrupted":
            raise Interrupted(failure, hint=f"see {self.audit.path}")
        if result == "failed":
            raise PlanbError(failure, hint=f"journal {journal.path.name}; see {self.audit.path}")
        message = f"the fallback is now {target}" + (
            f" (incident lasted {duration:.0f} s)" if duration is not None else "")
        return Transition(event, True, new_state, message,
                          tuple(o for _, o in done), tuple(warnings), duration, journal)

    def _step(self, step: FailoverStep, operator: str, incident: Incident, audit: _Auditor, *,
              force: bool = False, action: str | None = None, args: Any = None,
              name: str | None = None) -> StepRecord:
        action = action or step.action
        spec = self.registry.get(action)
        started_at, start = utc_now(), time.monotonic()
        if step.optional and not spec.available:
            outcome = StepRecord(name or step.name, action, "unavailable", started_at,
                                  utc_now(), 0.0, error=f"not available yet: needs {spec.needs}")
            audit("unavailable", step=outcome.name, detail=outcome.error or "")
            return outcome
        ctx = ActionContext(site=self.site, operator=operator, purpose=f"failover {audit.event}",
                            deadline=time.monotonic() + spec.default_timeout,
                            redact=self.redact, incident=incident, run_id=incident.id)
        log.info("failover %s: %s (%s)", audit.event, name or step.name, action)
        try:
            done = attempt(spec, ctx, step.args if args is None else args)
        except KeyboardInterrupt:
            audit("interrupted", step=name or step.name)
            raise
        status: StepStatus = done.status
        if not done.ok and step.forceable and force:
            status = "forced"
        outcome = StepRecord(name or step.name, action, status, started_at, utc_now(),
                              time.monotonic() - start, done.output, done.error, done.probes)
        audit(status, step=outcome.name, detail=_short(done))
        return outcome

    def _undo(self, done: list[tuple[FailoverStep, StepRecord]], operator: str,
              incident: Incident, audit: _Auditor) -> None:
        for step, outcome in reversed(done):
            if step.undo is None or outcome.status not in ("ok", "forced"):
                continue
            action, args = step.undo
            undone = self._step(step, operator, incident, audit, action=action, args=args,
                                name=f"undo {step.name}")
            done.append((step, undone))

    def _commit(self, target: Mode, current: FailoverState, incident: Incident,
                operator: str) -> FailoverState:
        if target == "active":
            state = FailoverState("active", incident.started_at, incident.id, incident.reason,
                                  operator, incident.drill)
        else:
            state = FailoverState("standby", utc_now(), None, incident.reason, operator)
        self.state_file.save(state)
        return state

    def _journal(self, event: Event, result: str, before: FailoverState, after: FailoverState,
                 incident: Incident, operator: str,
                 done: list[tuple[FailoverStep, StepRecord]], warnings: list[str],
                 duration: float, ended: str, incident_seconds: float | None,
                 templates: list[dict[str, object]] | None = None) -> StoredJournal:
        payload = {
            "format": PAYLOAD_FORMAT, "event": event, "result": result,
            "incident_id": incident.id, "drill": incident.drill, "reason": incident.reason,
            "operator": operator, "site": self.site.site,
            "from_mode": before.mode, "to_mode": after.mode,
            "started_at": incident.started_at, "ended_at": ended,
            "duration_seconds": round(duration, 3),
            "activated_at": before.since if event == "deactivate" else after.since,
            "incident_duration_seconds": None if incident_seconds is None
            else round(incident_seconds, 3),
            "steps": [o.as_json() for _, o in done], "warnings": list(warnings),
            "warning_templates": list(templates or []),
        }
        return self.store.append(JOURNAL_KIND, payload)


class _Auditor:
    """Writes audit entries for one request (who, why, which event and incident)."""

    def __init__(self, log_: AuditLog, who: str, why: str, event: Event,
                 incident_id: str | None) -> None:
        self.log, self.who, self.why, self.event = log_, who, why, event
        self.incident_id = incident_id

    def __call__(self, result: str, *, step: str | None = None, detail: str = "") -> None:
        self.log.append(AuditEntry(at=utc_now(), who=self.who, why=self.why, event=self.event,
                                   result=result, step=step, incident_id=self.incident_id,
                                   detail=detail[:500]))


def _short(done: Attempt) -> str:
    text = done.error or (done.output.strip().splitlines() or [""])[-1]
    return text[:300]


def _incident_seconds(since: str | None, until: str) -> float | None:
    if since is None:
        return None
    start = datetime.fromisoformat(since.replace("Z", "+00:00"))
    end = datetime.fromisoformat(until.replace("Z", "+00:00"))
    return (end - start).total_seconds()
