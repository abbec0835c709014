"""JUnit XML for a journal: one testsuite, one testcase per step, probe and objective.

CI servers and test dashboards read it. Mapping (the counts in the ``testsuite`` and
``testsuites`` elements are computed from the same testcases):

- step ``ok``/``completed``: passed; ``failed`` or ``forced`` (failed, overridden
  with --force): ``failure``; ``error``: ``error``; ``skipped``/``unavailable``:
  ``skipped``; any other status: ``error`` (unknown status).
- probe: passed when ``ok``, else ``failure``.
- objective: passed when met, ``failure`` when not met, ``skipped`` when not measured.

Class names are ``<kind>.<phase>``, ``<kind>.probe.<probe>`` and ``<kind>.objective``.
"""

from __future__ import annotations

from planb.junit import Case, Outcome, junit_xml
from planb.reports.render.view import ReportView, Status

_PASSED = {"OK", "COMPLETED", "PASS", "MET"}
_FAILURE = {"FAILED", "FORCED", "NOT MET", "DEVIATED"}
_SKIPPED = {"SKIPPED", "UNAVAILABLE", "NOT MEASURED"}


def cases(view: ReportView) -> list[Case]:
    """The testcases of a report, in timeline order, then probes, then objectives."""
    kind = view.kind
    found: list[Case] = []
    for step in view.timeline:
        name = step.name + (f" (round {step.round})" if step.round else "")
        found.append(Case(f"{kind}.{_slug(step.phase)}", name, step.seconds,
                          _outcome(step.status), step.detail or step.status.word, step.output))
    for probe in view.probes:
        where = probe.step + (f" (round {probe.round})" if probe.round else "")
        name = f"{where}: {probe.subject}" if probe.subject else where
        found.append(Case(f"{kind}.probe.{probe.name}", name, probe.seconds,
                          _outcome(probe.status), probe.detail or probe.status.word))
    for objective in view.objectives:
        found.append(Case(f"{kind}.objective", objective.name, 0.0, _outcome(objective.outcome),
                          f"target {objective.target}; measured {objective.measured}"))
    return found


def render_junit(view: ReportView) -> str:
    """The journal as a JUnit XML document (UTF-8 text with its declaration)."""
    properties = (("status", view.status.word), ("journal", view.file),
                  ("sha256", view.signature.sha256),
                  ("signature", view.signature.status.word),
                  ("key_fingerprint", view.signature.key_fingerprint),
                  ("rto", view.rto.measured if view.rto else ""),
                  ("rto_objective", view.rto.objective if view.rto else ""))
    return junit_xml(view.title, cases(view), seconds=sum(s.seconds for s in view.timeline),
                     timestamp=view.created_at.removesuffix(" UTC").replace(" ", "T"),
                     suites_name=f"planb {view.file}", suite_id=view.journal_id,
                     properties=properties)


def _outcome(status: Status) -> Outcome:
    if status.word in _PASSED:
        return "passed"
    if status.word in _FAILURE:
        return "failure"
    if status.word in _SKIPPED:
        return "skipped"
    return "error"


def _slug(phase: str) -> str:
    return "_".join(phase.replace("(", "").replace(")", "").split())
