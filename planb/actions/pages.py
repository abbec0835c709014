"""``pages.check``: the welcome page and the client's start page state the fallback's mode.

Run by failover activation and deactivation (after the switch) and by the drills'
probes (:mod:`planb.actions.stack`): what an agent's browser would read, fetched on
every proxy host through TLS under the public name (:mod:`planb.verify.public_pages`),
recorded in the journal one probe per page and host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from planb.config import SiteConfig
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult, ProbeResult
from planb.inventory import FALLBACK_PROXY, hosts_in
from planb.mode import StateFile
from planb.polling import poll_until
from planb.verify.public_pages import PageSeen, look_at_pages, summary

RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class PagesArgs:
    """``pages.check``: the mode the pages must state (None: the controller's recorded
    mode), re-fetched every second for up to ``wait_seconds`` until they do."""

    mode: Literal["active", "standby"] | None = None
    wait_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.wait_seconds < 0:
            raise ValueError("wait_seconds must not be negative")


def page_probes(seen: list[PageSeen]) -> tuple[ProbeResult, ...]:
    """One journal probe per page and proxy host (``page.welcome``, ``page.client``)."""
    return tuple(ProbeResult(f"page.{s.page}", s.ok, s.seconds, s.detail, s.host)
                 for s in seen)


def see_pages(site: SiteConfig, expected: str, *, wait_seconds: float
              ) -> list[PageSeen]:
    """The pages on every proxy host, re-fetched until all state ``expected`` or time is up."""
    hosts = hosts_in(site, FALLBACK_PROXY)
    polled = poll_until(lambda _left: look_at_pages(site, hosts, expected),
                        lambda seen: all(s.ok for s in seen), timeout=wait_seconds,
                        interval=RETRY_SECONDS)
    return polled.value


def pages_check(ctx: ActionContext, args: PagesArgs) -> ActionResult:
    """The welcome and client pages on every proxy state ``args.mode``."""
    expected = args.mode or StateFile(ctx.site.state_dir).load().mode
    seen = see_pages(ctx.site, expected,
                     wait_seconds=min(args.wait_seconds, max(0.0, ctx.remaining(0) - 1)))
    ok = bool(seen) and all(s.ok for s in seen)
    lines = [summary(seen) if seen else "public pages: no proxy host in the inventory"]
    lines += [f"{s.page} on {s.host}: {s.detail} ({s.seconds:.2f} s)" for s in seen]
    return ActionResult(ok, "\n".join(lines), page_probes(seen))


def register_pages_action(registry: ActionRegistry) -> None:
    """Register ``pages.check`` (works on any deployed site)."""
    registry.action("pages.check", summary="the welcome page and the browser client's start "
                    "page state the fallback's mode on every proxy", args=PagesArgs,
                    timeout=60)(pages_check)
