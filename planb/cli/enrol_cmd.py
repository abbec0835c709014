"""``planb enrol``: hand enrolment codes to agents without the main system."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planb.cli.context import console, err_console, options, print_json
from planb.config import SiteConfig
from planb.errors import PlanbError, UsageError
from planb.files import write_atomic
from planb.i18n import LANGUAGES

if TYPE_CHECKING:  # ldap3 is loaded when a command runs, so 'planb --help' starts fast
    from planb.enrolment.source import Batch

app = typer.Typer(
    help=(
        "Hand the agents their one-time enrolment codes on paper or through a mail-merge "
        "or SMS tool, and give a new code to an agent who lost theirs.\n\n"
        "An agent opens https://<public_hostname>/enrol/, types their login and code and "
        "chooses a password for the fallback (where the main directory keeps passwords to "
        "itself, as Active Directory does, that is their only way in; elsewhere it resets a "
        "forgotten password). 'planb sync apply' issues the codes; these commands read "
        "who holds one from the fallback directory and derive each code again from the "
        "site's key (<state dir>/keys/enrolment.key), so letters can be printed again at "
        "any time. The files written hold live codes: mode 0600, keep them like "
        "passwords, and delete them once handed out. Codes are never logged."
    ),
    no_args_is_help=True,
)

DepartmentOption = Annotated[
    list[str] | None,
    typer.Option("--department", "-d", metavar="NAME",
                 help="Only this department's agents (as in the directory; repeat for more)."),
]
LoginOption = Annotated[
    list[str] | None,
    typer.Option("--login", "-l", metavar="LOGIN",
                 help="Only this agent (repeat for more): e.g. a reprint after 'planb enrol "
                      "reissue'."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (counts and file, "
                                                         "never a code).")]


class LetterFormat(StrEnum):
    html = "html"
    pdf = "pdf"


def _batch(site: SiteConfig, departments: list[str] | None, logins: list[str] | None
           ) -> Batch:
    from planb.enrolment.source import read_batch

    batch = read_batch(site, departments=departments or (), logins=logins or ())
    if batch.missing:
        raise UsageError(
            f"no live enrolment code for {', '.join(batch.missing)}: nothing was written",
            hint="an agent who has enrolled, or whose code expired or was locked by wrong "
                 "tries, needs a new one: planb enrol reissue LOGIN...")
    if not batch.letters:
        raise UsageError("no agent holds a live enrolment code here: nothing was written",
                         hint="codes are issued by 'planb sync apply' (enrolment.enabled "
                              "in planb.yml); check --department")
    return batch


def _summary(batch: Batch, output: Path, what: str, json_output: bool) -> None:
    scan = batch.scan
    departments = len({x.department for x in batch.letters})
    if json_output:
        print_json({"file": str(output), "mode": "0600", "letters": len(batch.letters),
                    "departments": departments, "key_checked": batch.checked,
                    "expired": scan.expired, "locked": scan.locked})
        return
    console.print(f"wrote {output} (mode 0600): {what} for {len(batch.letters)} agent(s) in "
                  f"{departments} department(s)", highlight=False, soft_wrap=True)
    console.print("It holds live codes: keep it like passwords, and delete it once the codes "
                  "are handed out.", highlight=False, soft_wrap=True)
    if scan.expired:
        err_console.print(f"{len(scan.expired)} code(s) expired (not included): the next "
                          "'planb sync apply' renews them", highlight=False)
    if scan.locked:
        err_console.print(f"{len(scan.locked)} code(s) locked by wrong tries (not included): "
                          f"planb enrol reissue {' '.join(scan.locked[:10])}"
                          f"{' ...' if len(scan.locked) > 10 else ''}", highlight=False)


@app.command("letters")
def letters(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", dir_okay=False,
        help="Where to write the letters (default: enrolment-letters.html, or .pdf).")] = None,
    file_format: Annotated[LetterFormat | None, typer.Option(
        "--format", "-f", help="html, or pdf (printed by Chromium). Default: from the "
                               "--output suffix, else html.")] = None,
    department: DepartmentOption = None,
    login: LoginOption = None,
    language: Annotated[str | None, typer.Option(
        "--language", metavar="LANG", help="fr or en. Default: the language of the site's "
                                           "announcement (planb.yml 'language:', else fr).")]
    = None,
    json_output: JsonOption = False,
) -> None:
    """Write one printable A4 letter per agent holding a live code, grouped by department.

    Each department starts on a cover page listing whose letters follow (no codes); each
    letter gives the agent's login and code, the enrolment page's address with a QR code
    to it, the welcome page's address, and what to do, in the site's language.

    What to do with them: print (A4, no browser headers and footers), fold so the code
    does not show, and hand each letter to its agent in person or in a sealed envelope
    through their department; then delete the file. An agent who lost their letter:
    'planb enrol reissue LOGIN', then 'planb enrol letters --login LOGIN'.
    """
    from planb.enrolment.letters import render_letters

    if language is not None and language not in LANGUAGES:
        raise UsageError(f"--language {language!r}: use one of {', '.join(LANGUAGES)}")
    chosen = file_format or (LetterFormat.pdf if output and output.suffix.lower() == ".pdf"
                             else LetterFormat.html)
    output = output or Path(f"enrolment-letters.{chosen.value}")
    site = options(ctx).load_site()
    batch = _batch(site, department, login)
    book = render_letters(site, batch.letters, language=language)
    if chosen is LetterFormat.pdf:
        from planb.enrolment.pdf import print_pdf

        print_pdf(book.html, output)
    else:
        write_atomic(output, book.html, 0o600)
    _summary(batch, output, f"{chosen.value.upper()} letters in {book.language}", json_output)


@app.command("export")
def export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option(
        "--output", "-o", metavar="FILE", dir_okay=False,
        help="The CSV file to write (UTF-8).")],
    department: DepartmentOption = None,
    login: LoginOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write a CSV of the live codes for a mail-merge or SMS tool.

    Columns: login, name, department, mail, mobile, code, valid_until, letter_no,
    enrol_url, welcome_url (one row per agent, by department then login). Cells a
    spreadsheet would run as formulas (starting with =, +, -, @) get a leading ' (a
    mobile number such as +33 6... too: strip it if your SMS tool does not). Send
    each agent only their own row, to an address or phone of theirs that does not depend
    on the main system; then delete the file.
    """
    from planb.enrolment.export import render_csv

    site = options(ctx).load_site()
    batch = _batch(site, department, login)
    write_atomic(output, render_csv(site, batch.letters), 0o600)
    _summary(batch, output, "CSV rows", json_output)


