"""``planb backup``: the fallback's backups (borgmatic on the fallback hosts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from planb.cli.context import console, err_console, options, print_json

app = typer.Typer(
    help=(
        "The fallback's backups: borgmatic on each fallback host sends its database dump, "
        "media, keys, directory (slapcat) and configuration to the 'backup' hosts over SSH, "
        "encrypted (borg repokey, passphrase in the vault), on systemd timers (planb.yml "
        "backup:), so they go on when planb is down. Needs backup.enabled and a deploy."
    ),
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _size(value: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000  # type: ignore[assignment]
    return f"{value:.1f} TB"


@app.command("now")
def now(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Back every fallback host up now and wait (the timer's own unit: a backup already
    running is joined). Exit 1, naming the host and borgmatic's error, if one fails."""
    from planb.backup import run_now

    site = options(ctx).load_site()
    with err_console.status("backing up the fallback…"):
        runs = run_now(site)
    if json_output:
        print_json([{"host": r.host, "seconds": round(r.seconds, 1), "skipped": r.skipped}
                    for r in runs])
        return
    for r in runs:
        if r.skipped:
            console.print(f"{escape(r.host)} holds no data yet and never did: no archive "
                          "made (a restore or its first synced agents start its backups)",
                          highlight=False)
        else:
            console.print(f"backed up {escape(r.host)} in {r.seconds:.1f} s", highlight=False)


@app.command("list")
def list_cmd(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Every fallback host's archives, oldest first: time, duration, size read, size
    added to the repository, files, and whether 'planb backup verify' restored it."""
    from planb.backup import list_archives

    site = options(ctx).load_site()
    with err_console.status("reading the repositories…"):
        archives = list_archives(site)
    if json_output:
        print_json([a.as_dict() for a in archives])
        return
    if not archives:
        console.print("no archive yet: run 'planb backup now'", highlight=False)
        return
    table = Table("host", "archive", "time", "took", "size", "added", "files", "verified")
    for a in archives:
        table.add_row(escape(a.host), escape(a.name), escape(a.time), f"{a.duration_s:.1f} s",
                      _size(a.original_size), _size(a.deduplicated_size), str(a.files),
                      f"[green]{escape(a.verified)}[/]" if a.verified else "[dim]no[/]")
    console.print(table)


@app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    archive: Annotated[str | None, typer.Option(
        "--archive", "-a", help="The archive to check (default: each host's newest).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Check an archive by restoring it somewhere harmless on its host, not only by
    listing it: Synapse's dump into a scratch database, the directory (cn=config and
    data) into a scratch slapd.d with slapadd; the signing key must be there. The running
    services are not touched. A passing archive shows as verified in 'planb backup list'.
    Exit 1 naming the archive if it does not restore."""
    from planb.backup import verify

    site = options(ctx).load_site()
    with err_console.status("restoring the archive somewhere harmless…"):
        done = verify(site, archive)
    if json_output:
        print_json([{"host": v.host, "archive": v.archive, "seconds": round(v.seconds, 1),
                     "report": v.report} for v in done])
        return
    for v in done:
        console.print(f"[green]verified[/] {escape(v.archive)} on {escape(v.host)} in "
                      f"{v.seconds:.1f} s: {escape(v.report)}", highlight=False)


@app.command("export-key")
def export_key(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Folder to write <host>.borg-key into (files are 0600).")],
    paper: Annotated[bool, typer.Option(
        "--paper", help="borg's paper format, to print and type back in by hand.")] = False,
) -> None:
    """Export each fallback host's repository key (borg repokey) for the crisis cell's
    safe. With vault_backup_passphrase it opens the backups; without both, a lost
    fallback cannot be restored. The key is written to files, never printed."""
    from planb.backup import export_keys

    site = options(ctx).load_site()
    for path in export_keys(site, output, paper=paper):
        console.print(f"wrote {escape(str(path))}", highlight=False)
    console.print("put these files and a copy of vault_backup_passphrase (from the vault) in "
                  "the crisis cell's safe; 'borg key import' reads them back", highlight=False)
