"""The public welcome page at ``https://<public_hostname>/`` (rendered at deploy time).

planb renders the page on the controller in the site's announcement language (the
package's catalogue, which a site completes or overrides with its own ``locale/``), with
the contacts the site chose to publish (``welcome.contacts``, none by default) and a QR
code to the page itself (inline SVG, for the printed poster). The deploy copies it to
the proxy's nginx, which serves it with SSI: the live part (standby, active, or unknown
when Synapse does not answer) and the site's public activation message come at each
request from planb's Synapse module (``/_synapse/client/fallback_status_*``), so the page
changes with the failover, with no redeploy, and reads without JavaScript.

Public all year: no internal host name or address, no version; every site value is
HTML-escaped here, and the activation message is escaped by the module that serves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import segno

from planb.config import SiteConfig
from planb.i18n import N_, Translator

#: Where the nginx site's internal SSI locations are (planb-matrix.conf.j2).
SSI_MODE = "/_planb_welcome/mode"
SSI_MESSAGE = "/_planb_welcome/message"
CSS_PATH = "/planb-welcome.css"

#: What each live block says (its first sentence is the state: what the verify reads).
STANDBY = N_("The backup messaging system is on standby.")
ACTIVE = N_("The backup messaging system is active.")
UNKNOWN = N_("The state of the backup messaging system cannot be read right now.")

CSS = """\
:root{color-scheme:light}
body{font-family:system-ui,sans-serif;margin:0;line-height:1.5;color:#161616;background:#fff}
main{max-width:42rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}
h2{font-size:1.25rem;margin:1.5rem 0 .5rem}
.state{border-left:.5rem solid #3a3a3a;padding:.5rem 1rem;background:#f4f4f4}
.state.active{border-color:#18753c;background:#e6f4ea}
.state.standby{border-color:#0063cb;background:#e8edff}
.state.unknown{border-color:#b34000;background:#fff4e5}
.state p:first-child{font-weight:bold;font-size:1.15rem}
.message{white-space:pre-line}
a{color:#000091}
code{font-size:1rem;word-break:break-all}
figure{margin:1rem 0;text-align:center}
figure svg{width:12rem;height:auto}
@page{size:A4;margin:1.5cm}
@media print{
 body{font-size:14pt}
 .state{border:2pt solid #000;background:none}
 figure svg{width:9cm}
 a{color:#000;text-decoration:none}
}
"""


@dataclass(frozen=True)
class WelcomePage:
    """The page and its stylesheet, as nginx serves them; ``banner`` is the fragment the
    browser client's start page includes (same live state, the address for apps)."""

    html: str
    css: str
    language: str
    banner: str = ""


def page_url(site: SiteConfig) -> str:
    """The page's address (what the poster's QR code opens)."""
    return f"https://{site.matrix.public_hostname}/"


def qr_svg(url: str, label: str) -> str:
    """``url`` as an inline SVG QR code, announced to screen readers as ``label``."""
    svg: str = segno.make(url, error="m").svg_inline(scale=4, border=2, omitsize=True)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)


def _contacts(site: SiteConfig, tr: Translator) -> str:
    contacts = site.welcome.contacts
    if not contacts:
        ask = tr._(N_("Ask your manager or the crisis cell through the usual channels "
                      "(telephone, radio, in person)."))
        return f"<p>{escape(ask)}</p>"
    items = []
    for c in contacts:
        role = f" ({escape(c.role)})" if c.role else ""
        tel = "".join(ch for ch in c.phone if ch.isdigit() or ch == "+")
        items.append(f'<li>{escape(c.name)}{role}{escape(tr.colon)}'
                     f'<a href="tel:{escape(tel)}">{escape(c.phone)}</a></li>')
    return "<ul>" + "".join(items) + "</ul>"


def _state_block(css_class: str, state: str, todo: str, message: bool = False) -> str:
    text = f'<section class="state {css_class}" aria-live="polite"><p>{escape(state)}</p>' \
           f"<p>{escape(todo)}</p>"
    if message:
        # Escaped by planb's Synapse module; empty when the site gave no public message.
        text += f'<p class="message"><!--# include virtual="{SSI_MESSAGE}" --></p>'
    return text + "</section>"


def render_welcome(site: SiteConfig, *, client_path: str | None = None,
                   enrol_path: str | None = None) -> WelcomePage:
    """The welcome page of ``site``, in its announcement language.

    ``client_path`` and ``enrol_path`` are links shown only once the browser client and
    the enrolment page exist on the fallback (None: not built yet, no dead link).
    """
    tr = site.translator(site.announcement_language)
    url = page_url(site)
    host = escape(site.matrix.public_hostname)
    title = escape(tr._(N_("Backup messaging")))
    org = escape(site.organisation)
    type_this = tr._(N_("In a Matrix app (Element, FluffyChat…), the server address to "
                        "type is:"))
    server = f"<p>{escape(type_this)} <code>{escape(url)}</code></p>"
    links = []
    if client_path:
        label = tr._(N_("Open the messaging in this browser"))
        links.append(f'<li><a href="{escape(client_path)}">{escape(label)}</a></li>')
    if enrol_path:
        label = tr._(N_("Enrol with the code you were given"))
        links.append(f'<li><a href="{escape(enrol_path)}">{escape(label)}</a></li>')
    headings = [escape(tr._(h)) for h in (N_("How to connect"), N_("Help"),
                                          N_("This page on paper"))]
    link_list = "<ul>" + "".join(links) + "</ul>" if links else ""
    blocks = _live_blocks(tr)
    qr_label = tr._(N_("QR code to open this page: {url}")).format(url=url)
    html = (
        f'<!DOCTYPE html>\n<html lang="{tr.language}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{title} · {org}</title>\n"
        f'<link rel="stylesheet" href="{CSS_PATH}">\n</head>\n<body>\n<main>\n'
        f"<h1>{title} · {org}</h1>\n{blocks}\n"
        f"<h2>{headings[0]}</h2>\n{link_list}{server}\n"
        f"<h2>{headings[1]}</h2>\n{_contacts(site, tr)}\n"
        f"<h2>{headings[2]}</h2>\n"
        f"<figure>{qr_svg(url, qr_label)}<figcaption><code>{host}</code></figcaption></figure>\n"
        "</main>\n</body>\n</html>\n"
    )
    # The browser client's start page (planb/data/client/index.html) includes this
    # through nginx's SSI: the live state, the way back here, the address for apps.
    banner = (f'<p class="planb-title"><a href="/">{title} · {org}</a></p>\n'
              f"{blocks}\n{server}\n")
    return WelcomePage(html=html, css=CSS, language=tr.language, banner=banner)


def _live_blocks(tr: Translator) -> str:
    """The state block nginx's SSI picks at each request (standby, active, unknown)."""
    return (
        '<!--# config errmsg="" -->'
        f'<!--# include virtual="{SSI_MODE}" set="planb_mode" -->'
        '<!--# if expr="$planb_mode = active" -->'
        + _state_block("active", tr._(ACTIVE), tr._(N_(
            "Log in with your usual login and password, then follow the instructions "
            "in the Annonces room. Message from your organisation:")), message=True)
        + '<!--# elif expr="$planb_mode = standby" -->'
        + _state_block("standby", tr._(STANDBY), tr._(N_(
            "Nothing to do for now: keep using your usual tools. Keep this address: it "
            "is the one to use if the main system fails.")))
        + "<!--# else -->"
        + _state_block("unknown", tr._(UNKNOWN), tr._(N_(
            "Try again in a few minutes, or ask for help as shown below.")))
        + "<!--# endif -->"
    )
