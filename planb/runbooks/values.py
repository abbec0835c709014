"""The site values every runbook template sees: names, addresses, paths, commands.

Everything comes from the site's ``planb.yml``, its inventory (``hosts.yml``) and its
state dir (the signing key's fingerprint, drill scenarios). Nothing here contacts a
host. Values that may be missing (no signing key yet) are empty strings, never None,
so a template tests them with ``{% if ... %}`` and never prints "None".
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from planb.config import SiteConfig
from planb.errors import ConfigError, PlanbError

log = logging.getLogger(__name__)

FALLBACK_GROUPS = ("fallback_directory", "fallback_messaging", "fallback_proxy")


def _walk(group: Mapping[str, Any], name: str, hosts: dict[str, dict[str, Any]]) -> set[str]:
    """Collect the hosts of ``group`` and its children into ``hosts``; return their names."""
    members: set[str] = set()
    for host, host_vars in (group.get("hosts") or {}).items():
        entry = hosts.setdefault(str(host), {"name": str(host), "address": str(host),
                                             "groups": []})
        if isinstance(host_vars, Mapping) and host_vars.get("ansible_host"):
            entry["address"] = str(host_vars["ansible_host"])
        members.add(str(host))
    children = group.get("children") or {}
    for child_name, child in children.items() if isinstance(children, Mapping) else ():
        members |= _walk(child if isinstance(child, Mapping) else {}, str(child_name), hosts)
    if name != "all":  # a host in a child group is in its parent groups too
        for host in sorted(members):
            if name not in hosts[host]["groups"]:
                hosts[host]["groups"].append(name)
    return members


def inventory_hosts(inventory_dir: Path) -> list[dict[str, Any]]:
    """Every host of ``hosts.yml``: name, address (ansible_host) and groups, by name."""
    path = inventory_dir / "hosts.yml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("inventory not found", path=str(path),
                          hint="create the site with 'planb init DIR' or 'planb lab up'"
                          ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read: {type(exc).__name__}", path=str(path)) from None
    root = data.get("all") if isinstance(data, Mapping) else None
    if not isinstance(root, Mapping):
        raise ConfigError("no 'all' group", path=str(path))
    hosts: dict[str, dict[str, Any]] = {}
    _walk(root, "all", hosts)
    return [hosts[name] for name in sorted(hosts)]


def _first_in(hosts: list[dict[str, Any]], group: str, shown: Path) -> dict[str, Any]:
    for host in hosts:
        if group in host["groups"]:
            return host
    raise ConfigError(f"no host in group {group}", path=str(shown / "hosts.yml"),
                      hint="the runbooks name the fallback's hosts: add them to the inventory")


def key_values(state_dir: Path) -> dict[str, str]:
    """The signing key's public file and fingerprint ('' when there is no key yet)."""
    from planb.reports.keys import KeyPaths, fingerprint, load_public_key

    paths = KeyPaths.for_state_dir(state_dir)
    values = {"public": str(paths.public), "private": str(paths.private),
              "retired": str(paths.retired), "fingerprint": ""}
    if paths.public.is_file():
        try:
            values["fingerprint"] = fingerprint(load_public_key(paths.public))
        except PlanbError as exc:
            log.warning("signing key %s unreadable: %s", paths.public, exc.message)
    return values


def scenario_values(state_dir: Path) -> list[dict[str, str]]:
    """The drill scenarios (shipped and site-local): name and one-line description."""
    from planb.drills.scenario import scenario_files

    found = []
    for name, path in sorted(scenario_files(state_dir).items()):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            data = None
        description = data.get("description", "") if isinstance(data, Mapping) else ""
        found.append({"name": name, "description": " ".join(str(description).split())})
    return found


def site_values(site: SiteConfig, *, now: datetime | None = None) -> dict[str, Any]:
    """The values runbook templates are rendered with (see the shipped templates)."""
    hosts = inventory_hosts(site.inventory_dir)
    config_path = str(site.source)
    primary = site.primary
    if primary.kind == "csv" and primary.csv is not None:
        primary_where = str(site.base_dir / primary.csv.path)
    else:
        primary_where = primary.ldap.url if primary.ldap is not None else ""
    state_dir = site.state_dir
    lab = site.lab
    fallback_hosts = [h for h in hosts if set(h["groups"]) & set(FALLBACK_GROUPS)]
    return {
        "generated_at": (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
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
        "objectives": {"rto_seconds": site.objectives.rto_seconds},
        "safety": {"max_deactivate_percent": site.safety.max_deactivate_percent},
        "deploy": {"offline": site.deploy.offline},
        "lab": {"bridge": lab.bridge if lab else "", "subnet": lab.subnet if lab else ""},
        "hosts": hosts,
        "fallback_hosts": fallback_hosts,
        "host_list": ", ".join(f"`{h['name']}` ({h['address']})" for h in fallback_hosts),
        "directory_host": _first_in(hosts, "fallback_directory", site.inventory_dir),
        "messaging_host": _first_in(hosts, "fallback_messaging", site.inventory_dir),
        "proxy_host": _first_in(hosts, "fallback_proxy", site.inventory_dir),
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
        "scenarios": scenario_values(state_dir),
        "contacts": [{"name": c.name, "role": c.role, "phone": c.phone}
                     for c in site.crisis_cell.contacts],
    }
