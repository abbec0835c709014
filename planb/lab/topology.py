"""Which hosts the lab has, their addresses and inventory groups (pure)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

#: The fallback's inventory groups (DESIGN.md: one host or split across hosts).
from planb.inventory import BACKUP
from planb.inventory import FALLBACK_DIRECTORY as DIRECTORY
from planb.inventory import FALLBACK_MESSAGING as MESSAGING
from planb.inventory import FALLBACK_PROXY as PROXY
from planb.inventory import FALLBACK_STANDBY as STANDBY

PRIMARY = "lab_primary"


@dataclass(frozen=True)
class LabHost:
    """One lab host: its name (also its nspawn machine name) and address."""

    name: str
    address: str
    groups: tuple[str, ...]
    #: The systemd-nspawn machine name: unique per lab, so two labs can run side by side.
    machine: str = ""

    @property
    def veth(self) -> str:
        """The host-side veth that systemd-nspawn creates for ``--network-bridge``."""
        return f"vb-{self.machine or self.name}"


@dataclass(frozen=True)
class Topology:
    """The lab's network and hosts."""

    subnet: str
    bridge: str
    hosts: tuple[LabHost, ...]

    @property
    def gateway(self) -> str:
        """This machine's address on the lab bridge."""
        network = ipaddress.ip_network(self.subnet)
        return str(network.network_address + 1)

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts)
        raise KeyError(f"no lab host {name!r} (hosts: {known})")

    def in_group(self, group: str) -> tuple[LabHost, ...]:
        return tuple(h for h in self.hosts if group in h.groups)


def build_topology(subnet: str, bridge: str, *, split: bool = False,
                   backup: bool = False, ha: bool = False) -> Topology:
    """``primary`` and ``fallback``; with ``split``, ``directory`` and ``messaging`` too.

    Split: ``directory`` runs slapd, ``messaging`` runs PostgreSQL and Synapse, and
    ``fallback`` keeps the proxy (nginx, coturn). Addresses start at .10. With
    ``backup`` (the site's ``backup.enabled``), a ``backup`` host at .20 keeps the
    fallback's borg repositories. With ``ha`` (``lab up --ha``), a ``standby`` host at
    .12 (group fallback_standby) replicates the one fallback host: the hot standby is
    for the single-host fallback layout only, so ``ha`` with ``split`` is refused.
    """
    if split and ha:
        raise ValueError("the lab's hot standby (ha) replicates a single fallback host: "
                         "it cannot be combined with split")
    network = ipaddress.ip_network(subnet)
    base = network.network_address
    # Interface names have at most 15 characters: "vb-" + "p0-" + "messaging" fits.
    prefix = f"p{bridge[-1]}-"

    def host(name: str, offset: int, groups: tuple[str, ...]) -> LabHost:
        return LabHost(name, str(base + offset), groups, machine=f"{prefix}{name}")

    hosts: tuple[LabHost, ...]
    if split:
        hosts = (
            host("primary", 10, (PRIMARY,)),
            host("fallback", 11, (PROXY,)),
            host("directory", 12, (DIRECTORY,)),
            host("messaging", 13, (MESSAGING,)),
        )
    else:
        hosts = (
            host("primary", 10, (PRIMARY,)),
            host("fallback", 11, (DIRECTORY, MESSAGING, PROXY)),
        )
    if ha:
        hosts += (host("standby", 12, (STANDBY,)),)
    if backup:
        hosts += (host("backup", 20, (BACKUP,)),)
    return Topology(subnet=str(network), bridge=bridge, hosts=hosts)
