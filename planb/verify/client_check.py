"""Check: the browser client a proxy serves is the bundle's, file for file.

On each proxy host, ``/var/www/planb-client/current`` (the nginx role's copy of the
bundle's ``client/`` folder) must point at the controller's bundle and hold exactly
the bundle manifest's ``client`` files, each with the manifest's sha256 (read with
``sha256sum`` over SSH): a file changed, missing or added on the host fails the
check. Then ``GET /app/`` through nginx over TLS must answer the start page with its
security headers (the CSP allowing nothing but the fallback itself).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from planb.bundle import default_output, load_manifest
from planb.bundle.client import CLIENT_DIR, CLIENT_PATH, manifest_version
from planb.errors import PlanbError
from planb.verify.model import CheckFailed, CheckSkipped
from planb.verify.welcome_check import served_page

if TYPE_CHECKING:
    from planb.inventory import InventoryHost
    from planb.verify.registry import CheckContext

#: Where the nginx role serves the client from (roles/nginx/defaults: nginx_client_root).
SERVED_ROOT = "/var/www/planb-client"
#: Headers the start page must carry, and a fragment each value must hold.
HEADERS = {"Content-Security-Policy": "default-src 'self'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
_SUM_LINE = re.compile(r"^(?P<sha>[0-9a-f]{64}) [ *]\./(?P<file>.+)$")
_SHOWN = 5


def expected_files(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{path under client/: sha256}`` from (bundle file, sha256) pairs."""
    prefix = f"{CLIENT_DIR}/"
    return {file.removeprefix(prefix): sha for file, sha in items if file.startswith(prefix)}


def parse_sums(text: str) -> dict[str, str]:
    """``{path: sha256}`` from ``sha256sum`` lines of files named ``./path``."""
    found = {}
    for line in text.splitlines():
        match = _SUM_LINE.match(line.strip())
        if match:
            found[match["file"]] = match["sha"]
    return found


def differences(expected: Mapping[str, str], served: Mapping[str, str]) -> list[str]:
    """What differs, one phrase each: changed, missing and unlisted files (sorted)."""
    problems = [f"{f} differs from the bundle" for f in sorted(expected)
                if f in served and served[f] != expected[f]]
    problems += [f"{f} is missing" for f in sorted(set(expected) - set(served))]
    problems += [f"{f} is not in the bundle" for f in sorted(set(served) - set(expected))]
    return problems


def _summary(problems: list[str]) -> str:
    more = len(problems) - _SHOWN
    return "; ".join(problems[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")


def client_files(ctx: CheckContext, host: InventoryHost, *,
                 bundle: Path | None = None) -> str:
    """The client's files on ``host`` are the controller bundle's, and /app/ serves them."""
    try:
        manifest = load_manifest(bundle or default_output())
    except PlanbError as exc:
        raise CheckSkipped(f"no bundle on the controller to compare with: {exc}") from None
    expected = expected_files((i.file, i.sha256) for i in manifest.items if i.kind == "client")
    if not expected:
        raise CheckSkipped(f"bundle {manifest.bundle_id} holds no browser client "
                           "(built before the client was added: planb bundle build)")
    current = f"{SERVED_ROOT}/current"
    remote = ctx.remote(host)
    target = remote.run(f"readlink {shlex.quote(current)}").stdout.strip()
    if not target:
        raise CheckFailed(f"{current} is missing on {host.name}: no browser client deployed "
                          "(planb deploy)")
    if Path(target).name != manifest.bundle_id:
        raise CheckFailed(f"{host.name} serves the client of bundle {Path(target).name}, "
                          f"the controller's bundle is {manifest.bundle_id} (planb deploy)")
    out = remote.run(f"cd {shlex.quote(current)}/ && find . -type f -print0 | "
                     "LC_ALL=C sort -z | xargs -0 -r sha256sum")
    if out.rc != 0:
        raise CheckFailed(f"cannot read the client's files in {current}: "
                          f"{out.stderr.strip()[:200]}")
    problems = differences(expected, parse_sums(out.stdout))
    if problems:
        raise CheckFailed(f"the browser client on {host.name} is not the bundle's: "
                          + _summary(problems))
    _start_page(ctx, host)
    return (f"{len(expected)} files match bundle {manifest.bundle_id} "
            f"({manifest_version(manifest)}); {CLIENT_PATH} served")


def _start_page(ctx: CheckContext, host: InventoryHost) -> None:
    page = served_page(ctx.site, host, CLIENT_PATH, "the client's start page", HEADERS)
    csp = page.headers.get("content-security-policy", "")
    if "http:" in csp or "https:" in csp or "*" in csp:
        raise CheckFailed(f"{CLIENT_PATH}'s CSP lets the page reach other hosts: {csp}")
