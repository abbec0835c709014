"""The ``planb`` root command and the one place where errors become exit codes."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup, TyperOption

from planb import __version__
from planb.cli import (
    backup_cmd,
    bundle_cmd,
    config_cmd,
    controller_cmd,
    deploy_cmd,
    enrol_cmd,
    hosts_cmd,
    init_cmd,
    keys_cmd,
    lab_cmd,
    report_cmd,
    statewatch,
)
from planb.cli.context import Options, err_console, setup_logging
from planb.cli.drill_cmd import app as drill_app
from planb.cli.failover_cmd import app as failover_app
from planb.cli.promote_cmd import EPILOG as PROMOTE_EPILOG
from planb.cli.promote_cmd import promote
from planb.cli.restore_cmd import app as restore_app
from planb.cli.runbook_cmd import app as runbook_app
from planb.cli.sync_cmd import app as sync_app
from planb.cli.verify_cmd import app as verify_app
from planb.errors import EXIT_INTERRUPTED, PlanbError

HELP_NAMES = ["-h", "--help"]


def reflow(text: str | None) -> str | None:
    """Help text with each paragraph on one line, so the terminal, not the source, wraps it.

    A paragraph starting with \\b keeps its line breaks (click's convention).
    """
    if not text:
        return text
    paragraphs = inspect.cleandoc(text.partition("\f")[0]).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def tidy_help(command: Any) -> None:
    """Reflow ``command``'s help texts and show flags without a ``<bool>`` type, recursively."""
    command.help = reflow(command.help)
    command.epilog = reflow(command.epilog)
    help_option = command.get_help_option(typer.Context(command, help_option_names=HELP_NAMES))
    for param in [*command.params, help_option]:
        if not isinstance(param, TyperOption):
            continue
        param.help = reflow(param.help)
        if (param.is_flag or param.count) and param.metavar is None:
            param.metavar = ""  # a flag takes no value: no type to show
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


class PlanbGroup(TyperGroup):
    """The root command: tidies every help text once, and is the single boundary where
    PlanbError and Ctrl-C become exit codes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy_help(self)

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except PlanbError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            statewatch.interrupted()
            err_console.print("interrupted", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(
    cls=PlanbGroup,
    name="planb",
    help=(
        "Keep the fallback communication system (Matrix + LDAP) ready, switch it on "
        "during an incident, and prove it works with measured, signed drills.\n\n"
        "The site is read from --config, else $PLANB_CONFIG, else ./planb.yml, else the "
        "site recorded by 'planb lab up' or 'planb init'.\n\n"
        "Exit codes: 0 ok, 1 error, 2 usage or configuration, 3 playbook failed, "
        "4 drill deviated, 130 interrupted."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": HELP_NAMES},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"planb {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Site configuration file (planb.yml).",
                     envvar="PLANB_CONFIG", show_envvar=True),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True,
                     help="-v: show Ansible's own output and planb's progress log; -vv: debug."),
    ] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True,
                           help="Print planb's version and exit.")
    ] = False,
) -> None:
    """planb root options."""
    ctx.obj = Options(config=config, verbose=verbose)
    setup_logging(verbose)
    statewatch.watch(ctx)


app.add_typer(init_cmd.app)
app.add_typer(config_cmd.app, name="config")
app.add_typer(deploy_cmd.app)
app.add_typer(lab_cmd.app, name="lab")
app.add_typer(hosts_cmd.app, name="hosts")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(report_cmd.app, name="report")
app.add_typer(bundle_cmd.app, name="bundle")
app.add_typer(sync_app, name="sync")
app.add_typer(enrol_cmd.app, name="enrol")
app.add_typer(verify_app)
app.add_typer(drill_app, name="drill")
failover_app.command("promote", epilog=PROMOTE_EPILOG)(promote)
app.add_typer(failover_app, name="failover")
app.add_typer(backup_cmd.app, name="backup")
app.add_typer(restore_app)
app.add_typer(controller_cmd.app, name="controller")
app.add_typer(runbook_app, name="runbook")


def report_error(exc: PlanbError) -> None:
    """Print a PlanbError for a person: what went wrong, then what to do."""
    err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
    if exc.hint:
        err_console.print(f"[dim]hint:[/] {escape(exc.hint)}", highlight=False)


def run() -> None:
    """Entry point of the console script."""
    app()


if __name__ == "__main__":
    run()
