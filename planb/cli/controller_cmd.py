"""``planb controller``: the controller's state copied to the hosts, and rebuilt from them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from planb.cli.context import console, err_console, options, print_json
from planb.errors import UsageError
from planb.reports.keys import PassphraseSource

app = typer.Typer(
    no_args_is_help=True,
    help="Keep the controller's state off the controller, and rebuild a controller from it.\n\n"
    "After every planb command that changes the state (journals, audit log, keys' public "
    "parts, planb.yml, inventory), planb pushes a copy to each fallback messaging host and, "
    "with backups on, each backup host (/var/lib/planb/controller-copy/copy.tar, root "
    "only); not after Ctrl-C, nor for 'planb lab'. Secrets "
    "(signing key, vault, enrolment key, CA key, tokens...) go only encrypted, under a "
    "copy key wrapped by the crisis cell's passphrase: set it once with 'planb controller "
    "passphrase'; until then the copy holds the public part only. "
    f"${'PLANB_STATE_COPY'}=off stops the automatic push.",
)

PassphraseFileOption = Annotated[
    Path | None,
    typer.Option("--passphrase-file", metavar="FILE", dir_okay=False,
                 help="Read the crisis cell's passphrase from FILE (one line) instead of "
                 "asking for it."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _passphrase(path: Path | None, *, confirm: bool) -> bytes:
    if path is not None:
        value = PassphraseSource(file=path).read()
        assert value is not None
        return value
    if not sys.stdin.isatty():
        raise UsageError("no passphrase: give --passphrase-file FILE (no terminal to ask on)")
    text = typer.prompt("Crisis cell's passphrase", hide_input=True,
                        confirmation_prompt=confirm)
    return text.encode("utf-8")


@app.command("passphrase")
def passphrase(ctx: typer.Context, passphrase_file: PassphraseFileOption = None) -> None:
    """Set (or change) the crisis cell's passphrase that opens the copy's secrets.

    The first time, a random copy key is made (<state dir>/keys/copy.key, 0600); the
    passphrase wraps it (scrypt) in keys/copy-key.json, which travels with the copy.
    Write the passphrase down for the crisis cell's safe: without it the secrets in the
    copies cannot be opened. The copies are pushed again at once.
    """
    from planb.statecopy.crypto import set_passphrase

    site = options(ctx).load_site()
    made = set_passphrase(site.state_dir, _passphrase(passphrase_file, confirm=True))
    console.print(("copy key made and " if made else "copy key kept, ")
                  + "wrapped under the new passphrase: copies pushed from now on carry "
                  "the site's secrets, encrypted", highlight=False)
    from planb.statecopy.push import auto_push_enabled
    from planb.statecopy.push import push as push_copy

    if auto_push_enabled(site):
        for r in push_copy(site):
            console.print(f"{r.host}: copy pushed ({r.size} bytes)" if r.ok else
                          f"[yellow]{r.host}: copy not pushed[/]: {escape(r.error)} "
                          "('planb controller push' retries)", highlight=False)


@app.command("push")
def push(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Push the copy of the state to every fallback messaging and backup host now.

    Exit 1 when a host could not be reached (the others still get theirs).
    """
    from planb.errors import PlanbError
    from planb.statecopy.push import push as push_copy

    site = options(ctx).load_site()
    results = push_copy(site)
    if json_output:
        print_json([r.as_json() for r in results])
    else:
        for r in results:
            what = "encrypted secrets" if r.encrypted else "public part only (no passphrase)"
            line = (f"{r.host}: pushed {r.size} bytes in {r.seconds:.1f} s, {what}" if r.ok
                    else f"[bold red]{r.host}: not pushed[/]: {escape(r.error)}")
            console.print(line, highlight=False, soft_wrap=True)
    if not results:
        raise PlanbError("no host keeps a copy: the inventory has no fallback_messaging "
                         "or backup host")
    failed = [r.host for r in results if not r.ok]
    if failed:
        raise PlanbError(f"the copy did not reach {', '.join(failed)}")


