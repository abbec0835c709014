"""HTML reports: one self-contained, accessible page per journal, and the trend page.

Templates live in ``planb/data/report/`` (CSS inlined, no external assets, no script).
Autoescape is on for every template: journal strings are untrusted and show as text.
The only markup passed through unescaped is the trend's SVG, which
:mod:`planb.reports.render.svg` builds with ElementTree (its texts escaped there).
"""

from __future__ import annotations

import functools

import jinja2
from markupsafe import Markup

import planb
from planb.reports.render.trend import TrendView
from planb.reports.render.view import ReportView

LANG = "en"


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report templates (autoescape on, strict undefined)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("planb", "data/report"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False,
        keep_trailing_newline=True,
    )


def render_html(view: ReportView) -> str:
    """The report page of one journal."""
    return environment().get_template("report.html.j2").render(
        v=view, lang=LANG, version=planb.__version__)


def render_trend_html(trend: TrendView) -> str:
    """The trend page over all drills (inline SVG charts and their data tables)."""
    return environment().get_template("trend.html.j2").render(
        t=trend, rto_svg=Markup(trend.rto_svg), pass_svg=Markup(trend.pass_svg),
        lang=LANG, version=planb.__version__)
