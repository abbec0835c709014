"""HTML reports: one self-contained, accessible page per journal, and the trend page.

Templates live in ``planb/data/report/`` (CSS inlined, no external assets, no script).
Autoescape is on for every template: journal strings are untrusted and show as text.
The only markup passed through unescaped is the trend's SVG, which
:mod:`planb.reports.render.svg` builds with ElementTree (its texts escaped there).
"""

from __future__ import annotations

import jinja2
from markupsafe import Markup

import planb
from planb.i18n import Translator, english
from planb.reports.render.trend import TrendView
from planb.reports.render.view import ReportView


def environment(tr: Translator | None = None) -> jinja2.Environment:
    """The Jinja2 environment of the report templates (autoescape on, strict undefined),
    with ``tr``'s messages for ``{% trans %}`` and ``_()`` (catalogue text is trusted
    markup; the values put into it are escaped)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("planb", "data/report"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False,
        keep_trailing_newline=True, extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True
    (tr or english()).install(env)
    return env


def render_html(view: ReportView, tr: Translator | None = None) -> str:
    """The report page of one journal, in ``tr``'s language (English by default)."""
    tr = tr or english()
    return environment(tr).get_template("report.html.j2").render(
        v=view, lang=tr.language, colon=tr.colon, version=planb.__version__)


def render_trend_html(trend: TrendView, tr: Translator | None = None) -> str:
    """The trend page over all drills (inline SVG charts and their data tables)."""
    tr = tr or english()
    return environment(tr).get_template("trend.html.j2").render(
        t=trend, rto_svg=Markup(trend.rto_svg), pass_svg=Markup(trend.pass_svg),
        lang=tr.language, version=planb.__version__)
