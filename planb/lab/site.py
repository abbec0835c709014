"""The lab's own site: a planb.yml and an inventory that point at the lab hosts."""

from __future__ import annotations

from pathlib import Path

from planb.config import DEFAULT_CONFIG_NAME, LabConfig
from planb.lab.topology import DIRECTORY, MESSAGING, PRIMARY, PROXY, Topology
from planb.site_init import InventoryHost, SiteSpec, write_site

LAB_SITE = "lab"


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
        hosts=tuple(InventoryHost(h.name, h.address) for h in topology.hosts),
        groups={group: tuple(h.name for h in topology.in_group(group))
                for group in (DIRECTORY, MESSAGING, PROXY, PRIMARY)},
        ssh_key=str(ssh_key),
        generate_secrets=True,
        lab={"subnet": lab.subnet, "bridge": lab.bridge, "agents": lab.agents,
             "split": lab.split},
    )


def write_lab_site(site_dir: Path, topology: Topology, ssh_key: Path, lab: LabConfig) -> Path:
    """Write (or refresh) the lab site; planb.yml and the vault are kept once written."""
    write_site(lab_spec(topology, ssh_key, lab), site_dir, force=True,
               keep=(DEFAULT_CONFIG_NAME, "vault.yml"))
    return site_dir / DEFAULT_CONFIG_NAME
