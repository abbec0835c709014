"""``planb failover promote``: the hot standby takes over from a lost fallback host."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from planb.cli.context import console, err_console, options, print_json
from planb.cli.failover_cmd import _confirm

_STATUS = {"ok": "green", "failed": "bold red", "error": "bold magenta"}

EPILOG = ("Exit codes: 0 promoted (or already promoted: nothing changed), 1 refused "
          "(nothing changed) or a step failed (the message says whether the standby was "
          "promoted), 2 not confirmed or no standby in the inventory, 130 interrupted.")


def promote(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT",
                                        help="Why (goes to the audit log and journal).")],
    force: Annotated[bool, typer.Option(
        "--force", help="Promote even though the old primary still answers (its services "
             "are then stopped over SSH if it can be reached: fencing) or the standby's "
             "replay lag is beyond objectives.rpo_seconds (the lag accepted is "
             "journaled).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Promote the hot standby (inventory group fallback_standby) to serve in place of the
    lost fallback host.

    First it checks, changing nothing: the old primary must not answer (SSH, PostgreSQL
    or HTTPS: a host that answers may still write, and two writers are a split brain),
    and the standby's PostgreSQL replay lag must be within objectives.rpo_seconds (what
    is not replayed is lost). Either refuses unless --force. Then: pg_promote() on the
    standby; the promotion recorded in the site's inventory (inventory/planb-promotion.yml:
    the standby takes the lost host's fallback groups, the lost host goes to group
    fallback_lost and every later command and playbook leaves it out); the fallback's
    recorded mode (active or standby) applied there; Synapse (and its workers), nginx
    and coturn started; and, when fallback.standby.service_address is set, keepalived
    moving that address to it awaited. Every step goes to the audit log, the promotion
    to a signed journal (kind promotion).

    When the lost host is rebuilt, make it the new standby in the inventory, remove
    inventory/planb-promotion.yml and run 'planb deploy'.
    """
    from planb.cli.wiring import site_store
    from planb.ha.promote import Promoter

    site = options(ctx).load_site()
    promoter = Promoter(site, site_store(site))
    _confirm(f"Promote the standby of site {site.site} (the old fallback host must be "
             "down)?", yes)
    if json_out:
        done = promoter.promote(reason, force=force)
        print_json(done.as_json())
        return
    with err_console.status("checking, then promoting the standby…"):
        done = promoter.promote(reason, force=force)
    console.print(done.message, highlight=False)
    for item in done.forced:
        console.print(f"[yellow]forced:[/] {escape(item)}", highlight=False)
    if done.steps:
        table = Table(title="promote steps", title_justify="left")
        for column in ("step", "status", "time", "detail"):
            table.add_column(column, overflow="fold")
        for s in done.steps:
            detail = s.error or (s.output.strip().splitlines() or [""])[-1]
            table.add_row(s.name, f"[{_STATUS.get(s.status, 'white')}]{s.status}[/]",
                          f"{s.duration_seconds:.1f} s", escape(detail[:200]))
        console.print(table)
    if done.journal:
        console.print(f"journal: {done.journal.path}", highlight=False)
