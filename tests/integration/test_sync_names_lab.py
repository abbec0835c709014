"""Awkward names survive the sync, byte for byte, on the real lab.

Every lab's first agents carry awkward names (planb.lab.agent_names.AWKWARD_NAMES:
``, + " \\ < > ; =``, a leading ``#``, spaces at the ends, accents, an emoji, an
apostrophe). After a sync, each is read back from the primary slapd, the fallback
slapd (raw LDAP, as any LDAP client sees it) and Synapse (admin API): the fallback
and Synapse hold exactly what planb read from the primary, and that is exactly the
generated name (spaces at the ends aside: planb trims values it reads).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ldap3 import BASE

from planb.config import SiteConfig
from planb.directory.ldap_source import primary_endpoint, read_primary
from planb.directory.model import Agent
from planb.directory.sync import Sync
from planb.lab.agent_names import AWKWARD_NAMES
from planb.messaging.admin_api import AdminApi, quote
from planb.messaging.sync_target import target_for
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab
NAME_ATTRIBUTES = ("givenName", "sn", "displayName", "cn")


@pytest.fixture(scope="module")
def site(synced_lab: LabSession) -> SiteConfig:
    return synced_lab.site


@pytest.fixture(scope="module")
def awkward(site: SiteConfig) -> dict[tuple[str, str], Agent]:
    """The primary's awkward agents, as planb reads them, by their generated names."""
    found = {}
    wanted = {(g.strip(), s.strip()): (g, s) for g, s in AWKWARD_NAMES}
    for agent in read_primary(site).agents:
        if (agent.given_name, agent.surname) in wanted:
            found[wanted[agent.given_name, agent.surname]] = agent
    assert sorted(found) == sorted(AWKWARD_NAMES), "the lab's primary lacks awkward names"
    assert all(a.enabled for a in found.values())
    return found


@pytest.fixture
def api(site: SiteConfig) -> Iterator[AdminApi]:
    target = target_for(site)
    assert target is not None
    with target.api() as client:
        yield client


def raw_names(conn: object, dn: str) -> dict[str, list[str]]:
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=list(NAME_ATTRIBUTES))  # type: ignore[attr-defined]
    entry = conn.response[0]["attributes"]  # type: ignore[attr-defined]
    return {name: list(entry.get(name) or []) for name in NAME_ATTRIBUTES}


def test_the_primary_holds_the_awkward_names_exactly(
        site: SiteConfig, awkward: dict[tuple[str, str], Agent]) -> None:
    assert site.primary.ldap is not None
    conn = primary_endpoint(site.primary.ldap, site.base_dir).connect(read_only=True)
    try:
        for (given, surname), agent in awkward.items():
            conn.search(site.primary.ldap.base_dn, f"(entryUUID={agent.id})",
                        attributes=list(NAME_ATTRIBUTES))
            assert len(conn.response) == 1, agent.login
            attrs = conn.response[0]["attributes"]
            assert attrs["givenName"] == [given] and attrs["sn"] == [surname]
            assert attrs["displayName"] == [f"{given} {surname}"]
    finally:
        conn.unbind()


def test_the_fallback_directory_holds_them_byte_for_byte(
        site: SiteConfig, awkward: dict[tuple[str, str], Agent]) -> None:
    sync = Sync(site)
    entries = sync.read_fallback().entries
    conn = sync.fallback.connect(read_only=True)
    try:
        for (given, surname), agent in awkward.items():
            entry = entries[agent.id]
            assert (entry.given_name, entry.surname, entry.display_name) == (
                agent.given_name, agent.surname, agent.display_name)
            assert (agent.given_name, agent.surname) == (given.strip(), surname.strip())
            raw = raw_names(conn, entry.dn)
            assert raw["givenName"] == [agent.given_name], entry.dn
            assert raw["sn"] == [agent.surname], entry.dn
            assert raw["displayName"] == [agent.display_name], entry.dn
            assert [v.encode() for v in raw["displayName"]] == [agent.display_name.encode()]
    finally:
        conn.unbind()


def test_synapse_holds_their_display_names_byte_for_byte(
        site: SiteConfig, awkward: dict[tuple[str, str], Agent], api: AdminApi) -> None:
    entries = Sync(site).read_fallback().entries
    for agent in awkward.values():
        localpart = entries[agent.id].localpart
        assert localpart, agent.login
        user = api.request("GET", f"/_synapse/admin/v2/users/{quote(api.user_id(localpart))}",
                           what="read")
        assert user["displayname"] == agent.display_name, agent.login
        assert str(user["displayname"]).encode() == agent.display_name.encode()
        assert user["deactivated"] is False
