"""``planb report verify``'s part about the hosts' break-glass chains."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from planb.cli.context import console
from planb.config import SiteConfig
from planb.statecopy.hostjournals import HOSTS_DIR, HostChain, verify_hosts

#: verify_directory's note for the hosts' folder inside the site's journals folder.
HOSTS_NOTE = f"ignored {HOSTS_DIR}: not a journal file"


def host_chains(site: SiteConfig | None) -> list[HostChain]:
    """Every host chain the site's state holds, verified (none off the site)."""
    return [] if site is None else verify_hosts(site.state_dir)


def host_chain_json(chain: HostChain) -> dict[str, Any]:
    return {"host": chain.host, "ok": chain.ok, "problem": chain.failure,
            "key_fingerprint": chain.fingerprint,
            "journals": None if chain.result is None else chain.result.as_json()["journals"],
            "audit_log": None if chain.audit is None else {
                "ok": chain.audit.ok, "entries": chain.audit.entries,
                "problem": chain.audit.problem}}


def print_host_chain(chain: HostChain) -> None:
    count = 0 if chain.result is None else len(chain.result.journals)
    lines = 0 if chain.audit is None else chain.audit.entries
    if chain.ok:
        console.print(f"host {escape(chain.host)}: {count} break-glass journal(s) and "
                      f"{lines} audit line(s), signatures and chain valid "
                      f"(host key {chain.fingerprint})", highlight=False, soft_wrap=True)
    else:
        console.print(f"[bold red]host {escape(chain.host)}: FAILED[/]: "
                      f"{escape(chain.failure or '')}", highlight=False, soft_wrap=True)
