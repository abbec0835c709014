"""``planb report``: list, show, verify, repair, export, trend and annotate the signed journals."""

from __future__ import annotations

import json
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from planb.cli.context import console, err_console, options, print_json
from planb.cli.host_chains import HOSTS_NOTE, host_chain_json, host_chains, print_host_chain
from planb.cli.keys_cmd import PassphraseEnvOption, PassphraseFileOption
from planb.cli.report_trust import (
    HeadOption,
    TrustOption,
    check_head_option,
    check_site_audit,
    print_audit,
    print_head,
    repair_site,
    resolve_cli_trust,
    site_or_none,
)
from planb.engine.records import resolve_operator
from planb.errors import UsageError
from planb.files import write_atomic
from planb.i18n import LANGUAGES, Translator
from planb.reports.journal import StoredJournal
from planb.reports.keys import KeyPaths, PassphraseSource, load_signer
from planb.reports.store import JournalNotFound, JournalStore, journals_dir
from planb.reports.summary import summarise
from planb.reports.trust import Trust
from planb.reports.verify import JournalCheck, VerificationFailed, verify_directory

log = logging.getLogger(__name__)

app = typer.Typer(
    help="List, show, verify, repair and export the signed, hash-chained journals of drills "
    "and failovers; draw the drills' trend; add signed observations and actions.",
    no_args_is_help=True,
)

PublicKeyOption = Annotated[
    list[Path] | None,
    typer.Option("--public-key", "-k", metavar="FILE", dir_okay=False,
                 help="Public key (PEM, from 'planb keys export'); repeatable. Trusted "
                 "unless --trust or reports.trusted_keys pins others. Default: the site's "
                 "keys/signing.pub; retired keys are trusted through the journal that "
                 "retired them."),
]
DirOption = Annotated[
    Path | None,
    typer.Option("--dir", "-d", metavar="DIR", file_okay=False,
                 help="Journals folder (default: the site's <state dir>/journals)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IdArgument = Annotated[str, typer.Argument(metavar="ID",
                                           help="Seq number, id (or its start), or file name.")]
LanguageOption = Annotated[
    str | None,
    typer.Option("--language", metavar="LANG",
                 help="Language of the page: fr or en. Default: the site's 'language:' in "
                 "planb.yml (its 'timezone:' and its locale/ overrides too), else en."),
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", metavar="FILE", dir_okay=False,
                 help="Write to FILE instead of standard output."),
]


class Format(StrEnum):
    html = "html"
    md = "md"
    json = "json"
    junit = "junit"


def _state_dir(ctx: typer.Context) -> Path:
    return options(ctx).load_site().state_dir


def _translator(ctx: typer.Context, language: str | None) -> Translator:
    """The site's language, time zone and catalogue overrides; ``--language`` wins."""
    site = site_or_none(ctx)
    if language is not None and language not in LANGUAGES:
        raise UsageError(f"--language {language!r}: use one of {', '.join(LANGUAGES)}")
    if site is None:
        return Translator(language or "en")
    return site.translator(language)


def _keys(ctx: typer.Context, given: list[Path] | None, *, required: bool,
          pins: list[str] | None = None) -> Trust:
    """The trust: pins, else the given files, else the site's key (optional for list/show)."""
    return resolve_cli_trust(ctx, given, pins, required=required)


