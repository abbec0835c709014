"""Check: the public welcome page answers and states the mode the controller records.

``GET https://<public_hostname>/`` on each proxy must answer 200 with HTML whose live
block (filled in by nginx's SSI from planb's Synapse module at each request) states
the mode of the controller's state file, in the site's language: the standby or the
active sentence of :mod:`planb.welcome`, never the other one nor "unknown" (Synapse
not answering), no SSI directive left unprocessed, and the security headers the page
is served with (CSP with ``frame-ancestors 'none'``, ``nosniff``, no referrer).
"""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from planb.config import SiteConfig
from planb.mode import StateFile
from planb.verify.endpoints import TIMEOUT, tls_context
from planb.verify.model import CheckFailed
from planb.welcome import ACTIVE, STANDBY, UNKNOWN

if TYPE_CHECKING:
    from planb.inventory import InventoryHost
    from planb.verify.registry import CheckContext

#: Headers the page must carry, and a fragment each value must hold.
HEADERS = {"Content-Security-Policy": "frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
MAX_BYTES = 256 * 1024


@dataclass(frozen=True)
class Page:
    """An HTTP answer: status, headers (lower-case names) and the whole body as text."""

    status: int
    headers: dict[str, str]
    text: str


def fetch_page(site: SiteConfig, address: str, path: str = "/", *,
               timeout: float = TIMEOUT) -> Page:
    """``GET https://<public_hostname><path>`` reached at ``address``, the whole body."""
    name = site.matrix.public_hostname
    with socket.create_connection((address, 443), timeout) as plain, \
            tls_context(site).wrap_socket(plain, server_hostname=name) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
                    .encode())
        response = http.client.HTTPResponse(tls, method="GET")
        try:
            response.begin()
            raw = response.read(MAX_BYTES)
            headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            response.close()
    return Page(response.status, headers, raw.decode("utf-8", "replace"))


def served_page(site: SiteConfig, host: InventoryHost, path: str, what: str,
                headers: dict[str, str]) -> Page:
    """``GET path`` on ``host``: a 200 HTML page carrying ``headers`` (each value must
    hold its fragment), else :class:`CheckFailed` naming ``what`` was expected."""
    try:
        page = fetch_page(site, host.address, path)
    except OSError as exc:
        raise CheckFailed(f"GET {path} on {host.address}:443: {exc}") from None
    if page.status != 200 or not page.headers.get("content-type", "").startswith("text/html"):
        raise CheckFailed(f"GET {path} answered {page.status} "
                          f"{page.headers.get('content-type', '?')}, not {what}")
    missing = [h for h, want in headers.items() if want not in page.headers.get(h.lower(), "")]
    if missing:
        raise CheckFailed(f"{what} lacks its security headers: " + ", ".join(missing))
    return page


def page_states(site: SiteConfig, text: str) -> list[str]:
    """The modes (``standby``, ``active``, ``unknown``) whose sentence ``text`` holds."""
    tr = site.translator(site.announcement_language)
    return [mode for mode, sentence in (("standby", STANDBY), ("active", ACTIVE),
                                        ("unknown", UNKNOWN))
            if escape(tr._(sentence)) in text]


def welcome_page(ctx: CheckContext, host: InventoryHost) -> str:
    """The welcome page answers on ``host`` and states the controller's recorded mode."""
    site = ctx.site
    expected = StateFile(site.state_dir).load().mode
    page = served_page(site, host, "/", "the welcome page", HEADERS)
    if "<!--#" in page.text:
        raise CheckFailed("nginx left SSI directives in the page (ssi off): no live state")
    states = page_states(site, page.text)
    if states != [expected]:
        raise CheckFailed(f"the welcome page says {' and '.join(states) or 'nothing known'}; "
                          f"the controller records {expected}")
    return f"the welcome page says {expected} ({len(page.text.encode())} bytes)"
