"""The trend over all drills: RTO against the objective, and the pass rate per month.

:func:`build_trend` turns drill journals into a :class:`TrendView` (pure); the charts
are inline SVG strings made by :mod:`planb.reports.render.svg`, each with a data table
next to it in the page (the table is the accessible alternative, and what prints).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from planb.reports.render import svg
from planb.reports.render.model import JournalDoc
from planb.reports.render.view import Status, seconds, status_of, text, when
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

    @property
    def rto(self) -> str:
        return seconds(self.rto_seconds) if self.rto_seconds is not None else "not measured"

    @property
    def objective(self) -> str:
        return seconds(self.objective_seconds) if self.objective_seconds is not None else "not set"

    @property
    def met(self) -> Status:
        if self.rto_seconds is None or self.objective_seconds is None:
            return status_of(None)
        return status_of(self.rto_seconds <= self.objective_seconds)


@dataclass(frozen=True)
class Period:
    """Drills of one calendar month and how many passed."""

    month: str
    passed: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.passed / self.total) if self.total else 0


@dataclass(frozen=True)
class TrendView:
    organisation: str
    site: str
    points: tuple[TrendPoint, ...]
    periods: tuple[Period, ...]
    rto_svg: str
    pass_svg: str

    @property
    def passed(self) -> int:
        return sum(1 for p in self.points if p.status.word == "PASS")

    @property
    def pass_rate(self) -> str:
        if not self.points:
            return "no drills"
        return f"{round(100 * self.passed / len(self.points))} % ({self.passed} of " \
               f"{len(self.points)} drills passed)"

    @property
    def rto_met(self) -> str:
        measured = [p for p in self.points if p.met.tone != "neutral"]
        met = sum(1 for p in measured if p.met.tone == "pass")
        return f"{met} of {len(measured)} measured recoveries within the objective"


def build_trend(docs: Sequence[JournalDoc]) -> TrendView:
    """The trend over the drill journals among ``docs`` (other kinds are left out)."""
    points = tuple(_point(d) for d in docs if d.data.get("kind") == "drill")
    points = tuple(sorted(points, key=lambda p: p.seq))
    months: dict[str, list[TrendPoint]] = {}
    for point in points:
        months.setdefault(point.day[:7], []).append(point)
    periods = tuple(Period(m, sum(1 for p in ps if p.status.word == "PASS"), len(ps))
                    for m, ps in months.items())
    drills = [d for d in docs if d.data.get("kind") == "drill"]
    last = drills[-1].payload if drills else {}
    return TrendView(
        organisation=text(last.get("organisation")), site=text(last.get("site")),
        points=points, periods=periods,
        rto_svg=svg.rto_chart([svg.RtoMark(f"#{p.seq}", p.day, p.rto_seconds,
                                           p.objective_seconds, p.status.word.lower(),
                                           f"drill #{p.seq} {p.scenario}, {p.day}: RTO {p.rto},"
                                           f" objective {p.objective}, {p.status.word}")
                               for p in points]) if points else "",
        pass_svg=svg.pass_chart([svg.Bar(p.month, p.percent, f"{p.percent} % ({p.passed}/"
                                         f"{p.total})") for p in periods]) if points else "",
    )


def _point(doc: JournalDoc) -> TrendPoint:
    p = doc.payload
    summary = summarise(p)
    # When the drill ran (its start), else when its journal was written.
    started = text(p.get("started_at")) or text(doc.data.get("created_at"))
    return TrendPoint(seq=int(doc.data.get("seq") or 0), file=doc.file,
                      started_at=when(started), day=started[:10],
                      scenario=summary.scenario or "?", status=status_of(p.get("status")),
                      rto_seconds=summary.rto_seconds,
                      objective_seconds=summary.rto_objective_seconds,
                      signature=status_of(doc.verification.state))