@app.command("status")
def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show each host's copy: when it was made, whether it holds the secrets, and whether
    it is the state the controller has now."""
    from planb.statecopy.remote import copy_status

    site = options(ctx).load_site()
    rows = copy_status(site)
    if json_output:
        print_json([r.as_json() for r in rows])
        return
    table = Table(title="copies of the controller's state", title_justify="left")
    for column in ("host", "made", "secrets", "current", "detail"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r.host, r.created_at or "", "encrypted" if r.encrypted else "no",
                      "yes" if r.current else "[bold red]no[/]", escape(r.detail))
    console.print(table)


@app.command("restore", epilog="Exit codes: 0 restored, 1 refused (wrong passphrase, "
             "altered copy, broken chain, host unreachable), 2 usage.")
def restore(
    source: Annotated[str | None, typer.Option(
        "--from", metavar="HOST", help="The fallback (or backup) host that keeps a copy: "
        "its address or name.")] = None,
    into: Annotated[Path, typer.Option(
        "--into", metavar="DIR", file_okay=False,
        help="The new site folder (must not exist, or be empty).")] = Path("planb-site"),
    user: Annotated[str, typer.Option("--user", metavar="USER",
                                      help="SSH user on the host.")] = "root",
    key: Annotated[Path | None, typer.Option(
        "--key", metavar="PATH", dir_okay=False, help="SSH private key to log in with "
        "(an administrator's; the break-glass key only runs planb-breakglass).")] = None,
    port: Annotated[int | None, typer.Option("--port", metavar="N", help="SSH port.")] = None,
    host_fingerprint: Annotated[str | None, typer.Option(
        "--host-fingerprint", metavar="SHA256:…",
        help="The host's SSH key fingerprint, from its console or the crisis cell's "
        "papers: refuse any other.")] = None,
    from_file: Annotated[Path | None, typer.Option(
        "--from-file", metavar="FILE", dir_okay=False, exists=True,
        help="A copy.tar taken by hand instead of --from.")] = None,
    passphrase_file: PassphraseFileOption = None,
    public_only: Annotated[bool, typer.Option(
        "--public-only", help="Without the passphrase: journals, audit log, planb.yml and "
        "inventory, no secrets.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Rebuild a controller on this machine from a host's copy of the state.

    Fetches the copy over SSH (the host's key is recorded on first contact, or checked
    against --host-fingerprint, then against the known_hosts inside the copy), checks
    the passphrase (wrong: refused, nothing written), writes the site folder (planb.yml,
    inventory, known_hosts, state dir with its journals, audit log and keys) and checks
    the journals' chain, the audit log and the hosts' break-glass chains before moving
    it into place. Then: planb --config DIR/planb.yml report verify.
    """
    from planb.statecopy.restore import restore as restore_site
    from planb.statecopy.restore import restore_bytes

    if (source is None) == (from_file is None):
        raise UsageError("give the host with --from HOST (or a copy with --from-file FILE)")
    secret = None
    if not public_only and (passphrase_file is not None or sys.stdin.isatty()):
        secret = _passphrase(passphrase_file, confirm=False)
    if from_file is not None:
        done = restore_bytes(from_file.read_bytes(), into, passphrase=secret,
                             public_only=public_only)
    else:
        assert source is not None
        done = restore_site(source, into, user=user, key_file=key, port=port,
                            passphrase=secret, public_only=public_only,
                            host_fingerprint=host_fingerprint)
    if json_output:
        print_json(done.as_json())
        return
    for note in done.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    hosts = ", ".join(f"{h} ({n})" for h, n in done.host_chains.items()) or "none"
    console.print(
        f"restored site {done.site} into {done.config.parent} from the copy made "
        f"{done.copy_created_at} on {escape(done.controller)}: {done.files} files, "
        f"secrets {'restored' if done.secrets else 'NOT restored'}, {done.journals} "
        f"journals (chain verified, head sha256 {done.head_sha256}), "
        f"{done.audit_entries} audit lines, host chains: {hosts}. {done.seconds:.1f} s.\n"
        f"next: planb --config {done.config} report verify", highlight=False,
        soft_wrap=True)
