"""planb's paged LDAP search reads every page, not only the first.

ldap3's offline server (``MOCK_SYNC``) answers RFC 2696 paged searches with real
cookies, so the loop in :func:`paged_entries` runs as against slapd. The lab checks
the same on the real directories (its page size is below its agent count).
"""

from __future__ import annotations

from typing import Any

import pytest
from ldap3 import MOCK_SYNC, OFFLINE_SLAPD_2_4, Connection, Server

from planb.directory.ldap_conn import DirectoryUnreachable
from planb.directory.ldap_source import paged_entries

BASE = "ou=people,dc=planb,dc=lab"
ENTRIES = 250


class CountingConnection(Connection):  # type: ignore[misc]
    """An offline ldap3 connection that remembers the size of each page it served."""

    pages: list[int]

    def search(self, *args: Any, **kwargs: Any) -> Any:
        done = super().search(*args, **kwargs)
        self.pages.append(sum(1 for item in self.response or ()
                              if item.get("type") == "searchResEntry"))
        return done


@pytest.fixture
def conn() -> CountingConnection:
    server = Server("offline", get_info=OFFLINE_SLAPD_2_4)
    conn = CountingConnection(server, user="cn=reader,dc=planb,dc=lab", password="pw",
                              client_strategy=MOCK_SYNC)
    conn.pages = []
    conn.strategy.add_entry("cn=reader,dc=planb,dc=lab", {"userPassword": "pw", "sn": "r"})
    for n in range(ENTRIES):
        conn.strategy.add_entry(f"uid=agent{n},{BASE}", {
            "objectClass": ["inetOrgPerson"], "uid": f"agent{n}", "sn": f"Nom{n}",
            "cn": f"Agent {n}"})
    assert conn.bind()
    return conn


@pytest.mark.parametrize("page_size", [1, 100, 249, 250, 1000])
def test_every_entry_is_read_whatever_the_page_size(conn: CountingConnection,
                                                     page_size: int) -> None:
    found = list(paged_entries(conn, BASE, "(objectClass=inetOrgPerson)", ["uid"],
                               page_size, "test"))
    assert sorted(dn for dn, _ in found) == sorted(f"uid=agent{n},{BASE}"
                                                   for n in range(ENTRIES))
    assert {attrs["uid"][0] for _, attrs in found} == {f"agent{n}" for n in range(ENTRIES)}
    # Really paged: no page larger than asked, as many pages as needed.
    assert max(conn.pages) <= page_size
    assert len([p for p in conn.pages if p]) == -(-ENTRIES // page_size)


def test_a_failed_search_is_an_error_naming_base_and_filter(conn: CountingConnection) -> None:
    with pytest.raises(DirectoryUnreachable, match="ou=nowhere"):
        list(paged_entries(conn, "ou=nowhere,dc=planb,dc=lab", "(uid=*)", ["uid"], 10,
                           "test"))
