"""The lab's own site: a planb.yml and an inventory that point at the lab hosts."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from planb.config import DEFAULT_CONFIG_NAME, LabConfig, SiteConfig
from planb.lab.topology import (
    BACKUP,
    DIRECTORY,
    MESSAGING,
    PRIMARY,
    PROXY,
    STANDBY,
    Topology,
)
from planb.site_init import InventoryHost, SiteSpec, write_site

LAB_SITE = "lab"
#: The lab's primary search page size: below the agent count, so every lab sync reads
#: several pages (a search that stopped after the first page would lose agents).
LAB_PAGE_SIZE = 100


def lab_page_size(agents: int) -> int:
    """A page size that makes a search of ``agents`` entries take at least two pages."""
    return max(1, min(LAB_PAGE_SIZE, agents // 2))


def lab_spec(topology: Topology, ssh_key: Path, lab: LabConfig) -> SiteSpec:
    """What ``planb lab up`` writes for its site, from the hosts that are up."""
    primary = topology.in_group(PRIMARY)[0]
    return SiteSpec(
        site=LAB_SITE,
        organisation="Métropole de démonstration (lab)",
        server_name="planb.lab",
        public_hostname="matrix.planb.lab",
        ldap_suffix="dc=planb,dc=lab",
        primary_url=f"ldaps://{primary.address}",
        primary_base_dn="ou=people,dc=primary,dc=lab",
        primary_bind_dn="cn=planb-reader,dc=primary,dc=lab",
        primary_password_file=".planb/lab/primary-reader-password",
        primary_ca_file=".planb/pki/ca.crt",
        primary_page_size=lab_page_size(lab.agents),
        hosts=tuple(InventoryHost(h.name, h.address) for h in topology.hosts),
        groups={group: tuple(h.name for h in topology.in_group(group))
                for group in (DIRECTORY, MESSAGING, PROXY, PRIMARY, BACKUP, STANDBY)},
        ssh_key=str(ssh_key),
        generate_secrets=True,
        lab={"subnet": lab.subnet, "bridge": lab.bridge, "agents": lab.agents,
             "split": lab.split, "ha": lab.ha},
        # The hot standby's service address: .30 of the lab's subnet.
        standby_service_address=(str(ipaddress.ip_network(topology.subnet)[30])
                                 if topology.in_group(STANDBY) else None),
    )


def write_lab_site(site_dir: Path, topology: Topology, ssh_key: Path, lab: LabConfig) -> Path:
    """Write (or refresh) the lab site; planb.yml and the vault are kept once written."""
    write_site(lab_spec(topology, ssh_key, lab), site_dir, force=True,
               keep=(DEFAULT_CONFIG_NAME, "vault.yml"))
    return site_dir / DEFAULT_CONFIG_NAME


def stale_primary_url(site: SiteConfig, topology: Topology) -> str | None:
    """Why the kept planb.yml no longer reaches the lab's primary (the lab's subnet was
    changed after the site was written), naming the file, line and value; else None."""
    ldap = site.primary.ldap
    if ldap is None:
        return None
    address = topology.in_group(PRIMARY)[0].address
    if urlsplit(ldap.url).hostname == address:
        return None
    where = str(site.source)
    try:
        lines = site.source.read_text(encoding="utf-8").splitlines()
        number = next(i for i, line in enumerate(lines, 1) if ldap.url in line)
        where += f":{number}"
    except (OSError, StopIteration):
        pass
    return (f"{where}: primary.ldap.url is {ldap.url} but the lab's primary is at {address} "
            f"(lab.subnet changed?): set it to ldaps://{address}")
