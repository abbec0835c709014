"""One self-contained, accessible, printable HTML page from a rendered runbook.

Markdown becomes HTML with markdown-it-py (CommonMark plus tables) with raw HTML
disabled: anything that looks like a tag in a site value or a template is shown as
text, never interpreted, and unsafe link schemes (``javascript:``) are refused.
The page has a language, landmarks (header, main, footer), one ``h1``, each ``h2``
section in its own ``<section>`` labelled by its heading, table headers with scope,
dark text on white (contrast well above WCAG AA), no external assets, and a print
stylesheet for A4 paper: sections are not split across pages when they fit, code
(the commands) stays boxed and wraps, and the ``☐`` checkboxes print as boxes.
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

from planb.i18n import N_, Translator, english
from planb.runbooks.catalog import RenderedRunbook

#: Where a template came from (RunbookInfo.origin), as the footer says it.
_ORIGINS = {"state": N_("state"), "site": N_("site"), "shipped": N_("shipped")}
_SECTION = re.compile(r'(?=<h2 id="section-\d+">)')

STYLE = """
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #111;
       background: #fff; line-height: 1.45; max-width: 52rem; margin: 0 auto; padding: 1rem; }
header, footer { color: #333; font-size: .9rem; border-bottom: 1px solid #777; }
footer { border-bottom: 0; border-top: 1px solid #777; margin-top: 2rem; }
h1 { font-size: 1.7rem; margin: .6rem 0; }
h2 { font-size: 1.3rem; margin-top: 1.6rem; border-bottom: 2px solid #111; }
h3 { font-size: 1.1rem; }
a { color: #0645ad; }
code, pre { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; }
code { background: #f1f1f1; padding: 0 .2em; border-radius: 2px; }
pre { background: #f1f1f1; border: 1px solid #555; padding: .5rem .7rem;
      white-space: pre-wrap; overflow-wrap: anywhere; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid #555; padding: .25rem .45rem; text-align: left;
         vertical-align: top; }
th { background: #e8e8e8; }
blockquote { border-left: 4px solid #111; margin: .8rem 0; padding: .2rem .8rem;
             background: #f6f6f6; }
li { margin: .2rem 0; }
@media print {
  @page { size: A4; margin: 14mm 14mm 16mm 14mm; }
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  a { color: #111; text-decoration: none; }
  h1, h2, h3 { break-after: avoid; page-break-after: avoid; }
  section { break-inside: avoid-page; page-break-inside: avoid; }
  pre, blockquote, tr, li { break-inside: avoid; page-break-inside: avoid; }
  pre, code, th { background: none; }
  thead { display: table-header-group; }
  body.break-sections section + section { break-before: page; page-break-before: always; }
}
"""


def markdown_to_html(text: str) -> str:
    """Markdown -> HTML body: no raw HTML, ids on ``h2``, each ``h2`` section wrapped."""
    md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")
    tokens = md.parse(text)
    count = 0
    for token in tokens:
        if token.type == "heading_open" and token.tag == "h2":
            count += 1
            token.attrSet("id", f"section-{count}")
    body = md.renderer.render(tokens, md.options, {})
    body = body.replace("<th>", '<th scope="col">').replace("<th style=", '<th scope="col" style=')
    parts = _SECTION.split(body)
    out = [parts[0]]
    for part in parts[1:]:
        number = re.match(r'<h2 id="section-(\d+)">', part)
        assert number is not None
        out.append(f'<section aria-labelledby="section-{number.group(1)}">\n{part}</section>\n')
    return "".join(out)


def to_html(runbook: RenderedRunbook, *, site: str, organisation: str,
            generated_at: str, break_sections: bool = False,
            tr: Translator | None = None) -> str:
    """The whole page (UTF-8, self-contained) for ``runbook``; its frame (header,
    footer) in ``tr``'s language (English by default)."""
    tr = tr or english()
    info = runbook.info
    title = f"{info.title} — {organisation}"
    body_class = ' class="break-sections"' if break_sections else ""
    esc = html.escape
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{esc(info.lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body{body_class}>\n"
        f"<header><p>{esc(organisation)} · "
        + esc(tr._("site %(site)s · runbook %(name)s") % {"site": site, "name": "\0"}).replace(
            "\0", f"<strong>{esc(info.name)}</strong>")
        + "</p></header>\n"
        f"<main>\n{markdown_to_html(runbook.markdown)}</main>\n"
        "<footer><p>"
        + esc(tr._("Printed from planb on %(when)s (template: %(origin)s %(name)s). Keep a "
                   "paper copy with the crisis kit; reprint after every change of the site.")
              % {"when": generated_at, "origin": tr._(_ORIGINS.get(info.origin, info.origin)),
                 "name": info.name})
        + "</p></footer>\n"
        "</body>\n</html>\n"
    )
