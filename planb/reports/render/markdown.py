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
from planb.reports.render.view import NONE_RECORDED, Note, ReportView, Status

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def md(value: object) -> str:
    """Inline text with Markdown and HTML punctuation escaped, on one line."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return _SPECIAL.sub(r"\\\1", text)


def render_markdown(view: ReportView) -> str:
    """The report of one journal as Markdown."""
    out: list[str] = [f"# {md(view.title)}", ""]
    place = " · ".join(x for x in (view.organisation, f"site {view.site}" if view.site else "")
                       if x)
    if place:
        out += [md(place), ""]
    out += [f"**Outcome: {_status(view.status)}**", "", md(view.summary), ""]
    out += ["## Summary", ""]
    facts = [("Outcome", _status(view.status))]
    if view.rto:
        facts += [("Recovery time (RTO)", md(view.rto.measured or "not measured")),
                  ("RTO objective", md(view.rto.objective or "not set")),
                  ("RTO against objective", _status(view.rto.outcome))]
    facts += [("Journal", f"`{view.file}`"), ("Written", md(view.created_at)),
              ("Signature", _status(view.signature.status))]
    out += _facts(facts)
    out += ["## Scope", ""]
    out += _facts([(md(k), md(v)) for k, v in view.scope]) if view.scope else _none()
    if view.details:
        out += ["### Recorded details", "", *_facts([(md(k), md(v)) for k, v in view.details])]
    out += ["## Objectives and outcome", ""]
    out += _table(("Objective", "Target", "Measured", "Outcome"),
                  [(md(o.name), md(o.target), md(o.measured), _status(o.outcome))
                   for o in view.objectives])
    out += ["## Participants", ""]
    out += [f"- **{md(p.role)}**: {md(p.name)}" for p in view.participants] + [""] \
        if view.participants else _none()
    on = f", on {view.timeline_day}" if view.timeline_day else ""
    out += ["## Timeline", "", f"Steps in the order they ran (times in UTC{on}).", ""]
    out += _table(("Phase", "Step", "Action", "Start", "Duration", "Status", "Detail"),
                  [(md(s.phase + (f" (round {s.round})" if s.round else "")), md(s.name),
                    md(s.action), md(s.started_at), md(s.duration), _status(s.status),
                    md(s.detail)) for s in view.timeline])
    if view.rounds:
        out += ["### Verify rounds", ""]
        out += _table(("Round", "Start", "Duration", "Result", "Failing"),
                      [(str(r.number), md(r.started_at), md(r.duration), _status(r.status),
                        md(r.failing)) for r in view.rounds])
    outputs = [s for s in view.timeline if s.output]
    if outputs:
        out += ["### Step outputs", ""]
        for s in outputs:
            out += [f"**{md(s.phase)}: {md(s.name)}** ({s.status.word})", "",
                    *_fence(s.output), ""]
    out += ["## Checks and probes", "", "Subjects are pseudonymised.", ""]
    out += _table(("Step", "Probe", "Subject", "Result", "Duration", "Detail"),
                  [(md(p.step), md(p.name), md(p.subject or "—"), _status(p.status),
                    md(p.duration), md(p.detail)) for p in view.probes])
    out += ["## Observations", "", *_notes(view.observations)]
    out += ["## Recommendations and follow-up actions", "", *_notes(view.recommendations)]
    out += ["## Environment", "", "### Versions", ""]
    out += _facts([(md(k), md(v)) for k, v in view.versions]) if view.versions else _none()
    out += ["### Footprint", ""]
    out += _table(("Host", "Service", "Memory", "Disk"),
                  [(md(f.host), md(f.service), md(f.memory), md(f.disk))
                   for f in view.footprint])
    sig = view.signature
    out += ["## Signature and chain", ""]
    out += _facts([
        ("State", _status(sig.status) + (f" — {md(sig.problem)}" if sig.problem else "")),
        ("Signing key fingerprint", f"`{sig.key_fingerprint}`"),
        *([("Verified with", f"`{sig.verified_by}`")] if sig.verified_by else []),
        ("Journal SHA-256", f"`{sig.sha256}`"),
        ("Previous journal SHA-256", f"`{sig.previous_sha256}`" if sig.previous_sha256
         else "none (first journal)"),
        ("Journal id", f"`{md(view.journal_id)}`"),
    ])
    if view.addenda:
        out += ["### Addenda", ""]
        out += _table(("Addendum", "Written", "Author", "Signature", "Observations", "Actions"),
                      [(f"`{a.file}`", md(a.created_at), md(a.author), _status(a.signature),
                        str(len(a.observations)), str(len(a.actions))) for a in view.addenda])
    out += ["---", "", f"Rendered by planb {planb.__version__} from `{view.file}`. Check it "
            "with only the public key: `planb report verify --public-key signing.pub DIR`.", ""]
    return "\n".join(out)


def _status(status: Status) -> str:
    return f"{status.symbol} {status.word}"


def _none() -> list[str]:
    return [f"_{NONE_RECORDED}_", ""]


def _facts(rows: Iterable[tuple[str, str]]) -> list[str]:
    return [f"- **{label}**: {value}" for label, value in rows] + [""]


def _notes(notes: Sequence[Note]) -> list[str]:
    if not notes:
        return _none()
    return [f"- {md(n.text)} ({md(n.source)})" for n in notes] + [""]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    if not rows:
        return _none()
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _fence(text: str) -> list[str]:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]
