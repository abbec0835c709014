"""``planb hosts``: the SSH host keys planb accepts for the site's hosts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from planb.cli.context import console, options, print_json
from planb.errors import PlanbError

if TYPE_CHECKING:
    from planb.hostkeys import TrustResult

app = typer.Typer(
    help="The SSH host keys planb accepts: <site>/known_hosts, recorded on first contact.",
    no_args_is_help=True,
)

TRUST_HELP = (
    "Record the SSH host keys of the site's hosts in <site folder>/known_hosts."
    "\n\n"
    "planb connects over SSH (Ansible, 'planb verify', the admin API tunnel) only to "
    "hosts whose key is recorded there (StrictHostKeyChecking=yes). 'planb init' cannot "
    "reach the hosts, so their keys are recorded on first contact: run this once the "
    "hosts are installed (or 'planb deploy --trust-new-hosts'), and compare each "
    "fingerprint it prints with the host's own, read on its console: "
    "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"
    "\n\n"
    "A key already recorded that no longer matches is never replaced silently: planb "
    "refuses to connect, naming the host. If the host was reinstalled or its key "
    "rotated on purpose, check the new fingerprint on its console, then run "
    "'planb hosts trust --replace HOST'. Otherwise someone may be intercepting the "
    "connection: do not go on."
    "\n\n"
    "Exit codes: 0 every host recorded or unchanged; 1 a key changed (not replaced) or "
    "a host did not answer; 2 bad configuration or unknown host."
)


def _table(results: Sequence[TrustResult]) -> Table:
    table = Table(title="SSH host keys")
    for column in ("host", "address", "outcome", "fingerprints (SHA256)"):
        table.add_column(column)
    styles = {"changed": "bold red", "unreachable": "bold red", "replaced": "yellow",
              "recorded": "green"}
    for r in results:
        style = styles.get(r.outcome, "")
        outcome = f"[{style}]{r.outcome}[/]" if style else r.outcome
        table.add_row(escape(r.target.name), escape(r.target.entry), outcome,
                      escape("\n".join(r.fingerprints)))
    return table


@app.command("trust", help=TRUST_HELP)
def trust_cmd(
    ctx: typer.Context,
    hosts: Annotated[list[str] | None, typer.Argument(
        metavar="HOST", help="Inventory host names (default: every host).",
        show_default=False)] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Replace a recorded key that changed (after checking the new "
        "fingerprint on the host's console).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Record the site's SSH host keys; see TRUST_HELP."""
    from planb.hostkeys import known_hosts_path
    from planb.inventory import trust_hosts

    site = options(ctx).load_site()
    results = trust_hosts(site, tuple(hosts or ()), replace=replace)
    path = known_hosts_path(site)
    if json_output:
        print_json({"known_hosts": str(path), "hosts": [
            {"host": r.target.name, "address": r.target.entry, "outcome": r.outcome,
             "fingerprints": r.fingerprints} for r in results]})
    else:
        console.print(_table(results))
        console.print(f"known_hosts: {escape(str(path))}", highlight=False)
    changed = [r.target.name for r in results if r.outcome == "changed"]
    silent = [r.target.name for r in results if r.outcome == "unreachable"]
    if changed:
        raise PlanbError(
            f"the SSH host key of {', '.join(changed)} does not match the one recorded "
            f"in {path}: not replaced",
            hint="if the change is expected, check the new fingerprint on the host's console "
                 f"(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run 'planb hosts "
                 f"trust --replace {' '.join(changed)}'; otherwise do not go on")
    if silent:
        raise PlanbError(f"no SSH host key read from {', '.join(silent)} (no answer)",
                         hint="check that the hosts are up and reachable on their SSH port")
