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

from planb.i18n import N_, Translator, english
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
    status_of,
    text,
)
from planb.reports.summary import as_mapping, as_number, summarise

PHASE_NAMES = {
    "steady_state": N_("steady state (before)"), "prepare": N_("prepare"),
    "fault": N_("fault"),
    "activate": N_("activate"), "verify": N_("verify"), "restore": N_("restore"),
    "steady_state_after": N_("steady state (after)"),
    # failover events ("activate" is the drill phase's word too)
    "deactivate": N_("deactivate"),
    "activation": N_("activation"), "deactivation": N_("deactivation"),
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


def build_view(doc: JournalDoc, addenda: Sequence[JournalDoc] = (),
               tr: Translator | None = None) -> ReportView:
    """The report view of ``doc``, with the ``addenda`` that annotate it (oldest first),
    in ``tr``'s language and time zone (English, UTC by default)."""
    tr = tr or english()
    names = Pseudonyms()
    kind = text(doc.data.get("kind")) or "journal"
    payload = doc.payload
    _register_subjects(payload, names)  # before any text is rendered
    notes = [_addendum(a, names, tr) for a in addenda]
    base: dict[str, Any] = {
        "kind": kind, "journal_id": text(doc.data.get("id")), "file": doc.file,
        "seq": int(doc.data.get("seq") or 0), "created_at": tr.when(doc.data.get("created_at")),
        "organisation": text(payload.get("organisation")),
        "site": text(payload.get("site")),
        "signature": _signature(doc, tr), "addenda": tuple(notes),
        "language": tr.language, "timezone": tr.zone_label(),
    }
    people = tuple(Participant(tr._("annotated the report"), a.author) for a in notes)
    observations = tuple(Note(o, f"{a.author}, {a.created_at}") for a in notes
                         for o in a.observations)
    actions = tuple(Note(o, f"{a.author}, {a.created_at}") for a in notes for o in a.actions)
    if kind == "drill":
        view = _drill(payload, names, base, tr)
    elif kind == "failover":
        view = _failover(payload, names, base, tr)
    else:
        view = ReportView(title=tr._("Journal %(file)s") % {"file": doc.file},
                          status=status_of(payload.get("status") or "recorded", tr),
                          summary=tr._("A %(kind)s journal.") % {"kind": kind},
                          details=tuple((k, names.text(_brief(v))) for k, v in payload.items()),
                          **base)
    return replace(view, participants=view.participants + people,
                    observations=view.observations + observations,
                    recommendations=view.recommendations + actions,
                    hidden_subjects=names.hidden)


def _drill(p: Mapping[str, Any], names: Pseudonyms, base: dict[str, Any],
           tr: Translator) -> ReportView:
    _ = tr._
    scenario = as_mapping(p.get("scenario"))
    name = text(scenario.get("name") or p.get("scenario")) or _("unnamed scenario")
    status = status_of(p.get("status"), tr)
    rto = _rto(p, tr)
    steady = as_mapping(p.get("steady_states"))
    before, after = as_mapping(steady.get("before")), as_mapping(steady.get("after"))
    steps = [*_list(before.get("probes")), *_list(p.get("run")), *_list(p.get("rollbacks")),
             *_list(after.get("probes"))]
    day = tr.day(p.get("started_at"))
    timeline = tuple(_step(s, names, tr, day) for s in steps)
    probes = tuple(_probe(s, probe, names, tr) for s in steps
                   for probe in _list(s.get("probes")))
    rounds = tuple(RoundRow(int(r.get("round") or 0), tr.when(r.get("started_at")),
                            tr.seconds(r.get("duration_seconds")),
                            status_of(bool(r.get("passed")), tr),
                            names.text(", ".join(text(f) for f in _strings(r.get("failing")))))
                   for r in _list(p.get("verify_rounds")))
    restore = _list(p.get("rollbacks"))
    passed = sum(1 for r in rounds if r.status.tone == "pass")
    restored = sum(1 for s in restore if s.get("status") == "ok")
    objectives = (
        Objective(_("Recovery time"),
                  f"≤ {rto.objective}" if rto.objective else _("not set"),
                  rto.measured or _("not measured"), rto.outcome),
        _steady_objective(_("Steady state before the fault"), before, tr),
        Objective(_("Fallback verified (checks and probes)"), _("one verify round passes"),
                  tr.ngettext("%(passed)d of %(total)d round passed",
                              "%(passed)d of %(total)d rounds passed", len(rounds))
                  % {"passed": passed, "total": len(rounds)},
                  status_of(any(r.status.tone == "pass" for r in rounds), tr)
                  if rounds else status_of(None, tr)),
        Objective(_("Restore"), _("every restore step succeeds"),
                  tr.ngettext("%(ok)d of %(total)d step ok", "%(ok)d of %(total)d steps ok",
                              len(restore)) % {"ok": restored, "total": len(restore)},
                  status_of(all(s.get("status") == "ok" for s in restore), tr)
                  if restore else status_of(None, tr)),
        _steady_objective(_("Steady state after the restore"), after, tr),
        *_rpo_objectives(as_mapping(p.get("rpo")), tr),
    )
    subjects = sorted({row.subject for row in probes if row.subject})
    participants = [Participant(_("operator (ran the drill)"),
                                text(p.get("operator")) or _("unknown"))]
    if subjects:
        participants.append(Participant(
            _("sampled accounts probed (%(count)d, pseudonymised)") % {"count": len(subjects)},
            ", ".join(subjects)))
    findings = tuple(Note(names.text(_finding(f, tr)),
                          _("drill finding (%(kind)s)") % {"kind": _kind(f.get("kind"), tr)})
                     for f in _list(p.get("findings")))
    collector = tuple(Note(names.text(e), _("collector error")) for e in
                      _strings(p.get("collector_errors")))
    scope = (
        (_("scenario"), name), (_("description"), names.text(scenario.get("description"))),
        (_("scenario file"), text(scenario.get("source"))),
        (_("scenario sha256"), text(scenario.get("sha256"))),
        (_("phases"), ", ".join(dict.fromkeys(_phase(s.get("phase"), tr) for s in steps))),
        (_("drill id"), text(p.get("drill_id"))), (_("started"), tr.when(p.get("started_at"))),
        (_("ended"), tr.when(p.get("ended_at"))),
        (_("duration"), tr.seconds(p.get("duration_seconds"))),
    )
    facts = {"name": name, "status": status.word, "measured": rto.measured,
             "objective": rto.objective}
    if rto.measured:
        summary = _("Drill '%(name)s' ended %(status)s: recovery in %(measured)s against an "
                    "objective of %(objective)s.") % facts
    elif rto.objective:
        summary = _("Drill '%(name)s' ended %(status)s: recovery not measured (objective "
                    "%(objective)s).") % facts
    else:
        summary = _("Drill '%(name)s' ended %(status)s.") % facts
    return ReportView(
        title=_("Drill report: %(name)s") % {"name": name}, status=status, summary=summary,
        rto=rto, timeline_day=day,
        scope=tuple((k, v) for k, v in scope if v), objectives=objectives,
        participants=tuple(participants), timeline=timeline, rounds=rounds, probes=probes,
        observations=findings + collector,
        versions=tuple((k, text(v) or _("not known"))
                       for k, v in as_mapping(p.get("versions")).items()),
        footprint=tuple(FootprintRow(text(f.get("host")), text(f.get("service")),
                                     tr.size(f.get("memory_bytes")), tr.size(f.get("disk_bytes")))
                        for f in _list(p.get("footprint"))),
        **base)


#: Journal kinds, as the report's header names them.
KIND_NAMES = (N_("drill"), N_("failover"), N_("journal"), N_("addendum"), N_("key-rotation"))
_KINDS = {"failed": N_("failed"), "deviated": N_("deviated"), "interrupted": N_("interrupted")}


def _kind(value: Any, tr: Translator) -> str:
    word = text(value)
    return tr._(_KINDS[word]) if word in _KINDS else word


def _finding(finding: Mapping[str, Any], tr: Translator) -> str:
    """A drill finding in ``tr``'s language: its template (an English msgid) translated and
    filled with its values, numbers in the locale's format; else its message as written."""
    template, values = finding.get("template"), finding.get("values")
    if not isinstance(template, str) or not template or not isinstance(values, Mapping):
        return text(finding.get("message"))
    shown = {k: _value(v, tr) for k, v in values.items() if isinstance(k, str)}
    try:
        return tr._(template) % shown
    except (KeyError, ValueError, TypeError):  # a journal or catalogue that does not fit
        return text(finding.get("message"))


def _value(value: Any, tr: Translator) -> str:
    if isinstance(value, float):
        return tr.decimal(value, "0.0")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return text(value)


def _phase(value: Any, tr: Translator) -> str:
    phase = text(value)
    return tr._(PHASE_NAMES[phase]) if phase in PHASE_NAMES else phase


def _failover(p: Mapping[str, Any], names: Pseudonyms, base: dict[str, Any],
              tr: Translator) -> ReportView:
    _ = tr._
    event_key = text(p.get("event")) or "transition"
    event = _phase(event_key, tr) if event_key in PHASE_NAMES else event_key
    status = status_of(p.get("result"), tr)
    steps = _list(p.get("steps"))
    day = tr.day(p.get("started_at"))
    timeline = tuple(_step({**s, "phase": event_key}, names, tr, day) for s in steps)
    completed = status_of(p.get("result") == "completed", tr)
    modes = f"{_mode(p.get('from_mode'), tr)} → {_mode(p.get('to_mode'), tr)}"
    result = status_of(p.get("result"), tr).word.lower() if p.get("result") else _("unknown")
    objectives = (
        Objective(_("%(event)s completes") % {"event": event.capitalize()}, modes,
                  result, completed),
    )
    scope = (
        (_("event"), event), (_("drill"), _yes(p.get("drill"), tr)),
        (_("incident id"), text(p.get("incident_id"))),
        (_("reason"), names.text(p.get("reason"))),
        (_("mode"), modes),
        (_("started"), tr.when(p.get("started_at"))), (_("ended"), tr.when(p.get("ended_at"))),
        (_("duration"), tr.seconds(p.get("duration_seconds"))),
        (_("incident duration"), tr.seconds(p.get("incident_duration_seconds"))),
    )
    texts = _strings(p.get("warnings"))
    templates = _list(p.get("warning_templates"))
    if len(templates) == len(texts):  # each warning with its template: translated
        texts = [_finding({**t, "message": w}, tr) for t, w in zip(templates, texts, strict=True)]
    warnings = tuple(Note(names.text(w), _("warning")) for w in texts)
    return ReportView(
        title=_("Failover report: %(event)s") % {"event": event}, status=status,
        summary=_("Failover %(event)s %(result)s: %(modes)s.")
        % {"event": event, "result": result, "modes": modes},
        scope=tuple((k, v) for k, v in scope if v), objectives=objectives,
        participants=(Participant(_("operator"), text(p.get("operator")) or _("unknown")),),
        timeline=timeline, timeline_day=day, observations=warnings, **base)


_MODES = {"standby": N_("standby"), "active": N_("active")}


def _mode(value: Any, tr: Translator) -> str:
    word = text(value)
    return tr._(_MODES[word]) if word in _MODES else word


def _yes(value: Any, tr: Translator) -> str:
    if isinstance(value, bool):
        return tr._("yes") if value else tr._("no")
    return text(value)


def _rto(p: Mapping[str, Any], tr: Translator) -> Rto:
    summary = summarise(p)
    measured, target = summary.rto_seconds, summary.rto_objective_seconds
    if measured is None or target is None:
        outcome = status_of(None, tr)
    else:
        outcome = status_of(measured <= target, tr)
    return Rto(tr.seconds(measured) if measured is not None else "",
               tr.seconds(target) if target is not None else "", outcome, measured, target)


def _rpo_objectives(rpo: Mapping[str, Any], tr: Translator) -> tuple[Objective, ...]:
    """The data-loss objectives of a drill that measured an RPO (traffic.stop): the RPO
    against objectives.rpo_seconds, and nothing sent before the backup missing."""
    if not rpo:
        return ()
    _ = tr._
    seconds, target = as_number(rpo.get("seconds")), as_number(rpo.get("objective_seconds"))
    messages = rpo.get("messages")
    measured = (tr.seconds(seconds) if seconds is not None else _("not measured")) + (
        ", " + tr.ngettext("%(count)d message lost", "%(count)d messages lost", messages)
        % {"count": messages} if isinstance(messages, int) else "")
    met = rpo.get("met")
    lost = rpo.get("lost_before_backup")
    return (
        Objective(_("Data loss (RPO)"),
                  f"≤ {tr.seconds(target)}" if target is not None else _("not set"), measured,
                  status_of(met if isinstance(met, bool) else None, tr)),
        Objective(_("Messages sent before the backup, after the restore"),
                  _("none missing"),
                  tr.ngettext("%(count)d missing", "%(count)d missing", lost)
                  % {"count": lost} if isinstance(lost, int) else _("not measured"),
                  status_of(lost == 0 if isinstance(lost, int) else None, tr)),
    )


def _steady_objective(name: str, steady: Mapping[str, Any], tr: Translator) -> Objective:
    met = steady.get("steady_state_met")
    checks = _list(steady.get("probes"))
    ok = sum(1 for c in checks if c.get("status") == "ok")
    measured = (tr.ngettext("%(ok)d of %(total)d check ok", "%(ok)d of %(total)d checks ok",
                            len(checks)) % {"ok": ok, "total": len(checks)}
                if checks else tr._("not checked"))
    return Objective(name, tr._("every steady-state check holds"), measured,
                     status_of(met if isinstance(met, bool) else None, tr))


def _step(s: Mapping[str, Any], names: Pseudonyms, tr: Translator,
          day: str = "") -> TimelineStep:
    status = status_of(s.get("status"), tr)
    output = names.text(s.get("output")).strip()
    detail = names.text(s.get("error")) or next(
        (names.text(p.get("detail")) for p in _list(s.get("probes")) if not p.get("ok")), "")
    detail = detail or (output.splitlines() or [""])[-1]
    return TimelineStep(phase=_phase(s.get("phase"), tr), name=names.text(s.get("name")),
                        action=text(s.get("action")),
                        started_at=tr.clock(s.get("started_at"), day),
                        duration=tr.seconds(s.get("duration_seconds")), status=status,
                        detail=detail, output=output, round=_int(s.get("round")),
                        seconds=as_number(s.get("duration_seconds")) or 0.0)


def _probe(step: Mapping[str, Any], probe: Mapping[str, Any], names: Pseudonyms,
           tr: Translator) -> ProbeRow:
    # The subject first: text() then hides that login wherever else it appears.
    subject = names.subject(probe.get("subject"))
    return ProbeRow(step=names.text(step.get("name")), round=_int(step.get("round")),
                    name=text(probe.get("name")), subject=subject,
                    status=status_of("ok" if probe.get("ok") else "failed", tr),
                    duration=tr.seconds(probe.get("duration_seconds")),
                    detail=names.text(probe.get("detail")),
                    seconds=as_number(probe.get("duration_seconds")) or 0.0)


def _addendum(doc: JournalDoc, names: Pseudonyms, tr: Translator) -> AddendumView:
    p = doc.payload
    return AddendumView(file=doc.file, created_at=tr.when(doc.data.get("created_at")),
                        author=text(p.get("author")) or tr._("unknown"),
                        signature=_signature(doc, tr).status,
                        observations=tuple(names.text(o) for o in _strings(p.get("observations"))),
                        actions=tuple(names.text(a) for a in _strings(p.get("actions"))))


def _signature(doc: JournalDoc, tr: Translator) -> SignatureView:
    v = doc.verification
    return SignatureView(state=v.state, status=status_of(v.state, tr),
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
