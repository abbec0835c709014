"""Inline SVG charts for the trend page, made with ElementTree (so every text is escaped).

Each chart is ``role="img"`` with a ``<title>`` and a ``<desc>`` that says what it
shows in words; marks carry their own ``<title>``. Outcomes are told apart by shape
(circle PASS, triangle DEVIATED, square FAILED or other, hollow diamond: no RTO
measured) and named in a legend, not by colour alone.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from planb.i18n import Translator, english

WIDTH, HEIGHT = 820, 340
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 46, 64
INK, GRID, LINE, OBJECTIVE, BAR = "#1a1a1a", "#b0b0b0", "#0b4f9c", "#9b1111", "#15602a"


@dataclass(frozen=True)
class RtoMark:
    """One drill on the RTO chart."""

    label: str
    day: str
    rto: float | None
    objective: float | None
    status: str
    title: str


@dataclass(frozen=True)
class Bar:
    label: str
    percent: int
    text: str


def rto_chart(marks: Sequence[RtoMark], ident: str = "rto", tr: Translator | None = None) -> str:
    """RTO of each drill (marks joined by a line) and the objective (dashed), in seconds."""
    tr = tr or english()
    values = [v for m in marks for v in (m.rto, m.objective) if v is not None]
    top = _nice(max(values, default=1.0) * 1.1)
    over = sum(1 for m in marks
               if m.rto is not None and m.objective is not None and m.rto > m.objective)
    facts = {"count": len(marks), "first": marks[0].day, "last": marks[-1].day, "over": over,
             "none": sum(1 for m in marks if m.rto is None)}
    desc = tr._("%(count)d drill(s) from %(first)s to %(last)s. %(over)d recovery time(s) "
                "above the objective; %(none)d without a measured recovery time. The table "
                "after the chart lists every value.") % facts
    root, plot = _frame(ident, tr._("Recovery time (RTO) of each drill against its objective"),
                        desc)
    _y_axis(plot, top, tr._("seconds"), tr)
    step = (WIDTH - LEFT - RIGHT) / len(marks)
    xs = [LEFT + step * (i + 0.5) for i in range(len(marks))]
    objective = [(x, _y(m.objective, top)) for x, m in zip(xs, marks, strict=True)
                 if m.objective is not None]
    if objective:
        points = [(LEFT, objective[0][1]), *objective, (WIDTH - RIGHT, objective[-1][1])]
        _line(plot, points, OBJECTIVE, dash="8 5")
    measured = [(x, _y(m.rto, top)) for x, m in zip(xs, marks, strict=True) if m.rto is not None]
    if len(measured) > 1:
        _line(plot, measured, LINE)
    every = max(1, math.ceil(len(marks) / 12))
    for i, (x, mark) in enumerate(zip(xs, marks, strict=True)):
        _marker(plot, x, _y(mark.rto, top) if mark.rto is not None else _y(0, top),
                mark.status if mark.rto is not None else "none", mark.title)
        if i % every == 0:
            _text(plot, x, HEIGHT - BOTTOM + 18, mark.label, anchor="middle")
            _text(plot, x, HEIGHT - BOTTOM + 34, mark.day[5:], anchor="middle", size=11)
    _legend(root, tr)
    return ET.tostring(root, encoding="unicode")


def pass_chart(bars: Sequence[Bar], ident: str = "pass", tr: Translator | None = None) -> str:
    """The share of drills that passed, per month, as labelled bars (0 to 100 %)."""
    tr = tr or english()
    desc = "; ".join(f"{b.label}: {b.text}" for b in bars) + "."
    root, plot = _frame(ident, tr._("Share of drills that passed, per month"), desc)
    _y_axis(plot, 100.0, tr._("% passed"), tr)
    step = (WIDTH - LEFT - RIGHT) / len(bars)
    width = min(80.0, step * 0.6)
    for i, bar in enumerate(bars):
        x = LEFT + step * (i + 0.5)
        y = _y(bar.percent, 100.0)
        rect = ET.SubElement(plot, "rect", x=_f(x - width / 2), y=_f(y), width=_f(width),
                             height=_f(HEIGHT - BOTTOM - y), fill=BAR)
        ET.SubElement(rect, "title").text = f"{bar.label}: {bar.text}"
        _text(plot, x, y - 6, bar.text, anchor="middle", size=12)
        _text(plot, x, HEIGHT - BOTTOM + 18, bar.label, anchor="middle")
    return ET.tostring(root, encoding="unicode")


def _frame(n: str, title: str, desc: str) -> tuple[ET.Element, ET.Element]:
    root = ET.Element("svg", xmlns="http://www.w3.org/2000/svg", role="img",
                      viewBox=f"0 0 {WIDTH} {HEIGHT}", width=str(WIDTH), height=str(HEIGHT))
    root.set("aria-labelledby", f"chart-title-{n} chart-desc-{n}")
    ET.SubElement(root, "title", id=f"chart-title-{n}").text = title
    ET.SubElement(root, "desc", id=f"chart-desc-{n}").text = desc
    ET.SubElement(root, "rect", x="0", y="0", width=str(WIDTH), height=str(HEIGHT), fill="#fff")
    plot = ET.SubElement(root, "g")
    plot.set("font-family", "DejaVu Sans, Arial, sans-serif")
    return root, plot


def _y_axis(plot: ET.Element, top: float, unit: str, tr: Translator) -> None:
    for i in range(6):
        value = top * i / 5
        y = _y(value, top)
        _line(plot, [(LEFT, y), (WIDTH - RIGHT, y)], GRID if i else INK, width=1)
        label = tr.decimal(value, "0" if top >= 10 else "0.0")
        _text(plot, LEFT - 8, y + 4, label, anchor="end", size=12)
    _text(plot, 12, TOP - 22, unit, size=12)


def _legend(root: ET.Element, tr: Translator) -> None:
    g = ET.SubElement(root, "g")
    g.set("font-family", "DejaVu Sans, Arial, sans-serif")
    x = LEFT
    _line(g, [(x, 16), (x + 26, 16)], LINE)
    _text(g, x + 32, 20, "RTO", size=12)
    x += 80
    _line(g, [(x, 16), (x + 26, 16)], OBJECTIVE, dash="8 5")
    _text(g, x + 32, 20, tr._("objective"), size=12)
    x += 120
    for status, word in (("pass", tr._("PASS")), ("deviated", tr._("DEVIATED")),
                         ("failed", tr._("FAILED")), ("none", tr._("no RTO measured"))):
        _marker(g, x + 6, 16, status, None)
        _text(g, x + 16, 20, word, size=12)
        x += 40 + 8 * len(word)


def _marker(parent: ET.Element, x: float, y: float, status: str, title: str | None) -> None:
    r = 6.0
    if status == "pass":
        mark = ET.SubElement(parent, "circle", cx=_f(x), cy=_f(y), r=_f(r), fill=INK, stroke=INK)
    elif status == "deviated":
        pts = [(x, y - r - 1), (x + r + 1, y + r), (x - r - 1, y + r)]
        mark = ET.SubElement(parent, "polygon", points=_pts(pts), fill=INK, stroke=INK)
    elif status == "none":
        pts = [(x, y - r - 1), (x + r + 1, y), (x, y + r + 1), (x - r - 1, y)]
        mark = ET.SubElement(parent, "polygon", points=_pts(pts), fill="#fff", stroke=INK)
        mark.set("stroke-width", "2")
    else:
        mark = ET.SubElement(parent, "rect", x=_f(x - r), y=_f(y - r), width=_f(2 * r),
                             height=_f(2 * r), fill=OBJECTIVE, stroke=INK)
    if title:
        ET.SubElement(mark, "title").text = title


def _line(parent: ET.Element, points: Sequence[tuple[float, float]], colour: str, *,
          dash: str | None = None, width: int = 2) -> None:
    line = ET.SubElement(parent, "polyline", points=_pts(points), fill="none", stroke=colour)
    line.set("stroke-width", str(width))
    if dash:
        line.set("stroke-dasharray", dash)


def _text(parent: ET.Element, x: float, y: float, content: str, *, anchor: str = "start",
          size: int = 13) -> None:
    node = ET.SubElement(parent, "text", x=_f(x), y=_f(y), fill=INK)
    node.set("font-size", str(size))
    node.set("text-anchor", anchor)
    node.text = content


def _y(value: float, top: float) -> float:
    return HEIGHT - BOTTOM - (HEIGHT - BOTTOM - TOP) * (value / top)


def _nice(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def _f(value: float) -> str:
    return f"{value:.1f}"


def _pts(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
