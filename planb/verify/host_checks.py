"""Checks run on a fallback host over SSH (testinfra): packages, services, ports, file modes.

Each function takes the run's :class:`~planb.verify.registry.CheckContext` and the
host, returns a short message when the check holds and raises
:class:`~planb.verify.model.CheckFailed` when it does not.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from planb.inventory import FALLBACK_STANDBY, load_hosts
from planb.verify.model import CheckFailed
from planb.verify.ports import compare, expected_rules, parse_ss

if TYPE_CHECKING:
    from planb.inventory import InventoryHost
    from planb.verify.registry import CheckContext

#: Unit that runs PostgreSQL on Debian 12 (postgresql.service only starts clusters).
POSTGRESQL_UNIT = "postgresql@{version}-main"


def packages(*names: str):  # type: ignore[no-untyped-def]
    """A check that ``names`` are installed Debian packages (message: their versions)."""
    def check(ctx: CheckContext, host: InventoryHost) -> str:
        remote = ctx.remote(host)
        versions, missing = [], []
        for name in names:
            package = remote.package(name)
            if package.is_installed:
                versions.append(f"{name} {package.version}")
            else:
                missing.append(name)
        if missing:
            raise CheckFailed("not installed: " + ", ".join(missing))
        return ", ".join(versions)
    return check


def synapse_venv(ctx: CheckContext, host: InventoryHost) -> str:
    """Synapse and its LDAP provider import from their virtualenv."""
    venv = str(host.hostvars.get("synapse_venv", "/opt/synapse/venv"))
    code = ("import synapse, ldap_auth_provider, psycopg2; "
            "print(synapse.__version__, ldap_auth_provider.__version__)")
    out = ctx.remote(host).run(f"{shlex.quote(venv + '/bin/python')} -c {shlex.quote(code)}")
    if out.rc != 0:
        last = (out.stderr.strip().splitlines() or [f"exit {out.rc}"])[-1]
        raise CheckFailed(f"{venv}: Synapse does not import: {last}")
    synapse, ldap = out.stdout.split()
    return f"{venv}: matrix-synapse {synapse}, matrix-synapse-ldap3 {ldap}"


def unit_name(unit: str, host: InventoryHost) -> str:
    """``unit`` on ``host``: :data:`POSTGRESQL_UNIT` gets the host's PostgreSQL version."""
    return unit.format(version=host.hostvars.get("postgresql_version", "15"))


def service(unit: str, enabled_unit: str | None = None):  # type: ignore[no-untyped-def]
    """A check that ``unit`` is active and ``enabled_unit`` (default: itself) enabled."""
    def check(ctx: CheckContext, host: InventoryHost) -> str:
        remote = ctx.remote(host)
        name = unit_name(unit, host)
        state = remote.run(f"systemctl is-active {shlex.quote(name)}").stdout.strip()
        enabled_name = enabled_unit or name
        enabled = remote.run(f"systemctl is-enabled {shlex.quote(enabled_name)}").stdout.strip()
        problems = []
        if state != "active":
            problems.append(f"{name} is {state or 'unknown'}")
        if enabled != "enabled":
            problems.append(f"{enabled_name} is {enabled or 'not found'} at boot")
        if problems:
            raise CheckFailed("; ".join(problems))
        return f"{name} active" + (f", {enabled_name} enabled" if enabled_unit else ", enabled")
    return check


def listening_ports(ctx: CheckContext, host: InventoryHost) -> str:
    """Exactly the expected sockets beyond loopback; loopback-only ones stay there."""
    out = ctx.remote(host).run("ss -Hlntu")
    if out.rc != 0:
        raise RuntimeError(f"ss -Hlntu failed: {out.stderr.strip()}")
    standby = any(FALLBACK_STANDBY in h.groups for h in load_hosts(ctx.site))
    result = compare(parse_ss(out.stdout), expected_rules(host.groups, host.hostvars,
                                                          standby=standby))
    if not result.ok:
        raise CheckFailed(result.describe())
    return result.describe()


def _stat(ctx: CheckContext, host: InventoryHost, pattern: str) -> list[tuple[str, int, str, str]]:
    """(path, mode, owner, group) of the files matching the shell glob ``pattern``."""
    out = ctx.remote(host).run(
        f"for f in {pattern}; do [ -e \"$f\" ] && stat -c '%a %U %G %n' \"$f\"; done; true")
    rows = []
    for line in out.stdout.splitlines():
        mode, owner, group, path = line.split(" ", 3)
        rows.append((path, int(mode, 8), owner, group))
    return rows


def file_modes(pattern: str, *, what: str, forbid: int = 0o027,
               groups: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """A check that files matching ``pattern`` exist and have none of the ``forbid`` bits.

    ``forbid`` 0o027 means: 0640 or stricter (no group write, nothing for others).
    ``groups``: the group owners allowed (empty: any).
    """
    def check(ctx: CheckContext, host: InventoryHost) -> str:
        rows = _stat(ctx, host, pattern)
        if not rows:
            raise CheckFailed(f"no {what} found ({pattern})")
        bad = [f"{path} is {mode:04o} {owner}:{group}" for path, mode, owner, group in rows
               if mode & forbid or (groups and group not in groups)]
        if bad:
            allowed = f"{0o777 & ~forbid & 0o666:04o} or stricter" + (
                f", group {'/'.join(groups)}" if groups else "")
            raise CheckFailed(f"{what} must be {allowed}: " + "; ".join(bad))
        return ", ".join(f"{path.rsplit('/', 1)[-1]} {mode:04o} {owner}:{group}"
                         for path, mode, owner, group in rows)
    return check
