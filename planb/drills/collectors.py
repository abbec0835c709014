"""What a drill journal records about the fallback when it ends: versions and footprint.

Both read the fallback hosts over SSH, as ``planb verify`` does (the site's
inventory, testinfra's SSH backend), so they work on a lab and in production alike:

- versions: Synapse's own ``synapse.__version__`` from its virtualenv (the client API's
  ``/versions`` lists spec versions, not the server's), slapd's Debian package
  version, and the browser client's npm packages (from the manifest of the bundle the
  proxy serves it from);
- footprint: for each service (slapd, postgresql, synapse, nginx, coturn) on each
  fallback host, the resident memory of every process in its systemd cgroup, and
  the disk used by its data folder.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from typing import TypeVar

from testinfra.host import Host

from planb.bundle.client import manifest_version
from planb.bundle.manifest import parse_manifest
from planb.config import SiteConfig
from planb.drills.records import Collectors, Footprint, planb_versions
from planb.errors import PlanbError
from planb.inventory import BACKUP, load_hosts
from planb.verify.connections import HostConnections

log = logging.getLogger(__name__)

SYNAPSE_PYTHON = "/opt/synapse/venv/bin/python"
#: The served client's folder links to its bundle id; that bundle's manifest on the host
#: (roles nginx: nginx_client_root, bundle: bundle_root).
CLIENT_MANIFEST = ("id=$(basename \"$(readlink /var/www/planb-client/current)\") && "
                   "[ -n \"$id\" ] && cat /var/cache/planb/bundle/\"$id\"/manifest.json")
#: service -> (group whose hosts run it, systemd unit, data folder or None)
SERVICES: dict[str, tuple[str, str, str | None]] = {
    "slapd": ("fallback_directory", "slapd.service", "/var/lib/ldap"),
    "postgresql": ("fallback_messaging", "postgresql@15-main.service", "/var/lib/postgresql"),
    "synapse": ("fallback_messaging", "synapse.service", "/var/lib/synapse"),
    "nginx": ("fallback_proxy", "nginx.service", None),
    "coturn": ("fallback_proxy", "coturn.service", None),
}
# Sums VmRSS (kB) of every process in the unit's cgroup; prints bytes (empty: not running).
# The cgroup is looked for in the unified (v2) and the hybrid (v1 name=systemd) layouts.
_RSS = ("cg=$(systemctl show -P ControlGroup {unit}); [ -n \"$cg\" ] || exit 0; "
        "for base in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do "
        "[ -r $base$cg/cgroup.procs ] && break; done; "
        "for p in $(cat $base$cg/cgroup.procs 2>/dev/null); do "
        "awk '/^VmRSS:/ {{print $2}}' /proc/$p/status 2>/dev/null; done "
        "| awk '{{s+=$1}} END {{if (NR) print s*1024}}'")

T = TypeVar("T")


def _on_hosts(site: SiteConfig, group: str | None,
              work: Callable[[str, Host, set[str]], T]) -> list[T]:
    """Run ``work(host_name, testinfra_host, groups)`` on each fallback host (of ``group``)."""

    connections = HostConnections()
    try:
        return [work(h.name, connections.get(h), set(h.groups)) for h in load_hosts(site)
                if h.is_fallback and BACKUP not in h.groups
                and (group is None or group in h.groups)]
    finally:
        connections.close()


def _first_line(host: Host, command: str) -> str | None:
    out = host.run(command)
    text = out.stdout.strip()
    return text.splitlines()[0] if out.rc == 0 and text else None


def client_version(host: Host) -> str | None:
    """The browser client ``host`` serves, as its bundle's manifest names it."""
    out = host.run(CLIENT_MANIFEST)
    if out.rc != 0 or not out.stdout.strip():
        return None
    try:
        return manifest_version(parse_manifest(out.stdout, source="the served bundle"))
    except PlanbError as exc:
        log.info("browser client version not known: %s", exc)
        return None


def stack_versions(site: SiteConfig) -> dict[str, str | None]:
    """Synapse's, slapd's and the browser client's versions on the first host of their
    group."""
    found: dict[str, str | None] = {"synapse": None, "slapd": None, "client": None}

    def read(name: str, host: Host, groups: set[str]) -> None:
        if "fallback_messaging" in groups and found["synapse"] is None:
            found["synapse"] = _first_line(host, f"{SYNAPSE_PYTHON} -c 'import synapse; "
                                                 "print(synapse.__version__)'")
        if "fallback_directory" in groups and found["slapd"] is None:
            found["slapd"] = _first_line(host, "dpkg-query -W -f='${Version}' slapd")
        if "fallback_proxy" in groups and found["client"] is None:
            found["client"] = client_version(host)

    _on_hosts(site, None, read)
    return found


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def footprint(site: SiteConfig) -> list[Footprint]:
    """Memory (RSS of the unit's processes) and data disk of each service on each host."""
    def measure(name: str, host: Host, groups: set[str]) -> list[Footprint]:
        rows = []
        for service, (group, unit, folder) in SERVICES.items():
            if group not in groups:
                continue
            memory = _int(_first_line(host, _RSS.format(unit=shlex.quote(unit))))
            disk = _int(_first_line(host, f"du -sb {shlex.quote(folder)} | cut -f1")) \
                if folder else None
            rows.append(Footprint(name, service, memory, disk))
        return rows

    return [row for rows in _on_hosts(site, None, measure) for row in rows]


def site_collectors() -> Collectors:
    """planb's version and commit, the stack's versions, and the footprint."""
    return Collectors(versions=(planb_versions, stack_versions), footprint=(footprint,))