@app.command("verify")
def verify(
    ctx: typer.Context,
    directory: DirOption = None,
    public_key: PublicKeyOption = None,
    trust: TrustOption = None,
    head: HeadOption = None,
    json_output: JsonOption = False,
    positional_dir: Annotated[Path | None, typer.Argument(
        metavar="DIR", file_okay=False, hidden=True)] = None,
) -> None:
    """Check every journal's signature and the hash chain; exit 1 naming the first bad one.

    Works on a copied folder on another machine, without planb.yml,
    when --dir and --public-key (or --trust) are given. Prints the head
    (newest journal's SHA-256) to keep elsewhere; --head checks it.
    On the site, the failover audit log's chain and signed head are checked too, and
    each fallback host's break-glass journals and audit log (fetched by 'planb failover
    status' into journals/hosts/<host>/) with that host's key, keys/hosts/<host>.pub
    only: a broken host chain or one signed by another key fails. A site whose only
    record so far is hosts' break-glass journals verifies on those; nothing at all
    to verify fails.

    Failures: altered (signature does not match the content),
    missing (a journal was removed), reordered (files swapped or renamed),
    unknown key (not pinned, or only dropped into keys/retired/),
    retired key (signed after the key's rotation), unsigned
    (see 'report repair'), malformed, truncated / head mismatch (--head).
    """
    # DIR as an argument: how 'report verify' took the folder before --dir.
    if directory is not None and positional_dir is not None and directory != positional_dir:
        raise UsageError("give the journals folder once: --dir DIR")
    folder = directory or positional_dir or journals_dir(_state_dir(ctx))
    keys = _keys(ctx, public_key, required=True, pins=trust)
    result = verify_directory(folder, keys, expected_head=check_head_option(head))
    # The audit log is the site's: checked when the folder is the site's own.
    site = None if directory or positional_dir else site_or_none(ctx)
    audit = check_site_audit(site, result)
    hosts = host_chains(site)
    if json_output:
        print_json({**result.as_json(), "audit_log": None if audit is None else {
            "ok": audit.ok, "entries": audit.entries, "problem": audit.problem,
            "notes": list(audit.notes), "last_sha256": audit.head_sha256},
            "hosts": [host_chain_json(c) for c in hosts]})
    else:
        _print_checks(result.journals, title=f"Journals in {folder}")
        for note in result.notes:
            if note != HOSTS_NOTE:
                console.print(f"note: {escape(note)}", highlight=False)
        if audit is not None:
            print_audit(audit)
        for chain in hosts:
            print_host_chain(chain)
    host_signed = sum(len(c.result.journals) for c in hosts if c.result is not None)
    if not result.journals and not host_signed:
        raise VerificationFailed(f"{folder}: no journals to verify")
    failure = result.failure
    if failure is not None:
        raise VerificationFailed(f"verification FAILED at {failure}",
                                 hint="journals from there on cannot be trusted")
    if audit is not None and audit.problem is not None:
        raise VerificationFailed(f"the failover audit log was altered: {audit.problem}",
                                 hint="the journals verify; the audit log cannot be trusted")
    broken = [c for c in hosts if not c.ok]
    if broken:
        raise VerificationFailed("; ".join(f"host {c.host}'s break-glass record FAILED: "
                                           f"{c.failure}" for c in broken),
                                 hint="what was done on that host cannot be trusted")
    if not json_output and not result.journals:
        # A site whose first record is a break-glass activation on a host: the hosts'
        # chains verified above are the whole record so far.
        console.print(f"OK: no controller journal yet in {folder}; {host_signed} host-signed "
                      "journal(s), every signature and chain valid", highlight=False,
                      soft_wrap=True)
    elif not json_output:
        last = result.journals[-1]
        console.print(
            f"OK: {len(result.journals)} journals, every signature and the chain are valid. "
            f"Newest: {last.file} sha256 {last.sha256}. "
            f"Trusted keys: {', '.join(result.trusted)}", highlight=False, soft_wrap=True)
        print_head(result)


