"""The site values every runbook template sees: names, addresses, paths, commands.

Everything comes from the site's ``planb.yml``, its inventory (read through
:mod:`planb.inventory`, as Ansible sees it) and its state dir (the signing key's
fingerprint, the journal chain's head); the drill scenarios are given by the caller.
Nothing here contacts a host. Values that may be missing (no signing key yet) are
empty strings, never None, so a template tests them with ``{% if ... %}`` and never
prints "None".
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from planb.config import SiteConfig
from planb.errors import PlanbError
from planb.i18n import Translator
from planb.inventory import (
    BACKUP,
    FALLBACK_DIRECTORY,
    FALLBACK_MESSAGING,
    FALLBACK_PROXY,
    FALLBACK_STANDBY,
    InventoryHost,
    first_host,
    load_hosts,
)
from planb.reports.journal import HEAD_NAME, MalformedJournal
from planb.reports.keys import KeyPaths, fingerprint, load_public_key
from planb.reports.store import journals_dir, parse_head
from planb.runbooks.breakglass import breakglass_values

log = logging.getLogger(__name__)

def _host(host: InventoryHost) -> dict[str, Any]:
    return {"name": host.name, "address": host.address, "groups": list(host.groups)}


def key_values(state_dir: Path) -> dict[str, str]:
    """The signing key's public file and fingerprint ('' when there is no key yet), and
    the journal chain's head when printed (``head_seq``, ``head_sha256``; '' when none):
    a paper copy 'planb report verify --head' can check later."""

    paths = KeyPaths.for_state_dir(state_dir)
    values = {"public": str(paths.public), "private": str(paths.private),
              "retired": str(paths.retired), "fingerprint": "", "head_seq": "",
              "head_sha256": ""}
    if paths.public.is_file():
        try:
            values["fingerprint"] = fingerprint(load_public_key(paths.public))
        except PlanbError as exc:
            log.warning("signing key %s unreadable: %s", paths.public, exc.message)
    try:
        head = parse_head((journals_dir(state_dir) / HEAD_NAME).read_bytes())
    except FileNotFoundError:
        return values
    except (OSError, MalformedJournal) as exc:
        log.warning("journal head unreadable: %s", exc)
        return values
    values.update(head_seq=str(head.seq), head_sha256=head.sha256)
    return values


def site_values(site: SiteConfig, *, scenarios: Sequence[Mapping[str, str]] = (),
                now: datetime | None = None, tr: Translator | None = None) -> dict[str, Any]:
    """The values runbook templates are rendered with (see the shipped templates).

    ``scenarios``: the site's drill scenarios (``name``, ``description``), which the
    caller reads with :func:`planb.drills.scenario.scenario_summaries`. Times and
    numbers for people are formatted by ``tr`` (default: the site's language).
    """
    tr = tr or site.translator()
    moment = now or datetime.now(UTC)
    inventory = load_hosts(site)
    hosts = [_host(h) for h in inventory]
    config_path = str(site.source)
    primary = site.primary
    if primary.kind == "csv" and primary.csv is not None:
        primary_where = str(site.base_dir / primary.csv.path)
    else:
        primary_where = primary.ldap.url if primary.ldap is not None else ""
    state_dir = site.state_dir
    lab = site.lab
    # The backup host keeps the fallback's backups; it is not one of the fallback's hosts.
    fallback_hosts = [_host(h) for h in inventory if h.is_fallback and BACKUP not in h.groups]
    return {
        "generated_at": tr.when(moment.astimezone(UTC).isoformat(), precise=False),
        "language": tr.language,
        # Every command is printed with the site's config, so it works from any folder.
        "planb": f"planb -c {shlex.quote(config_path)}",
        "site": {
            "name": site.site, "organisation": site.organisation, "config": config_path,
            "dir": str(site.base_dir), "inventory": str(site.inventory_dir),
            "state_dir": str(state_dir), "is_lab": lab is not None,
        },
        "matrix": {
            "server_name": site.matrix.server_name,
            "public_hostname": site.matrix.public_hostname,
            "url": f"https://{site.matrix.public_hostname}",
            "federation": site.matrix.federation,
        },
        "fallback": {"ldap_suffix": site.fallback.ldap_suffix},
        "primary": {"kind": primary.kind, "where": primary_where},
        "objectives": {"rto_seconds": site.objectives.rto_seconds,
                       "rto": tr.integer(site.objectives.rto_seconds),
                       "rpo": tr.integer(site.objectives.rpo_seconds)},
        "safety": {"max_deactivate_percent": site.safety.max_deactivate_percent},
        "deploy": {"offline": site.deploy.offline},
        "backup": {"enabled": site.backup.enabled,
                   "hosts": [_host(h) for h in inventory if BACKUP in h.groups],
                   "standby_minutes": site.backup.standby_interval_minutes,
                   "active_minutes": site.backup.active_interval_minutes},
        "lab": {"bridge": lab.bridge if lab else "", "subnet": lab.subnet if lab else ""},
        "hosts": hosts,
        "fallback_hosts": fallback_hosts,
        "host_list": ", ".join(f"`{h['name']}` ({h['address']})" for h in fallback_hosts),
        # The hot standbys (issue 14): the activate-failover runbook's promote path.
        "standby_hosts": [_host(h) for h in inventory if FALLBACK_STANDBY in h.groups],
        "directory_host": _host(first_host(site, FALLBACK_DIRECTORY, inventory)),
        "messaging_host": _host(first_host(site, FALLBACK_MESSAGING, inventory)),
        "proxy_host": _host(first_host(site, FALLBACK_PROXY, inventory)),
        "paths": {
            "journals": str(state_dir / "journals"),
            "failover": str(state_dir / "failover"),
            "audit_log": str(state_dir / "failover" / "audit.log"),
            "snapshots": str(state_dir / "snapshots"),
            "runs": str(state_dir / "runs"),
            "pki": str(state_dir / "pki"),
            "vault": str(site.inventory_dir / "group_vars" / "all" / "vault.yml"),
        },
        "key": key_values(state_dir),
        # The break-glass path: the same commands the controller-lost drill runs.
        "breakglass": breakglass_values(site, inventory, tr),
        # A shipped scenario's description is in the catalogues; a site's own stays as is.
        "scenarios": [{**s, "description": tr._(s["description"]) if s.get("description")
                       else ""} for s in scenarios],
        "contacts": [{"name": c.name, "role": c.role, "phone": c.phone}
                     for c in site.crisis_cell.contacts],
    }
