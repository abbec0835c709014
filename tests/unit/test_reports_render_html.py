"""The HTML report and trend page: self-contained, escaped, accessible structure."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from planb.config import SiteConfig
from planb.reports.annotate import annotate
from planb.reports.render import render_report, render_trend
from planb.reports.render.load import load_docs
from tests.unit.test_reports_render_model import (
    doc_of,
    drill_payload,
    signed_store,
    write_drills,
)
from tests.unit.test_reports_render_model import site as site  # noqa: F401 (fixture)

SCRIPT = '<script>alert("pwned")</script>'


class Outline(HTMLParser):
    """What a screen reader user navigates by: landmarks, headings, table headers."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


def assert_accessible_structure(html: str) -> Outline:
    page = outline(html)
    tags = [t for t, _ in page.tags]
    assert page.tags[0][0] == "html" and page.tags[0][1].get("lang") == "en"
    for landmark in ("header", "nav", "main", "footer"):
        assert tags.count(landmark) == 1, landmark
    assert page.headings[0] == 1 and page.headings.count(1) == 1
    # No heading level is skipped going down.
    assert all(b <= a + 1 for a, b in zip(page.headings, page.headings[1:], strict=False))
    assert tags.count("table") == tags.count("caption")
    assert all(attrs.get("scope") in ("col", "row") for t, attrs in page.tags if t == "th")
    # Self-contained: no external stylesheet, script, image or font.
    assert not [a for t, a in page.tags if t in ("link", "script", "img", "iframe")]
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "@media print" in html
    assert "{{" not in html and "{%" not in html
    return page


def test_report_page_structure_and_content(site: SiteConfig) -> None:
    journals = write_drills(site)
    html = render_report("html", doc_of(journals[1]))
    assert_accessible_structure(html)
    assert "Drill report: primary-outage" in html
    # Status is a word with a symbol, never colour alone.
    assert "⚠</span> DEVIATED" in html and "✘</span> NOT MET" in html
    assert "75.5 s" in html and "60.0 s" in html
    for section in ("Scope", "Objectives and outcome", "Participants", "Timeline",
                    "Checks and probes", "Observations",
                    "Recommendations and follow-up actions", "Environment",
                    "Signature and chain"):
        assert f">{section}</h2>" in html, section
    assert journals[1].envelope.key_fingerprint in html and journals[1].sha256 in html
    assert "agent-0123456789ab" in html and "synapse" in html and "238.4 MiB" in html
    assert "none recorded" in html  # no recommendations yet


def test_journal_strings_are_escaped(site: SiteConfig) -> None:
    store = signed_store(site)
    stored = store.append("drill", drill_payload(site, output=f"boom {SCRIPT} {{{{ x }}}}"))
    html = render_report("html", doc_of(stored))
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
    assert not [t for t, _ in outline(html).tags if t == "script"]


def test_report_shows_addenda(site: SiteConfig) -> None:
    journals = write_drills(site)
    store = signed_store(site)
    annotate(store, str(journals[0].seq), observations=[f"slow start {SCRIPT}"],
             actions=["pre-warm caches"], author="Agnès Martin")
    docs = load_docs(site.state_dir / "journals", [store.signer.public_key])  # type: ignore[union-attr]
    html = render_report("html", docs[0], [docs[3]])
    assert "slow start &lt;script&gt;" in html and "pre-warm caches" in html
    assert "Agnès Martin" in html and docs[3].file in html


@pytest.mark.parametrize("count", [0, 1, 3])
def test_trend_page_with_0_1_many_drills(site: SiteConfig, count: int) -> None:
    journals = write_drills(site)[:count]
    docs = [doc_of(j) for j in journals]
    html = render_trend(docs)
    page = assert_accessible_structure(html)
    svgs = [a for t, a in page.tags if t == "svg"]
    if count == 0:
        assert "No drill journals yet" in html and not svgs
        return
    assert len(svgs) == 2
    for attrs in svgs:
        assert attrs.get("role") == "img"
        ids = (attrs.get("aria-labelledby") or "").split()
        assert len(ids) == 2 and all(f'id="{i}"' in html for i in ids)
    # The page's, each chart's, each drill's mark and each month's bar.
    months = {j.payload["started_at"][:7] for j in journals}
    assert html.count("<title") == 1 + 2 + count + len(months)
    assert f"{count} drill{'' if count == 1 else 's'}. Pass rate" in html
    rows = re.findall(r'<tr><th scope="row" class="num">(\d+)</th>', html)
    assert rows == [str(j.seq) for j in journals]
