"""What an agent's browser is shown: the welcome page and the client's start page.

Both pages carry the fallback's live state (nginx fills it in from planb's Synapse
module at each request, :mod:`planb.welcome`). :func:`look_at_pages` fetches each
page on each proxy host, through TLS under the public name, and says whether it
states the mode the controller expects: failover activation and the drills' probes
run it, so their journals record what an agent would have read at that moment.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from planb.config import SiteConfig
from planb.inventory import InventoryHost
from planb.verify.welcome_check import fetch_page, page_states

#: The pages an agent opens, by name: the welcome page and the browser client's start
#: page (whose banner is the welcome page's live block).
PAGES: tuple[tuple[str, str], ...] = (("welcome", "/"), ("client", "/app/"))


@dataclass(frozen=True)
class PageSeen:
    """One page fetched on one proxy host, and whether it said the expected mode."""

    page: str
    path: str
    host: str
    ok: bool
    seconds: float
    detail: str


def look_at_page(site: SiteConfig, host: InventoryHost, page: str, path: str,
                 expected: str) -> PageSeen:
    """Fetch ``path`` on ``host`` and check it answers 200 and states ``expected`` only."""
    start = time.monotonic()
    try:
        answer = fetch_page(site, host.address, path)
    except OSError as exc:
        return PageSeen(page, path, host.name, False, time.monotonic() - start,
                        f"GET {path}: {exc}")
    seconds = time.monotonic() - start
    if answer.status != 200:
        return PageSeen(page, path, host.name, False, seconds,
                        f"GET {path} answered {answer.status}")
    states = page_states(site, answer.text)
    said = " and ".join(states) or "nothing known"
    ok = states == [expected]
    detail = f"GET {path} says {said}" + ("" if ok else f" (expected {expected})")
    return PageSeen(page, path, host.name, ok, seconds, detail)


def look_at_pages(site: SiteConfig, hosts: Sequence[InventoryHost], expected: str,
                  pages: Sequence[tuple[str, str]] = PAGES) -> list[PageSeen]:
    """Every page of ``pages`` on every host of ``hosts``, in that order."""
    return [look_at_page(site, host, page, path, expected)
            for host in hosts for page, path in pages]


def summary(seen: Sequence[PageSeen]) -> str:
    """One line: how many pages said the expected mode, and the first that did not."""
    good = sum(s.ok for s in seen)
    line = f"public pages: {good}/{len(seen)} said the expected mode"
    bad = [s for s in seen if not s.ok]
    if bad:
        line += f"; {bad[0].page} on {bad[0].host}: {bad[0].detail}"
    return line
