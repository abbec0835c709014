"""Lab topology: addresses, groups and interface names (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from planb.config import LabConfig, load_config
from planb.inventory import load_hosts
from planb.lab.site import write_lab_site
from planb.lab.topology import DIRECTORY, MESSAGING, PRIMARY, PROXY, STANDBY, build_topology


def test_default_lab_has_primary_and_one_fallback() -> None:
    topo = build_topology("10.77.0.0/24", "planb0")
    assert [(h.name, h.address) for h in topo.hosts] == [
        ("primary", "10.77.0.10"), ("fallback", "10.77.0.11")]
    assert topo.gateway == "10.77.0.1"
    assert topo.host("fallback").groups == (DIRECTORY, MESSAGING, PROXY)
    assert topo.in_group(PRIMARY)[0].name == "primary"


def test_split_lab_puts_each_role_on_its_host() -> None:
    topo = build_topology("10.77.5.0/24", "planb5", split=True)
    assert [h.name for h in topo.in_group(DIRECTORY)] == ["directory"]
    assert [h.name for h in topo.in_group(MESSAGING)] == ["messaging"]
    assert [h.name for h in topo.in_group(PROXY)] == ["fallback"]


def test_veth_names_fit_the_kernel_limit_and_differ_between_labs() -> None:
    a = build_topology("10.77.0.0/24", "planb0", split=True)
    b = build_topology("10.77.1.0/24", "planb1", split=True)
    for host in (*a.hosts, *b.hosts):
        assert len(host.veth) <= 15
    assert {h.veth for h in a.hosts}.isdisjoint({h.veth for h in b.hosts})


def test_ha_lab_adds_a_standby_host_outside_the_fallback_groups() -> None:
    topo = build_topology("10.77.3.0/24", "planb3", ha=True)
    assert [(h.name, h.address) for h in topo.hosts][-1] == ("standby", "10.77.3.12")
    assert topo.host("standby").groups == (STANDBY,)
    assert topo.host("fallback").groups == (DIRECTORY, MESSAGING, PROXY)
    with pytest.raises(ValueError, match="single fallback host"):
        build_topology("10.77.3.0/24", "planb3", ha=True, split=True)


def test_ha_lab_site_has_the_standby_group_service_address_and_secrets(tmp_path: Path
                                                                        ) -> None:
    lab = LabConfig(subnet="10.77.3.0/24", bridge="planb3", ha=True)
    path = write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge, ha=True),
                          tmp_path / "key", lab)
    site = load_config(path)
    assert site.lab is not None and site.lab.ha
    assert site.fallback.standby.service_address == "10.77.3.30"
    groups = {h.name: h.groups for h in load_hosts(site)}
    assert groups["standby"] == (STANDBY,)
    vault = (tmp_path / "inventories" / "lab" / "group_vars" / "all" / "vault.yml").read_text()
    assert "vault_postgresql_replication_password: " in vault
    assert "vault_ldap_replication_password: " in vault


def test_a_lab_without_ha_has_no_standby_nor_service_address(tmp_path: Path) -> None:
    lab = LabConfig(subnet="10.77.3.0/24", bridge="planb3")
    site = load_config(write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge),
                                      tmp_path / "key", lab))
    assert site.lab is not None and not site.lab.ha
    assert site.fallback.standby.service_address is None
    assert "fallback_standby" not in (tmp_path / "inventories/lab/hosts.yml").read_text()
