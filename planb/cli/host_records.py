"""``planb failover status``'s part about the hosts: what was done there by break-glass.

Fetches each fallback messaging host's break-glass journals and audit lines into
``<state>/journals/hosts/<host>/`` (:mod:`planb.statecopy.hostjournals`), verifies each
chain with the host's own key, and shows them.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from planb.cli.context import console, err_console
from planb.config import SiteConfig
from planb.errors import PlanbError
from planb.statecopy.hostjournals import Fetched, HostChain, fetch, verify_hosts


def host_records(site: SiteConfig, recent: int, *, quiet: bool = False
                 ) -> tuple[list[Fetched], list[HostChain]]:
    """Fetch what the hosts recorded, then verify every host chain the state holds."""
    try:
        if quiet:
            fetched = fetch(site, recent=recent)
        else:
            with err_console.status("fetching the hosts' break-glass records…"):
                fetched = fetch(site, recent=recent)
    except PlanbError as exc:
        fetched = [Fetched("-", error=exc.message)]
    return fetched, verify_hosts(site.state_dir)


def host_records_json(fetched: list[Fetched], chains: list[HostChain]) -> list[dict[str, Any]]:
    by_host = {c.host: c for c in chains}
    rows = []
    for f in fetched:
        chain = by_host.get(f.host)
        rows.append({"host": f.host, "fetched": not f.error, "error": f.error or None,
                     "new_journals": f.new_journals, "audit_entries": f.audit_entries,
                     "conflicts": f.conflicts, "recent": [vars(e) for e in f.recent],
                     "chain_ok": None if chain is None else chain.ok,
                     "chain_problem": None if chain is None else chain.failure,
                     "journals": 0 if chain is None or chain.result is None
                     else len(chain.result.journals)})
    return rows


def print_host_records(fetched: list[Fetched], chains: list[HostChain]) -> None:
    by_host = {c.host: c for c in chains}
    for f in fetched:
        chain = by_host.get(f.host)
        if f.error:
            console.print(f"host {escape(f.host)}: [yellow]break-glass records not fetched[/]: "
                          f"{escape(f.error)}", highlight=False, soft_wrap=True)
        count = 0 if chain is None or chain.result is None else len(chain.result.journals)
        if chain is None and not f.error:
            console.print(f"host {escape(f.host)}: nothing done by break-glass",
                          highlight=False)
            continue
        if chain is None:
            continue
        verdict = "[green]chain valid[/]" if chain.ok else \
            f"[bold red]chain BROKEN[/]: {escape(chain.failure or '')}"
        console.print(f"host {escape(f.host)} (break-glass, signed with "
                      f"{chain.fingerprint or '?'}): {count} journal(s), "
                      f"{f.audit_entries} audit line(s), {len(f.new_journals)} new; "
                      f"{verdict}", highlight=False, soft_wrap=True)
        for conflict in f.conflicts:
            console.print(f"  [bold red]changed on the host[/]: {escape(conflict)}",
                          highlight=False, soft_wrap=True)
        if f.recent:
            table = Table(title=f"done on {f.host} without the controller", title_justify="left")
            for column in ("when", "who", "event", "step", "result", "detail"):
                table.add_column(column, overflow="fold")
            for e in f.recent:
                table.add_row(e.at, escape(e.who), e.event, e.step or "", e.result,
                              escape(e.detail[:120]))
            console.print(table)