@app.command("repair")
def repair(
    ctx: typer.Context,
    directory: DirOption = None,
    public_key: PublicKeyOption = None,
    trust: TrustOption = None,
    author: Annotated[str | None, typer.Option(
        "--author", metavar="NAME", help="Who repairs (default: $SUDO_USER, $USER).")] = None,
    passphrase_file: PassphraseFileOption = None,
    passphrase_env: PassphraseEnvOption = None,
) -> None:
    """Sign a journal left unsigned by an interrupted write, on the record.

    Only a journal whose sole fault is a missing signature is signed, after its
    content, file name and chain link are checked and only if it names the site's
    signing key; an addendum records who repaired it, when, and with which key.
    Any other failure is refused: it is evidence.
    """
    done = repair_site(ctx, directory, public_key, trust, author,
                       PassphraseSource(file=passphrase_file, env=passphrase_env))
    if not done:
        console.print("nothing to repair: every journal is signed and the chain verifies",
                      highlight=False)
    for item in done:
        console.print(f"signed {item.journal.path.name}; recorded in {item.record.path.name}",
                      highlight=False, soft_wrap=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    directory: DirOption = None,
    public_key: PublicKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List journals: date, kind, scenario, status, RTO and signature state."""
    folder = directory or journals_dir(_state_dir(ctx))
    keys = _keys(ctx, public_key, required=False)
    result = verify_directory(folder, keys) if folder.is_dir() else None
    checks = result.journals if result is not None else ()
    rows = [_row(check) for check in checks]
    if json_output:
        print_json(rows)
        return
    if not rows:
        console.print(f"no journals in {folder}", highlight=False)
        return
    table = Table(title=f"Journals in {folder}", title_justify="left")
    for column in ("seq", "date (UTC)", "kind", "scenario", "status", "RTO / objective",
                   "signature"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["seq"]), _date(row["created_at"]), row["kind"] or "?",
                      row["scenario"] or "", row["status"] or "", row["rto"],
                      _state_text(row["signature"]))
    console.print(table)
    if not keys:
        console.print("signatures not checked: no public key (planb keys init, or "
                      "--public-key FILE)", highlight=False)


@app.command("show")
def show(
    ctx: typer.Context,
    journal: IdArgument,
    directory: DirOption = None,
    public_key: PublicKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one journal: envelope, signature state and a summary of its payload.

    Exit 1 when its signature or place in the chain does not verify (with a public key;
    without one it is shown as not checked). --json prints the whole journal as written
    (envelope and payload) and its verification.
    """
    folder = directory or journals_dir(_state_dir(ctx))
    store = JournalStore(folder)
    found = _find(store, journal)
    keys = _keys(ctx, public_key, required=False)
    check = next((c for c in verify_directory(folder, keys).journals
                  if c.file == found.path.name), None)
    if json_output:
        print_json({"journal": json.loads(found.path.read_bytes()),
                    "verification": _check_json(check),
                    "addenda": [a.path.name for a in store.addenda(found.envelope.id)]})
    else:
        _print_journal(store, found, check)
    if check is not None and check.problem is not None:
        raise VerificationFailed(f"verification FAILED: {check.problem}",
                                 hint="this journal cannot be trusted; 'planb report verify' "
                                 "checks the whole chain")


def _check_json(check: JournalCheck | None) -> dict[str, Any]:
    if check is None:
        return {"checked": False, "signature": "not checked", "chain": "not checked",
                "signed_by": None, "problem": None}
    return {"checked": check.signature != "not checked", "signature": _state(check),
            "chain": check.chain, "signed_by": check.signed_by,
            "problem": None if check.problem is None else {
                "reason": str(check.problem.reason), "message": check.problem.message}}


def _print_journal(store: JournalStore, found: StoredJournal, check: JournalCheck | None
                   ) -> None:
    envelope, summary = found.envelope, summarise(found.payload)
    table = Table(show_header=False, box=None, title=found.path.name, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    # Values are escaped here; only the signature word carries markup.
    fields: list[tuple[str, str]] = [
        ("seq", str(envelope.seq)), ("id", envelope.id), ("kind", escape(envelope.kind)),
        ("created", envelope.created_at),
        ("signature", _state_text(_state(check)) if check else "not checked"),
        ("signed by", envelope.key_fingerprint),
        ("sha256", found.sha256), ("previous", envelope.previous_sha256 or "none (first)"),
        ("scenario", escape(summary.scenario or "")), ("status", escape(summary.status or "")),
        ("RTO / objective", summary.rto_text),
    ]
    if check is not None and check.problem is not None:
        fields.append(("problem", escape(check.problem.message)))
    for name, value in fields:
        if value:
            table.add_row(name, value)
    console.print(table)
    payload = Table(title="payload", title_justify="left")
    payload.add_column("key")
    payload.add_column("value", overflow="fold")
    for key, value in found.payload.items():
        payload.add_row(escape(key), escape(_brief(value)))
    console.print(payload)
    for addendum in store.addenda(envelope.id):
        _print_addendum(addendum)


@app.command("export")
def export(
    ctx: typer.Context,
    journal: IdArgument,
    fmt: Annotated[Format, typer.Option(
        "--format", "-f", help="html: one self-contained accessible page; md: Markdown; "
        "json: the report's sections and the journal; junit: JUnit XML for CI.")] = Format.html,
    output: OutputOption = None,
    directory: DirOption = None,
    public_key: PublicKeyOption = None,
    language: LanguageOption = None,
) -> None:
    """Render one journal as an exercise report, with its addenda.

    The report holds scope, objectives and the outcome against each, participants,
    the timeline of steps, checks and probes, observations, recommendations and
    follow-up actions, versions, footprint, and the signature state and key
    fingerprint. Sampled agents appear as pseudonyms. HTML and Markdown are in the
    site's language (planb.yml 'language:', or --language); JSON and JUnit keep
    stable English keys and words.
    """
    from planb.reports.render import render_report  # jinja2, markdown: loaded on use
    from planb.reports.render.load import load_docs

    folder = directory or journals_dir(_state_dir(ctx))
    found = _find(JournalStore(folder), journal)
    docs = load_docs(folder, _keys(ctx, public_key, required=False))
    doc = next(d for d in docs if d.file == found.path.name)
    addenda = [d for d in docs if d.data.get("kind") == "addendum"
               and isinstance(d.payload.get("target"), dict)
               and d.payload["target"].get("id") == found.id]
    _emit(render_report(fmt.value, doc, addenda, _translator(ctx, language)), output)


@app.command("trend")
def trend(
    ctx: typer.Context,
    output: OutputOption = None,
    directory: DirOption = None,
    public_key: PublicKeyOption = None,
    language: LanguageOption = None,
) -> None:
    """One HTML page over all drills: RTO against the objective and the pass rate.

    Charts are inline SVG, each with a data table; the page is self-contained, in the
    site's language (planb.yml 'language:', or --language).
    """
    from planb.reports.render import render_trend  # jinja2: loaded on use
    from planb.reports.render.load import load_docs

    folder = directory or journals_dir(_state_dir(ctx))
    _emit(render_trend(load_docs(folder, _keys(ctx, public_key, required=False)),
                       _translator(ctx, language)), output)


@app.command("annotate")
def annotate(
    ctx: typer.Context,
    journal: IdArgument,
    observation: Annotated[list[str] | None, typer.Option(
        "--observation", metavar="TEXT", help="What was observed (repeatable).")] = None,
    action: Annotated[list[str] | None, typer.Option(
        "--action", metavar="TEXT",
        help="A recommendation or follow-up action (repeatable).")] = None,
    author: Annotated[str | None, typer.Option(
        "--author", metavar="NAME", help="Who writes it (default: $SUDO_USER, $USER).")] = None,
    passphrase_file: PassphraseFileOption = None,
    passphrase_env: PassphraseEnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add observations and follow-up actions to a journal as a signed addendum.

    The addendum is a new journal in the chain (kind 'addendum') that pins the
    annotated journal by id and SHA-256; the journal itself is never changed.
    Reports of it ('report show', 'report export') show its addenda.
    """
    from planb.reports.annotate import annotate as annotate_journal

    if not observation and not action:
        raise UsageError("give at least one --observation TEXT or --action TEXT")
    state = _state_dir(ctx)
    folder = journals_dir(state)
    target = _find(JournalStore(folder), journal)  # before asking for the key
    signer = load_signer(KeyPaths.for_state_dir(state),
                         PassphraseSource(file=passphrase_file, env=passphrase_env))
    stored = annotate_journal(JournalStore(folder, signer), target.path.name,
                              observations=observation or [], actions=action or [],
                              author=resolve_operator(author))
    if json_output:
        print_json({"addendum": stored.path.name, "id": stored.id, "sha256": stored.sha256,
                    "target": target.path.name, "key_fingerprint": signer.fingerprint})
        return
    console.print(f"addendum {stored.path.name} to {target.path.name}, signed with "
                  f"{signer.fingerprint}", highlight=False, soft_wrap=True)


def _find(store: JournalStore, ref: str) -> StoredJournal:
    """The journal ``ref`` names; an unknown one is a usage error (exit 2)."""
    try:
        return store.get(ref)
    except JournalNotFound as exc:
        raise UsageError(str(exc), hint=exc.hint) from None


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(output, text.encode("utf-8"))
    err_console.print(f"wrote {output}", highlight=False)


def _print_addendum(addendum: StoredJournal) -> None:
    payload = addendum.payload
    author = str(payload.get("author") or "?")
    console.print(f"addendum {addendum.path.name} by {escape(author)} "
                  f"({addendum.envelope.created_at})", highlight=False)
    for label, key in (("observation", "observations"), ("action", "actions")):
        items = payload.get(key)
        for item in items if isinstance(items, list) else []:
            console.print(f"  {label}: {escape(str(item))}", highlight=False, soft_wrap=True)


def _print_checks(checks: tuple[JournalCheck, ...], *, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("seq", "file", "kind", "date (UTC)", "signature", "chain", "problem"):
        table.add_column(column, overflow="fold")
    for check in checks:
        envelope = check.envelope
        table.add_row(str(check.seq), check.file, envelope.kind if envelope else "?",
                      _date(envelope.created_at if envelope else None),
                      _state_text(check.signature), _state_text(check.chain),
                      escape(check.problem.message) if check.problem else "")
    console.print(table)


def _row(check: JournalCheck) -> dict[str, Any]:
    envelope = check.envelope
    summary = summarise(envelope.payload) if envelope else summarise({})
    return {
        "seq": check.seq, "file": check.file, "id": envelope.id if envelope else None,
        "created_at": envelope.created_at if envelope else None,
        "kind": envelope.kind if envelope else None,
        "scenario": summary.scenario, "status": summary.status,
        "rto_seconds": summary.rto_seconds,
        "rto_objective_seconds": summary.rto_objective_seconds, "rto": summary.rto_text,
        "signature": _state(check),
        "problem": check.problem.message if check.problem else None,
    }


def _state(check: JournalCheck) -> str:
    """One word for a listing: valid, not checked, or why it fails."""
    return str(check.problem.reason) if check.problem else check.signature


def _state_text(state: str) -> str:
    # The word carries the meaning; colour only repeats it.
    style = {"valid": "green", "ok": "green", "not checked": "dim"}.get(state, "bold red")
    return f"[{style}]{escape(state)}[/]"


def _date(created_at: str | None) -> str:
    return created_at[:19].replace("T", " ") if created_at else "?"


def _brief(value: Any) -> str:
    if isinstance(value, dict):
        keys = list(value)
        more = ", …" if len(keys) > 6 else ""
        return "{" + ", ".join(keys[:6]) + more + "}"
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "…"

