"""Lab topology: addresses, groups and interface names (pure)."""

from __future__ import annotations

from planb.lab.topology import DIRECTORY, MESSAGING, PRIMARY, PROXY, build_topology


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
