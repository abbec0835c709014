"""Turn a journal (and its addenda) into a :class:`ReportView`: the exercise report.

The sections are what ISO 22301 §8.5 and NIST SP 800-84 expect of an exercise
report: scope, objectives, participants, timeline, observations, outcome against
each objective, recommendations and follow-up actions. A drill journal
(``planb-drill/1``, see :mod:`planb.drills.records`) fills most of them; a failover
journal fills what an activation knows; people add observations and actions with
signed addenda (:mod:`planb.reports.annotate`). Anything else a journal holds is
shown as plain details. Missing sections say "none recorded" when rendered.

Everything here is pure: a journal dict and its verification state in, a view out.
Probe subjects and free text pass through :class:`~planb.reports.render.pseudonyms.Pseudonyms`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from planb.reports.render.pseudonyms import Pseudonyms
from planb.reports.render.view import (
    AddendumView,
    FootprintRow,
    Note,
    Objective,
    Participant,
    ProbeRow,
    ReportView,
    RoundRow,
    Rto,
    SignatureView,
    Status,
    TimelineStep,
    seconds,
    size,
    status_of,
    text,
    when,
)
from planb.reports.summary import as_mapping, as_number, summarise

PHASE_NAMES = {
    "steady_state": "steady state (before)", "fault": "fault", "activate": "activate",
    "verify": "verify", "restore": "restore", "steady_state_after": "steady state (after)",
}


@dataclass(frozen=True)
class Verification:
    """What :func:`planb.reports.verify.verify_directory` said about one journal."""

    state: str = "not checked"  # "valid", "not checked" or a failure reason
    verified_by: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class JournalDoc:
    """A journal to render: the envelope as written, its file name, SHA-256 and verdict."""

    data: Mapping[str, Any]
    file: str
    sha256: str
    verification: Verification = Verification()

    @property
    def payload(self) -> Mapping[str, Any]:
        payload = self.data.get("payload")
        return payload if isinstance(payload, Mapping) else {}


def build_view(doc: JournalDoc, addenda: Sequence[JournalDoc] = ()) -> ReportView:
    """The report view of ``doc``, with the ``addenda`` that annotate it (oldest first)."""
    names = Pseudonyms()
    kind = text(doc.data.get("kind")) or "journal"
    payload = doc.payload
    _register_subjects(payload, names)  # before any text is rendered
    notes = [_addendum(a, names) for a in addenda]
    base: dict[str, Any] = {
        "kind": kind, "journal_id": text(doc.data.get("id")), "file": doc.file,
        "seq": int(doc.data.get("seq") or 0), "created_at": when(doc.data.get("created_at")),
        "organisation": text(payload.get("organisation")),
        "site": text(payload.get("site")),
        "signature": _signature(doc), "addenda": tuple(notes),
    }
    people = tuple(Participant("annotated the report", a.author) for a in notes)
    observations = tuple(Note(o, f"{a.author}, {a.created_at}") for a in notes
                         for o in a.observations)
    actions = tuple(Note(o, f"{a.author}, {a.created_at}") for a in notes for o in a.actions)
    if kind == "drill":
        view = _drill(payload, names, base)
    elif kind == "failover":
        view = _failover(payload, names, base)
    else:
        view = ReportView(title=f"Journal {doc.file}", status=status_of(payload.get("status")
                          or "recorded"), summary=f"A {kind} journal.",
                          details=tuple((k, names.text(_brief(v))) for k, v in payload.items()),
                          **base)
    return replace(view, participants=view.participants + people,
                    observations=view.observations + observations,
                    recommendations=view.recommendations + actions,
                    hidden_subjects=names.hidden)


def _drill(p: Mapping[str, Any], names: Pseudonyms, base: dict[str, Any]) -> ReportView:
    scenario = as_mapping(p.get("scenario"))
    name = text(scenario.get("name") or p.get("scenario")) or "unnamed scenario"
    status = status_of(p.get("status"))
    rto = _rto(p)
    steady = as_mapping(p.get("steady_states"))
    before, after = as_mapping(steady.get("before")), as_mapping(steady.get("after"))
    steps = [*_list(before.get("probes")), *_list(p.get("run")), *_list(p.get("rollbacks")),
             *_list(after.get("probes"))]
    day = text(p.get("started_at"))[:10]
    timeline = tuple(_step(s, names, day) for s in steps)
    probes = tuple(_probe(s, probe, names) for s in steps for probe in _list(s.get("probes")))
    rounds = tuple(RoundRow(int(r.get("round") or 0), when(r.get("started_at")),
                            seconds(r.get("duration_seconds")), status_of(bool(r.get("passed"))),
                            names.text(", ".join(text(f) for f in _strings(r.get("failing")))))
                   for r in _list(p.get("verify_rounds")))
    restore = _list(p.get("rollbacks"))
    objectives = (
        Objective("Recovery time", f"≤ {rto.objective}" if rto.objective else "not set",
                  rto.measured or "not measured", rto.outcome),
        _steady_objective("Steady state before the fault", before),
        Objective("Fallback verified (checks and probes)", "one verify round passes",
                  f"{sum(1 for r in rounds if r.status.tone == 'pass')} of {len(rounds)} "
                  "round(s) passed", status_of(any(r.status.tone == "pass" for r in rounds))
                  if rounds else status_of(None)),
        Objective("Restore", "every restore step succeeds",
                  f"{sum(1 for s in restore if s.get('status') == 'ok')} of {len(restore)} "
                  "step(s) ok", status_of(all(s.get("status") == "ok" for s in restore))
                  if restore else status_of(None)),
        _steady_objective("Steady state after the restore", after),
    )
    subjects = sorted({row.subject for row in probes if row.subject})
    participants = [Participant("operator (ran the drill)", text(p.get("operator")) or "unknown")]
    if subjects:
        participants.append(Participant(
            f"sampled accounts probed ({len(subjects)}, pseudonymised)", ", ".join(subjects)))
    findings = tuple(Note(names.text(f.get("message")), f"drill finding ({text(f.get('kind'))})")
                     for f in _list(p.get("findings")))
    collector = tuple(Note(names.text(e), "collector error") for e in
                      _strings(p.get("collector_errors")))
    scope = (
        ("scenario", name), ("description", names.text(scenario.get("description"))),
        ("scenario file", text(scenario.get("source"))),
        ("scenario sha256", text(scenario.get("sha256"))),
        ("phases", ", ".join(dict.fromkeys(PHASE_NAMES.get(text(s.get("phase")),
                                                             text(s.get("phase")))
                                            for s in steps))),
        ("drill id", text(p.get("drill_id"))), ("started", when(p.get("started_at"))),
        ("ended", when(p.get("ended_at"))), ("duration", seconds(p.get("duration_seconds"))),
    )
    summary = f"Drill '{name}' ended {status.word}"
    if rto.measured:
        summary += f": recovery in {rto.measured} against an objective of {rto.objective}"
    elif rto.objective:
        summary += f": recovery not measured (objective {rto.objective})"
    return ReportView(
        title=f"Drill report: {name}", status=status, summary=summary + ".", rto=rto,
        timeline_day=day,
        scope=tuple((k, v) for k, v in scope if v), objectives=objectives,
        participants=tuple(participants), timeline=timeline, rounds=rounds, probes=probes,
        observations=findings + collector,
        versions=tuple((k, text(v) or "not known")
                       for k, v in as_mapping(p.get("versions")).items()),
        footprint=tuple(FootprintRow(text(f.get("host")), text(f.get("service")),
                                     size(f.get("memory_bytes")), size(f.get("disk_bytes")))
                        for f in _list(p.get("footprint"))),
        **base)


def _failover(p: Mapping[str, Any], names: Pseudonyms, base: dict[str, Any]) -> ReportView:
    event = text(p.get("event")) or "transition"
    status = status_of(p.get("result"))
    steps = _list(p.get("steps"))
    day = text(p.get("started_at"))[:10]
    timeline = tuple(_step({**s, "phase": event}, names, day) for s in steps)
    completed = status_of(p.get("result") == "completed")
    objectives = (
        Objective(f"{event.capitalize()} completes",
                  f"{text(p.get('from_mode'))} → {text(p.get('to_mode'))}",
                  text(p.get("result")) or "unknown", completed),
    )
    scope = (
        ("event", event), ("drill", text(p.get("drill"))),
        ("incident id", text(p.get("incident_id"))), ("reason", names.text(p.get("reason"))),
        ("mode", f"{text(p.get('from_mode'))} → {text(p.get('to_mode'))}"),
        ("started", when(p.get("started_at"))), ("ended", when(p.get("ended_at"))),
        ("duration", seconds(p.get("duration_seconds"))),
        ("incident duration", seconds(p.get("incident_duration_seconds"))),
    )
    warnings = tuple(Note(names.text(w), "warning") for w in _strings(p.get("warnings")))
    return ReportView(
        title=f"Failover report: {event}", status=status,
        summary=f"Failover {event} {text(p.get('result')) or 'unknown'}: "
        f"{text(p.get('from_mode'))} → {text(p.get('to_mode'))}.",
        scope=tuple((k, v) for k, v in scope if v), objectives=objectives,
        participants=(Participant("operator", text(p.get("operator")) or "unknown"),),
        timeline=timeline, timeline_day=day, observations=warnings, **base)


def _rto(p: Mapping[str, Any]) -> Rto:
    summary = summarise(p)
    measured, target = summary.rto_seconds, summary.rto_objective_seconds
    if measured is None or target is None:
        outcome = status_of(None)
    else:
        outcome = status_of(measured <= target)
    return Rto(seconds(measured) if measured is not None else "",
               seconds(target) if target is not None else "", outcome, measured, target)


def _steady_objective(name: str, steady: Mapping[str, Any]) -> Objective:
    met = steady.get("steady_state_met")
    checks = _list(steady.get("probes"))
    ok = sum(1 for c in checks if c.get("status") == "ok")
    return Objective(name, "every steady-state check holds",
                     f"{ok} of {len(checks)} check(s) ok" if checks else "not checked",
                     status_of(met if isinstance(met, bool) else None))


def _step(s: Mapping[str, Any], names: Pseudonyms, day: str = "") -> TimelineStep:
    status = status_of(s.get("status"))
    output = names.text(s.get("output")).strip()
    detail = names.text(s.get("error")) or next(
        (names.text(p.get("detail")) for p in _list(s.get("probes")) if not p.get("ok")), "")
    detail = detail or (output.splitlines() or [""])[-1]
    phase = text(s.get("phase"))
    return TimelineStep(phase=PHASE_NAMES.get(phase, phase), name=names.text(s.get("name")),
                        action=text(s.get("action")), started_at=_clock(s.get("started_at"), day),
                        duration=seconds(s.get("duration_seconds")), status=status,
                        detail=detail, output=output, round=_int(s.get("round")),
                        seconds=as_number(s.get("duration_seconds")) or 0.0)


def _clock(value: Any, day: str) -> str:
    """A step's start: the time alone on the drill's day (``09:00:02.000``), else in full."""
    full = when(value)
    return full[11:].removesuffix(" UTC") if day and full.startswith(day) else full


def _probe(step: Mapping[str, Any], probe: Mapping[str, Any], names: Pseudonyms) -> ProbeRow:
    # The subject first: text() then hides that login wherever else it appears.
    subject = names.subject(probe.get("subject"))
    return ProbeRow(step=names.text(step.get("name")), round=_int(step.get("round")),
                    name=text(probe.get("name")), subject=subject,
                    status=status_of("ok" if probe.get("ok") else "failed"),
                    duration=seconds(probe.get("duration_seconds")),
                    detail=names.text(probe.get("detail")),
                    seconds=as_number(probe.get("duration_seconds")) or 0.0)


def _addendum(doc: JournalDoc, names: Pseudonyms) -> AddendumView:
    p = doc.payload
    return AddendumView(file=doc.file, created_at=when(doc.data.get("created_at")),
                        author=text(p.get("author")) or "unknown",
                        signature=_signature(doc).status,
                        observations=tuple(names.text(o) for o in _strings(p.get("observations"))),
                        actions=tuple(names.text(a) for a in _strings(p.get("actions"))))


def _signature(doc: JournalDoc) -> SignatureView:
    v = doc.verification
    return SignatureView(state=v.state, status=status_of(v.state),
                         key_fingerprint=text(doc.data.get("key_fingerprint")),
                         verified_by=v.verified_by, sha256=doc.sha256,
                         previous_sha256=text(doc.data.get("previous_sha256")) or None,
                         problem=v.problem)


def _register_subjects(value: Any, names: Pseudonyms) -> None:
    """Give every probe ``subject`` anywhere in the payload its label up front."""
    if isinstance(value, Mapping):
        if "subject" in value:
            names.subject(value["subject"])
        for item in value.values():
            _register_subjects(item, names)
    elif isinstance(value, list):
        for item in value:
            _register_subjects(item, names)


def _list(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a JSON list (anything else in it, or a non-list, is left out)."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    """The non-empty strings of a JSON list."""
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _brief(value: Any) -> str:
    if isinstance(value, Mapping | list):
        data = json.dumps(value, ensure_ascii=False, sort_keys=True)
        return data if len(data) <= 300 else data[:297] + "…"
    return text(value)


__all__ = ["JournalDoc", "Status", "Verification", "build_view"]
