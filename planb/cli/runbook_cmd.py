"""``planb runbook list | render``: printable procedures filled with this site's values."""

from __future__ import annotations

import io
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from planb.cli.context import console, options, print_json
from planb.config import SiteConfig
from planb.errors import UsageError
from planb.files import write_atomic
from planb.i18n import LANGUAGES, Translator

app = typer.Typer(
    no_args_is_help=True,
    help="Printable runbooks (activate/deactivate the failover, run a drill, rebuild the "
         "fallback, rotate the signing key) and the crisis cell's contact sheet, filled with "
         "this site's commands, hosts and addresses.\n\n"
         "Templates are Markdown + Jinja2 shipped with planb; a file <name>.md.j2 in "
         "<state_dir>/runbooks/ wins over one in <site dir>/runbooks/ (next to planb.yml), "
         "which wins over the shipped one. They render in Jinja2's sandbox: a template "
         "fills in values and cannot run code.\n\n"
         "They are written in the site's language (planb.yml 'language:', fr or en); a "
         "message is overridden in <site dir>/locale/<language>/LC_MESSAGES/planb.po.",
)


class Format(StrEnum):
    md = "md"
    html = "html"
    csv = "csv"


class Origin(StrEnum):
    fallback = "fallback"
    primary = "primary"


@app.command("list")
def list_(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the runbooks: name, title and where the template comes from (state, site, shipped)."""
    from planb.runbooks import catalog  # jinja2: loaded on use

    site = options(ctx).load_site()
    runbooks = catalog.list_runbooks(site)
    if json_out:
        print_json([r.public() for r in runbooks])
        return
    table = Table(title=f"runbooks of site {escape(site.site)}")
    for column in ("name", "title", "source"):
        table.add_column(column)
    for info in runbooks:
        shown = "shipped" if info.origin == "shipped" else f"{info.origin}: {info.path}"
        table.add_row(escape(info.name), escape(info.title), escape(shown))
    console.print(table)
    console.print("Print one: planb runbook render NAME --format html -o NAME.html",
                  highlight=False, soft_wrap=True)


@app.command("render")
def render(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME",
                                        help="A runbook from 'planb runbook list'.")],
    fmt: Annotated[Format, typer.Option(
        "--format", "-f", help="md (Markdown), html (one self-contained page to print), or "
        "csv (crisis-contacts only: a contact sheet for printing and spreadsheets).")
    ] = Format.md,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", dir_okay=False,
        help="Write to FILE instead of standard output.")] = None,
    origin: Annotated[Origin, typer.Option(
        "--from", help="crisis-contacts: read the fallback directory (default: it is what "
        "survives) or the primary source from planb.yml.")] = Origin.fallback,
    snapshot: Annotated[Path | None, typer.Option(
        "--from-snapshot", metavar="FILE", exists=True, dir_okay=False,
        help="crisis-contacts: read the agents from a snapshot written by 'planb sync plan "
        "--snapshot-out FILE'.")] = None,
    language: Annotated[str | None, typer.Option(
        "--language", metavar="LANG",
        help="Language of the runbook: fr or en. Default: the site's 'language:' in "
        "planb.yml (with its 'timezone:' and its locale/ overrides).")] = None,
) -> None:
    """Fill a runbook with this site's values and print it (Markdown, HTML or CSV).

    crisis-contacts lists the crisis cell (planb.yml crisis_cell: directory groups
    and/or titles) by department with name, title, mobile and mail, read from the
    fallback LDAP by default. Its CSV is ';'-separated UTF-8 with a BOM; cells a
    spreadsheet would take for a formula (starting with = + - @, tab or CR) get a
    leading ', so a phone number +33... shows as '+33...: the sheet is meant for
    printing and spreadsheets. Files with contacts are written with mode 0600.
    Runbooks are written in the site's language (planb.yml 'language:', or --language).
    """
    # Jinja2, Markdown and (for contacts) the directory's ldap3: loaded on use.
    from planb.drills.scenario import scenario_summaries
    from planb.runbooks import catalog, contacts, html, values

    site = options(ctx).load_site()
    tr = _translator(site, language)
    info = catalog.find_runbook(site, name, tr)
    needs_directory = "directory" in info.needs
    if not needs_directory and (snapshot is not None or origin is not Origin.fallback):
        raise UsageError(f"--from and --from-snapshot are for runbooks that read the "
                         f"directory (crisis-contacts), not {name}")
    if fmt is Format.csv and not needs_directory:
        raise UsageError(f"--format csv is for the contact sheet (crisis-contacts), not {name}",
                         hint="use --format md or --format html")
    context: dict[str, Any] = values.site_values(
        site, scenarios=scenario_summaries(site.state_dir), tr=tr)
    sheet = None
    if needs_directory:
        sheet = contacts.crisis_sheet(site, origin=origin.value, snapshot=snapshot, tr=tr)
        context["cell"] = contacts.sheet_values(sheet, site.crisis_cell, tr)
    if fmt is Format.csv:
        assert sheet is not None
        buffer = io.StringIO()
        contacts.write_csv(sheet, buffer)
        text = buffer.getvalue()
        _emit(text, output, sensitive=True, bom=True)
        return
    rendered = catalog.render(site, info, context, tr)
    text = rendered.markdown
    if fmt is Format.html:
        text = html.to_html(rendered, site=site.site, organisation=site.organisation,
                            generated_at=context["generated_at"], tr=tr)
    _emit(text, output, sensitive=needs_directory, bom=False)


def _translator(site: SiteConfig, language: str | None) -> Translator:
    """The site's language, time zone and catalogue overrides; ``--language`` wins."""
    if language is not None and language not in LANGUAGES:
        raise UsageError(f"--language {language!r}: use one of {', '.join(LANGUAGES)}")
    return site.translator(language)


def _emit(text: str, output: Path | None, *, sensitive: bool, bom: bool) -> None:
    """Write to ``output`` (atomically, 0600 when it holds personal data) or stdout."""
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    data = ("\ufeff" if bom else "") + text
    write_atomic(output, data.encode("utf-8"), 0o600 if sensitive else 0o644)
    console.print(f"wrote {escape(str(output))}", highlight=False, soft_wrap=True)
