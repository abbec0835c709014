"""The trend over all drills: RTO against the objective, and the pass rate per month.

:func:`build_trend` turns drill journals into a :class:`TrendView` (pure); the charts
are inline SVG strings made by :mod:`planb.reports.render.svg`, each with a data table
next to it in the page (the table is the accessible alternative, and what prints).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from planb.i18n import Translator, english
from planb.reports.render import svg
from planb.reports.render.model import JournalDoc
from planb.reports.render.view import Status, status_of, text
from planb.reports.summary import summarise


@dataclass(frozen=True)
class TrendPoint:
    """One drill on the trend."""

    seq: int
    file: str
    started_at: str
    day: str
    scenario: str
    status: Status
    rto_seconds: float | None
    objective_seconds: float | None
    signature: Status
    rto: str = ""
    objective: str = ""
    met: Status = Status("NOT MEASURED", "–", "neutral", "not measured")
    #: The calendar month (in the site's time zone) it is counted in.
    month: str = ""


@dataclass(frozen=True)
class Period:
    """Drills of one calendar month and how many passed."""

    month: str
    passed: int
    total: int
    language: str = "en"

    @property
    def percent(self) -> int:
        return round(100 * self.passed / self.total) if self.total else 0

    @property
    def percent_text(self) -> str:
        """``75 %`` (a no-break space before the sign in French)."""
        return f"{self.percent}\u00a0%" if self.language == "fr" else f"{self.percent} %"


@dataclass(frozen=True)
class TrendView:
    organisation: str
    site: str
    points: tuple[TrendPoint, ...]
    periods: tuple[Period, ...]
    rto_svg: str
    pass_svg: str
    pass_rate: str = ""
    rto_met: str = ""
    timezone: str = "UTC"

    @property
    def passed(self) -> int:
        return sum(1 for p in self.points if p.status.key == "pass")


def _pass_rate(points: Sequence[TrendPoint], tr: Translator) -> str:
    if not points:
        return tr._("no drills")
    passed = sum(1 for p in points if p.status.key == "pass")
    percent = round(100 * passed / len(points))
    return tr.ngettext("%(percent)s %% (%(passed)d of %(total)d drill passed)",
                       "%(percent)s %% (%(passed)d of %(total)d drills passed)",
                       len(points)) % {"percent": percent, "passed": passed,
                                       "total": len(points)}


def _rto_met(points: Sequence[TrendPoint], tr: Translator) -> str:
    measured = [p for p in points if p.met.tone != "neutral"]
    met = sum(1 for p in measured if p.met.tone == "pass")
    return tr.ngettext("%(met)d of %(total)d measured recovery within the objective",
                       "%(met)d of %(total)d measured recoveries within the objective",
                       len(measured)) % {"met": met, "total": len(measured)}


def build_trend(docs: Sequence[JournalDoc], tr: Translator | None = None) -> TrendView:
    """The trend over the drill journals among ``docs`` (other kinds are left out), in
    ``tr``'s language and time zone (English, UTC by default)."""
    tr = tr or english()
    points = tuple(_point(d, tr) for d in docs if d.data.get("kind") == "drill")
    points = tuple(sorted(points, key=lambda p: p.seq))
    months: dict[str, list[TrendPoint]] = {}
    for point in points:
        months.setdefault(point.month, []).append(point)
    periods = tuple(Period(m, sum(1 for p in ps if p.status.key == "pass"), len(ps),
                           tr.language) for m, ps in months.items())
    drills = [d for d in docs if d.data.get("kind") == "drill"]
    last = drills[-1].payload if drills else {}
    return TrendView(
        organisation=text(last.get("organisation")), site=text(last.get("site")),
        points=points, periods=periods,
        rto_svg=svg.rto_chart([svg.RtoMark(f"#{p.seq}", p.day, p.rto_seconds,
                                           p.objective_seconds, p.status.key,
                                           tr._("drill #%(seq)s %(scenario)s, %(day)s: RTO "
                                                "%(rto)s, objective %(objective)s, %(status)s")
                                           % {"seq": p.seq, "scenario": p.scenario,
                                              "day": p.day, "rto": p.rto,
                                              "objective": p.objective,
                                              "status": p.status.word})
                               for p in points], tr=tr) if points else "",
        pass_svg=svg.pass_chart([svg.Bar(p.month, p.percent, f"{p.percent_text} ({p.passed}/"
                                         f"{p.total})") for p in periods], tr=tr)
        if points else "",
        pass_rate=_pass_rate(points, tr), rto_met=_rto_met(points, tr),
        timezone=tr.zone_label(),
    )


def _point(doc: JournalDoc, tr: Translator) -> TrendPoint:
    p = doc.payload
    summary = summarise(p)
    # When the drill ran (its start), else when its journal was written.
    started = text(p.get("started_at")) or text(doc.data.get("created_at"))
    rto, objective = summary.rto_seconds, summary.rto_objective_seconds
    met = (status_of(None, tr) if rto is None or objective is None
           else status_of(rto <= objective, tr))
    moment = tr.moment(started)
    return TrendPoint(seq=int(doc.data.get("seq") or 0), file=doc.file,
                      started_at=tr.when(started),
                      day=f"{moment:%Y-%m-%d}" if moment else started[:10],
                      scenario=summary.scenario or "?", status=status_of(p.get("status"), tr),
                      rto_seconds=rto, objective_seconds=objective,
                      signature=status_of(doc.verification.state, tr),
                      rto=tr.seconds(rto) if rto is not None else tr._("not measured"),
                      objective=tr.seconds(objective) if objective is not None
                      else tr._("not set"), met=met, month=tr.month(started))
