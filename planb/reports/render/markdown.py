"""Markdown reports (CommonMark with GitHub tables): the same sections as the HTML page.

Journal strings are untrusted: inline text has Markdown and HTML punctuation
backslash-escaped (so ``<script>`` stays text in any renderer), table cells also lose
their line breaks, and step outputs go in fenced code blocks whose fence is longer
than any backtick run inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import planb
from planb.i18n import Translator, english
from planb.reports.render.view import NONE_RECORDED, Note, ReportView, Status

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def md(value: object) -> str:
    """Inline text with Markdown and HTML punctuation escaped, on one line."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return _SPECIAL.sub(r"\\\1", text)


def render_markdown(view: ReportView, tr: Translator | None = None) -> str:
    """The report of one journal as Markdown, in ``tr``'s language (English by default)."""
    tr = tr or english()
    _ = tr._
    none = _none(tr)
    out: list[str] = [f"# {md(view.title)}", ""]
    site = _("site %(site)s") % {"site": view.site} if view.site else ""
    place = " · ".join(x for x in (view.organisation, site) if x)
    if place:
        out += [md(place), ""]
    outcome = _("Outcome:")
    out += [f"**{outcome} {_status(view.status)}**", "", md(view.summary), ""]
    out += ["## " + _("Summary"), ""]
    facts = [(_("Outcome"), _status(view.status))]
    if view.rto:
        facts += [(_("Recovery time (RTO)"), md(view.rto.measured or _("not measured"))),
                  (_("RTO objective"), md(view.rto.objective or _("not set"))),
                  (_("RTO against objective"), _status(view.rto.outcome))]
    facts += [(_("Journal"), f"`{view.file}`"), (_("Written"), md(view.created_at)),
              (_("Signature"), _status(view.signature.status))]
    out += _facts(facts, tr.colon)
    out += ["## " + _("Scope"), ""]
    out += _facts([(md(k), md(v)) for k, v in view.scope], tr.colon) if view.scope else none
    if view.details:
        out += ["### " + _("Recorded details"), "",
                *_facts([(md(k), md(v)) for k, v in view.details], tr.colon)]
    out += ["## " + _("Objectives and outcome"), ""]
    out += _table((_("Objective"), _("Target"), _("Measured"), _("Outcome")),
                  [(md(o.name), md(o.target), md(o.measured), _status(o.outcome))
                   for o in view.objectives], none)
    out += ["## " + _("Participants"), ""]
    out += [f"- **{md(p.role)}**{tr.colon}{md(p.name)}" for p in view.participants] + [""] \
        if view.participants else none
    if view.timeline_day:
        caption = _("Steps in the order they ran (times in %(zone)s, on %(day)s)") % {
            "zone": view.timezone, "day": view.timeline_day}
    else:
        caption = _("Steps in the order they ran (times in %(zone)s)") % {"zone": view.timezone}
    out += ["## " + _("Timeline"), "", md(caption) + ".", ""]
    out += _table((_("Phase"), _("Step"), _("Action"), _("Start"), _("Duration"), _("Status"),
                   _("Detail")),
                  [(md(s.phase + (" " + _("(round %(n)s)") % {"n": s.round} if s.round else "")),
                    md(s.name), md(s.action), md(s.started_at), md(s.duration),
                    _status(s.status), md(s.detail)) for s in view.timeline], none)
    if view.rounds:
        out += ["### " + _("Verify rounds"), ""]
        out += _table((_("Round"), _("Start"), _("Duration"), _("Result"), _("Failing")),
                      [(str(r.number), md(r.started_at), md(r.duration), _status(r.status),
                        md(r.failing)) for r in view.rounds], none)
    outputs = [s for s in view.timeline if s.output]
    if outputs:
        out += ["### " + _("Step outputs"), ""]
        for s in outputs:
            out += [f"**{md(s.phase)}{tr.colon}{md(s.name)}** ({s.status.word})", "",
                    *_fence(s.output), ""]
    out += ["## " + _("Checks and probes"), "", _("Subjects are pseudonymised."), ""]
    out += _table((_("Step"), _("Probe"), _("Subject"), _("Result"), _("Duration"),
                   _("Detail")),
                  [(md(p.step), md(p.name), md(p.subject or "—"), _status(p.status),
                    md(p.duration), md(p.detail)) for p in view.probes], none)
    out += ["## " + _("Observations"), "", *_notes(view.observations, none)]
    out += ["## " + _("Recommendations and follow-up actions"), "",
            *_notes(view.recommendations, none)]
    out += ["## " + _("Environment"), "", "### " + _("Versions"), ""]
    out += _facts([(md(k), md(v)) for k, v in view.versions], tr.colon) if view.versions else none
    out += ["### " + _("Footprint"), ""]
    out += _table((_("Host"), _("Service"), _("Memory"), _("Disk")),
                  [(md(f.host), md(f.service), md(f.memory), md(f.disk))
                   for f in view.footprint], none)
    sig = view.signature
    out += ["## " + _("Signature and chain"), ""]
    out += _facts([
        (_("State"), _status(sig.status) + (f" — {md(sig.problem)}" if sig.problem else "")),
        (_("Signing key fingerprint"), f"`{sig.key_fingerprint}`"),
        *([(_("Verified with"), f"`{sig.verified_by}`")] if sig.verified_by else []),
        (_("Journal SHA-256"), f"`{sig.sha256}`"),
        (_("Previous journal SHA-256"), f"`{sig.previous_sha256}`" if sig.previous_sha256
         else _("none (first journal)")),
        (_("Journal id"), f"`{md(view.journal_id)}`"),
    ], tr.colon)
    if view.addenda:
        out += ["### " + _("Addenda"), ""]
        out += _table((_("Addendum"), _("Written"), _("Author"), _("Signature"),
                       _("Observations"), _("Actions")),
                      [(f"`{a.file}`", md(a.created_at), md(a.author), _status(a.signature),
                        str(len(a.observations)), str(len(a.actions))) for a in view.addenda],
                      none)
    out += ["---", "", _("Rendered by planb %(version)s from %(file)s. Check it with only the "
                         "public key: %(command)s.") % {
        "version": planb.__version__, "file": f"`{view.file}`",
        "command": "`planb report verify --public-key signing.pub DIR`"}, ""]
    return "\n".join(out)


def _status(status: Status) -> str:
    return f"{status.symbol} {status.word}"


def _none(tr: Translator) -> list[str]:
    return [f"_{tr._(NONE_RECORDED)}_", ""]


def _facts(rows: Iterable[tuple[str, str]], colon: str = ": ") -> list[str]:
    return [f"- **{label}**{colon}{value}" for label, value in rows] + [""]


def _notes(notes: Sequence[Note], none: list[str]) -> list[str]:
    if not notes:
        return none
    return [f"- {md(n.text)} ({md(n.source)})" for n in notes] + [""]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]],
           none: list[str]) -> list[str]:
    if not rows:
        return none
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _fence(text: str) -> list[str]:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]
