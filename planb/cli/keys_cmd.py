"""``planb keys``: the site's journal-signing key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planb.cli.context import console, err_console, options, print_json
from planb.engine.records import resolve_operator
from planb.files import write_atomic
from planb.reports.keys import (
    PASSPHRASE_ENV,
    KeyPaths,
    PassphraseSource,
    Signer,
    fingerprint,
    init_keys,
    load_private_key,
    load_public_key,
    public_pem,
)
from planb.reports.store import JournalStore
from planb.reports.trust import record_rotation

app = typer.Typer(
    help="Create and export the Ed25519 key that signs journals (drills, failovers).",
    no_args_is_help=True,
)

PassphraseFileOption = Annotated[
    Path | None,
    typer.Option("--passphrase-file", metavar="FILE", dir_okay=False,
                 help="Read the key's passphrase from FILE (one line)."),
]
PassphraseEnvOption = Annotated[
    str | None,
    typer.Option("--passphrase-env", metavar="VAR",
                 help=f"Read the key's passphrase from environment variable VAR "
                 f"(default: ${PASSPHRASE_ENV} if set)."),
]


@app.command("init")
def init(
    ctx: typer.Context,
    passphrase_file: PassphraseFileOption = None,
    passphrase_env: PassphraseEnvOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing signing key.")]
    = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create the signing key in <state dir>/keys/ (private key mode 0600).

    With a passphrase the private key is stored encrypted, and every command that
    signs (drill, failover, report annotate) needs the same passphrase. Without
    --force an existing key is never replaced; with it, the old public key is kept
    in keys/retired/ and a key-rotation journal signed with the new key records its
    retirement: journals it signed before verify, any it signs later do not.
    Pin the fingerprint in planb.yml (reports.trusted_keys).
    """
    config = options(ctx).load_site()
    paths = KeyPaths.for_state_dir(config.state_dir)
    passphrase = PassphraseSource(file=passphrase_file, env=passphrase_env).read()
    old = load_public_key(paths.public) if force and paths.public.exists() else None
    fp = init_keys(paths, passphrase, force=force)
    rotation = None
    if old is not None and fingerprint(old) != fp:
        store = JournalStore.for_state_dir(config.state_dir,
                                           Signer(load_private_key(paths.private, passphrase)))
        rotation = record_rotation(store, old, by=resolve_operator(None))
    if json_output:
        print_json({"algorithm": "Ed25519", "fingerprint": fp, "private_key": str(paths.private),
                    "public_key": str(paths.public), "encrypted": bool(passphrase),
                    "retired": fingerprint(old) if old is not None else None,
                    "rotation_journal": rotation.path.name if rotation else None})
        return
    state = "encrypted with the passphrase" if passphrase else "NOT encrypted (no passphrase)"
    console.print(f"wrote {paths.private} (mode 0600, {state})", highlight=False, soft_wrap=True)
    console.print(f"wrote {paths.public}", highlight=False, soft_wrap=True)
    console.print(f"fingerprint {fp}", highlight=False, soft_wrap=True)
    if rotation is not None and old is not None:
        console.print(f"retired {fingerprint(old)}: recorded in {rotation.path.name}, signed "
                      "with the new key", highlight=False, soft_wrap=True)
    console.print(f"Next: pin it in planb.yml, reports: trusted_keys: [\"{fp}\"]; give "
                  "auditors the public key: planb keys export -o site-signing.pub",
                  highlight=False, soft_wrap=True)


@app.command("export")
def export(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", dir_okay=False,
                                  help="Write the public key (PEM) to FILE.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the public key (PEM) and its fingerprint, for auditors.

    The fingerprint is SHA256: and the hex SHA-256 of the raw 32-byte
    public key; every journal names the key it was signed with this way.

    Without -o the PEM goes to stdout and the fingerprint to stderr,
    so 'planb keys export > site.pub' gives a clean key file.
    """
    config = options(ctx).load_site()
    paths = KeyPaths.for_state_dir(config.state_dir)
    key = load_public_key(paths.public)
    pem, fp = public_pem(key), fingerprint(key)
    if output is not None:
        write_atomic(output, pem.encode("ascii"), 0o644)
    if json_output:
        data = {"algorithm": "Ed25519", "fingerprint": fp, "public_key_pem": pem,
                "file": str(output or paths.public)}
        print_json(data)
    elif output is not None:
        console.print(f"wrote {output}", highlight=False, soft_wrap=True)
        console.print(f"fingerprint {fp}", highlight=False, soft_wrap=True)
    else:
        typer.echo(pem, nl=False)
        err_console.print(f"fingerprint {fp}", highlight=False, soft_wrap=True)


@app.command("breakglass")
def breakglass(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(
        "--out", metavar="DIR", file_okay=False,
        help="Folder for the pair: planb-breakglass (private, 0600) and planb-breakglass.pub.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Make a new pair; the next 'planb deploy' lets only it in.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Make the break-glass SSH key: the way to switch the fallback when this controller
    is gone.

    The private part goes to the crisis cell's safe (print or copy it, then delete it
    here); the public part is kept in <state dir>/keys/breakglass.pub and 'planb deploy'
    puts it in root's authorized_keys on each fallback messaging host, restricted to
    planb-breakglass (no shell). Then, from any machine:
    ssh -i planb-breakglass root@HOST activate --operator NAME --reason TEXT.
    """
    from planb.breakglass.sshkey import make_breakglass_key

    site = options(ctx).load_site()
    made = make_breakglass_key(out, site.state_dir, site=site.site, force=force)
    if json_output:
        print_json({"algorithm": "ssh-ed25519", "fingerprint": made.fingerprint,
                    "private_key": str(made.private), "public_key": str(made.public),
                    "controller_copy": str(made.controller_copy)})
        return
    console.print(f"wrote {made.private} (mode 0600): put it in the crisis cell's safe, then "
                  "delete it from this machine", highlight=False, soft_wrap=True)
    console.print(f"wrote {made.public}; kept {made.controller_copy} for deploy",
                  highlight=False, soft_wrap=True)
    console.print(f"fingerprint {made.fingerprint}", highlight=False, soft_wrap=True)
    console.print("Next: 'planb deploy' (the messaging hosts let this key run planb-breakglass "
                  "only)", highlight=False, soft_wrap=True)
