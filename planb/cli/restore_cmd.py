"""``planb restore``: put the fallback back from its backups, then check it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from planb.cli.context import console, err_console, options, print_json
from planb.cli.verify_cmd import VerifyFailed, _table

app = typer.Typer()


@app.command("restore")
def restore_cmd(
    ctx: typer.Context,
    archive: Annotated[str | None, typer.Option(
        "--archive", "-a", metavar="ID",
        help="Restore this archive (a name from 'planb backup list'), onto the host that "
             "made it. Default: each fallback host's newest archive that holds data.")] = None,
    previous: Annotated[bool, typer.Option(
        "--previous",
        help="Take the archive before the newest: only when the newest failed its check "
             "(a damaged archive is refused, naming it).")] = False,
    force: Annotated[bool, typer.Option(
        "--force",
        help="Restore over a fallback that holds data (users other than planb's own, "
             "agents in the directory): that data is replaced. Without it, planb refuses "
             "and says how much would be lost.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")
                           ] = False,
) -> None:
    """Restore the fallback from its backups onto a freshly deployed host, then run
    'planb verify'.

    After losing the fallback host, on a new one with the same name and address:
    'planb hosts trust --replace HOST' (its new SSH host key), 'planb deploy' (a new,
    empty fallback), then 'planb restore' (its newest archive with data, then verify).

    On each fallback host the archive is first extracted and checked in a staging
    folder (Synapse's dump restored into a fresh database, the directory loaded into
    a scratch slapd.d): a damaged archive is refused there, naming it, and nothing
    running is touched. Then Synapse and slapd are stopped, the fresh database put in
    place (the one it replaces is kept as synapse_before_restore), the media store,
    /etc/synapse (the server keeps its signing key: clients see the same server), the
    directory (slapadd with slapd stopped), nginx, coturn, the TLS material and
    /etc/planb (the failover mode too) restored; the services and the backup timer
    start again. Agents keep their sessions, rooms and messages up to the archive's
    time, and their enrolments.

    Exit 0 when restored and every check passes; 1 when the restore is refused or
    fails (naming the archive) or a check fails.
    """
    from planb.backup import restore
    from planb.verify import run_checks
    from planb.verify.accounts import default_probe_file, load_probe_accounts

    site = options(ctx).load_site()
    with err_console.status("restoring the fallback…") as status:
        done = restore(site, archive=archive, previous=previous, force=force,
                       progress=lambda line: status.update(escape(line)))
    for r in done:
        if not json_output:
            console.print(f"[green]restored[/] {escape(r.archive)} onto {escape(r.host)} in "
                          f"{r.seconds:.1f} s: {escape(r.report)}", highlight=False)
    path = default_probe_file(site)
    accounts = load_probe_accounts(path) if path.exists() else []
    with err_console.status("running planb verify…"):
        report = run_checks(site, None, probe_accounts=accounts)
    if json_output:
        print_json({"restored": [{"host": r.host, "archive": r.archive,
                                  "seconds": round(r.seconds, 1), "report": r.report}
                                 for r in done],
                    "verify": report.as_json()})
    else:
        console.print(_table(report))
        console.print(report.summary(), highlight=False)
    if not report.ok:
        raise VerifyFailed("restored, but verify failed: " + "; ".join(
            f"{r.name} on {r.host} ({r.status}: {r.message})" for r in report.problems))
