"""The announcement as HTML (formatted_body): Markdown rendered, the site's markup as text."""

from __future__ import annotations

from planb.messaging.announcement import announcement_html


def test_headings_lists_and_links_are_rendered() -> None:
    html = announcement_html("# Messagerie de secours activée\n\n1. Ouvrez "
                             "https://matrix.example/ ou [le client](https://matrix.example/app/)\n")
    assert "<h1>Messagerie de secours activée</h1>" in html
    assert "<ol>" in html and '<a href="https://matrix.example/app/">le client</a>' in html


def test_markup_in_the_sites_text_reaches_agents_as_text() -> None:
    hostile = ('Métropole <script>alert("x")</script> & <img src=x onerror=alert(1)>\n\n'
               "[clic](javascript:alert(1))\n")
    html = announcement_html(hostile)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="javascript' not in html
