"""``planb verify``: check the deployed fallback and print a table (or JSON, JUnit XML)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from typer.core import TyperCommand

from planb.cli.context import console, options, print_json
from planb.errors import PlanbError

# planb.verify pulls in testinfra, matrix-nio and ldap3: imported where the command runs
# (or shows its help), so 'planb --help' stays quick.
if TYPE_CHECKING:
    from planb.verify import VerifyReport

app = typer.Typer()

_STYLE = {"pass": "green", "fail": "bold red", "error": "bold magenta", "skip": "yellow"}


class VerifyFailed(PlanbError):
    """At least one check failed or could not run (exit 1)."""


def _table(report: VerifyReport) -> Table:
    table = Table(title=f"planb verify — site {report.site}", title_justify="left")
    for column in ("check", "host", "result"):
        table.add_column(column)
    table.add_column("time", justify="right")
    table.add_column("why", overflow="fold")
    for r in report.results:
        table.add_row(r.name, r.host, f"[{_STYLE[r.status]}]{r.status.upper()}[/]",
                      f"{r.duration_seconds:.2f} s", "" if r.status == "pass" else r.message)
    return table


class _VerifyCommand(TyperCommand):
    """'planb verify': its help ends with the names of the checks, read when it is shown."""

    def get_help(self, ctx: typer.Context) -> str:  # type: ignore[override]
        from planb.verify import CHECKS

        self.epilog = "Checks: " + ", ".join(c.name for c in CHECKS)
        return super().get_help(ctx)


@app.command("verify", cls=_VerifyCommand)
def verify(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    junit: Annotated[Path | None, typer.Option("--junit", metavar="FILE",
                                               help="Also write JUnit XML to FILE.")] = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", metavar="NAME",
        help="Run only this check, or every check under a prefix (service, tls, matrix); "
             "repeatable.")] = None,
    host: Annotated[str | None, typer.Option("--host", metavar="HOST",
                                             help="Check only this inventory host.")] = None,
    cert_days: Annotated[int | None, typer.Option(
        "--cert-days", min=0, show_default=False,
        help="Fail certificates that expire within this many days (default: 30).")
    ] = None,
    probe_file: Annotated[Path | None, typer.Option(
        "--probe-file", metavar="FILE",
        help="Probe accounts, one 'login password' per line (mode 0600); default "
             "<state_dir>/verify/probe-accounts when it exists. Without two, the "
             "matrix.probe check is skipped.")] = None,
) -> None:
    """Check that the deployed fallback works: packages, services, ports, TLS, file modes,
    LDAP, the Matrix API through nginx, two probe accounts exchanging a message, and,
    with backup.enabled, that each fallback host's backups are on time (backup.fresh).

    Exit 0 when every check passes (or is skipped), 1 when one fails or cannot run.
    """
    from planb.verify import run_checks, write_junit
    from planb.verify.accounts import default_probe_file, load_probe_accounts
    from planb.verify.registry import DEFAULT_CERT_MIN_DAYS

    site = options(ctx).load_site()
    path = probe_file or default_probe_file(site)
    accounts = load_probe_accounts(path) if probe_file or path.exists() else []
    report = run_checks(site, only, host=host, probe_accounts=accounts,
                        cert_min_days=DEFAULT_CERT_MIN_DAYS if cert_days is None else cert_days)
    if junit is not None:
        write_junit(report, junit)
    if json_out:
        print_json(report.as_json())
    else:
        console.print(_table(report))
        console.print(report.summary(), highlight=False)
    if not report.ok:
        raise VerifyFailed("verify failed: " + "; ".join(
            f"{r.name} on {r.host} ({r.status}: {r.message})" for r in report.problems))
