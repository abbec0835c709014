"""Render journals for people and machines: HTML, Markdown, JSON, JUnit, and the trend page.

The renderers are pure functions of a :class:`~planb.reports.render.model.JournalDoc`
(the journal as written and its verification state) and its addenda:

- :func:`render_report` with ``fmt`` in :data:`FORMATS`;
- :func:`render_trend` over all journals (drills only are drawn);
- :func:`planb.reports.render.load.load_docs` reads and verifies a journals folder.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from planb.i18n import Translator
from planb.reports.render.html import render_html, render_trend_html
from planb.reports.render.junit import render_junit
from planb.reports.render.markdown import render_markdown
from planb.reports.render.model import JournalDoc, Verification, build_view
from planb.reports.render.trend import build_trend

FORMATS = ("html", "md", "json", "junit")
REPORT_FORMAT = "planb-report/1"


def render_report(fmt: str, doc: JournalDoc, addenda: Sequence[JournalDoc] = (),
                  tr: Translator | None = None) -> str:
    """``doc`` (with its ``addenda``) rendered as ``fmt``: html, md, json or junit.

    HTML and Markdown are for people, in ``tr``'s language (English by default); JSON
    and JUnit are for machines and stay in English (stable keys and words).
    """
    if fmt in ("html", "md"):
        view = build_view(doc, addenda, tr)
        return render_html(view, tr) if fmt == "html" else render_markdown(view, tr)
    view = build_view(doc, addenda)
    if fmt == "junit":
        return render_junit(view)
    if fmt == "json":
        data: dict[str, Any] = {"format": REPORT_FORMAT, "report": dataclasses.asdict(view)}
        if view.hidden_subjects:
            # The signed journal holds names the report hides: it is not copied here.
            data["journal_omitted"] = ("it holds names this report pseudonymises; "
                                       "'planb report show ID --json' prints it as written")
        else:
            data["journal"] = doc.data
            data["addenda"] = [a.data for a in addenda]
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


def render_trend(docs: Sequence[JournalDoc], tr: Translator | None = None) -> str:
    """The trend page (HTML) over the drill journals among ``docs``, in ``tr``'s language."""
    return render_trend_html(build_trend(docs, tr), tr)


__all__ = ["FORMATS", "JournalDoc", "Verification", "build_view", "render_report",
           "render_trend"]