@app.command("reissue")
def reissue(
    ctx: typer.Context,
    logins: Annotated[list[str], typer.Argument(metavar="LOGIN",
                                                help="The agents who need a new code.")],
    json_output: JsonOption = False,
) -> None:
    """Give agents a new enrolment code now: a forgotten password, a lost letter, or a
    code locked by wrong tries.

    The new code replaces the old one at once (an old letter stops working), is valid
    enrolment.code_valid_days, and its wrong tries start from zero. A leaver or an
    unknown login gets nothing (exit status 1). Then print their letter:
    planb enrol letters --login LOGIN [-o letter.pdf], and hand it over in person
    (check who you give it to: the code lets its holder choose the password).
    """
    from planb.directory.enrolment import reissue_codes

    site = options(ctx).load_site()
    report = reissue_codes(site, logins)
    issued = [r.login for r in report.issued]
    if json_output:
        print_json({"issued": [{"login": r.login, "serial": r.serial,
                                "expires": r.expires.isoformat()} for r in report.issued],
                    "refused": report.refused})
    else:
        for r in report.issued:
            console.print(f"{r.login}: new code (letter no. {r.serial}), valid until "
                          f"{r.expires:%Y-%m-%d}", highlight=False, soft_wrap=True)
        for login, why in report.refused.items():
            err_console.print(f"{login}: no new code: {why}", highlight=False,
                              soft_wrap=True)
        if issued:
            shown = " ".join(f"--login {login}" for login in issued)
            console.print(f"Next: print the letter(s): planb enrol letters {shown} -o "
                          "letters.pdf (or .html), and hand each one over in person.",
                          highlight=False, soft_wrap=True)
    if report.refused:
        raise PlanbError(f"{len(report.refused)} of {len(logins)} login(s) got no new code")
