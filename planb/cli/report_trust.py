"""What ``planb report`` trusts and anchors: --trust, --head, the audit log, repair.

The trusted keys come from outside the journals folder (see
:mod:`planb.reports.trust`): ``--trust FINGERPRINT`` and ``reports.trusted_keys`` in
planb.yml pin them; without a pin, the ``--public-key`` files, else the site's
``keys/signing.pub``. Keys in ``keys/retired/`` are only trusted through a rotation
journal.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from planb.cli.context import console, options
from planb.config import SiteConfig
from planb.engine.records import resolve_operator
from planb.errors import PlanbError, UsageError
from planb.mode import AuditVerdict, verify_audit
from planb.reports.keys import KeyPaths, PassphraseSource, load_public_key, load_signer
from planb.reports.repair import Repaired, repair
from planb.reports.store import JournalStore, journals_dir
from planb.reports.trust import Trust, normalise_fingerprint, resolve_trust
from planb.reports.verify import VerificationResult, verify_directory

log = logging.getLogger(__name__)

TrustOption = Annotated[
    list[str] | None,
    typer.Option("--trust", metavar="FINGERPRINT",
                 help="Trust the key with this fingerprint (SHA256:…, as 'planb keys export' "
                 "prints it; repeatable), on top of reports.trusted_keys in planb.yml. With "
                 "a pin, a key file is never trusted just for being in keys/."),
]
HeadOption = Annotated[
    str | None,
    typer.Option("--head", metavar="SHA256",
                 help="The chain head kept elsewhere (from an earlier 'report verify', a "
                 "printed runbook, or the 'planb journal head' line in the system log): "
                 "fail unless the newest journal is the one with this SHA-256."),
]


def check_head_option(head: str | None) -> str | None:
    """The --head value as 64 lower-case hex digits (``sha256:`` prefix allowed)."""
    if head is None:
        return None
    value = head.strip().lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise UsageError(f"--head {head!r} is not a SHA-256",
                         hint="64 hex digits, as 'planb report verify' prints after 'Head:'")
    return value


def site_or_none(ctx: typer.Context) -> SiteConfig | None:
    """The site configuration, or None where there is none (an auditor's machine)."""
    try:
        return options(ctx).load_site()
    except PlanbError:
        return None


def resolve_cli_trust(ctx: typer.Context, given: list[Path] | None, pins: list[str] | None,
                      *, required: bool) -> Trust:
    """The trust for a report command (see the module docstring).

    ``required``: raise when no key can be found (verify); else signatures are simply
    not checked (list, show, export, trend without a key).
    """
    try:
        return _resolve(ctx, given, pins)
    except PlanbError:
        if required:
            raise
        log.info("no public key available: signatures are not checked")
        return Trust.of([])


def _resolve(ctx: typer.Context, given: list[Path] | None, pins: list[str] | None) -> Trust:
    keys = [load_public_key(path) for path in given or []]
    wanted = [normalise_fingerprint(p) for p in pins or []]
    site = None if keys else site_or_none(ctx)
    if site is None and not keys:
        site = options(ctx).load_site()  # raises the configuration error
    if site is not None:
        wanted += site.reports.trusted_keys
    trust = resolve_trust(pins=wanted, given=keys,
                          site=KeyPaths.for_state_dir(site.state_dir) if site else None)
    absent = [fp for fp, key in trust.roots.items() if key is None]
    if absent and len(absent) == len(trust.roots):
        raise PlanbError(f"no public key file for the trusted fingerprint(s) {', '.join(absent)}",
                         hint="give --public-key FILE (from 'planb keys export')")
    if absent:
        return Trust(roots=trust.roots, material=trust.material, sources=trust.sources,
                     notes=(*trust.notes, *(f"no key file for the pinned {fp}: journals it "
                                            "signed fail as unknown key" for fp in absent)))
    return trust


def print_head(result: VerificationResult) -> None:
    """The head to anchor, with how to check it later."""
    last = result.last
    if last is None or last.sha256 is None:
        return
    console.print(f"Head: seq {last.seq} sha256 {last.sha256} - keep it outside this "
                  f"machine; later, 'planb report verify --head {last.sha256}' fails if "
                  "journals were removed and an older head put back.", highlight=False,
                  soft_wrap=True)


def check_site_audit(site: SiteConfig | None, result: VerificationResult
                     ) -> AuditVerdict | None:
    """The site's failover audit log checked with the keys the journals verified with."""
    if site is None:
        return None
    return verify_audit(site.state_dir, dict(result.keys) if result.keys else None)


def site_audit(ctx: typer.Context, site: SiteConfig) -> AuditVerdict:
    """The site's audit log checked on its own (``failover status``): the head's signature
    with the keys the site's journals verify with, if any."""
    trust = resolve_cli_trust(ctx, None, None, required=False)
    folder = journals_dir(site.state_dir)
    keys = dict(verify_directory(folder, trust).keys) if folder.is_dir() else {
        fp: key for fp, key in trust.roots.items() if key is not None}
    return verify_audit(site.state_dir, keys or None)


def print_audit(verdict: AuditVerdict) -> None:
    if verdict.problem is not None:
        console.print(f"[bold red]audit log ALTERED[/]: {escape(verdict.problem)}",
                      highlight=False, soft_wrap=True)
        return
    for note in verdict.notes:
        console.print(f"note: audit log: {escape(note)}", highlight=False, soft_wrap=True)
    if verdict.entries:
        console.print(f"audit log: {verdict.entries} lines, chain and signed head valid "
                      f"(last line sha256 {verdict.head_sha256})", highlight=False,
                      soft_wrap=True)


def repair_site(ctx: typer.Context, directory: Path | None, given: list[Path] | None,
                pins: list[str] | None, author: str | None,
                passphrase: PassphraseSource) -> list[Repaired]:
    """Sign the orphans of the site's journals folder (or ``directory``) with its key."""
    site = options(ctx).load_site()
    folder = directory or journals_dir(site.state_dir)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such journals folder")
    trust = resolve_cli_trust(ctx, given, pins, required=True)
    signer = load_signer(KeyPaths.for_state_dir(site.state_dir), passphrase)
    return repair(JournalStore(folder, signer), trust, by=resolve_operator(author))
