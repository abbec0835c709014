"""The lab CA, the fallback OpenLDAP and the lab primary, on the session's deployed lab.

The session lab (tests/integration/conftest.py) runs the whole site.yml twice, the
second run changing nothing (test_lab_deploy.py), on hosts with no route out. Here,
what a person would check: anonymous users see nothing, Synapse's account cannot
read password hashes, the primary serves every seeded agent over LDAPS, page by page,
with a certificate the lab CA vouches for (for its IP address), agents bind with the
password ``planb lab password`` gives and leavers cannot.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import pytest
import yaml
from ldap3 import NONE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPSocketOpenError

from planb.config import SiteConfig
from planb.lab.agents import agent_password
from planb.lab.lab import Lab
from planb.lab.topology import Topology
from tests.integration.conftest import LabSession
from tests.integration.lab_state import churned

pytestmark = pytest.mark.lab


@dataclass
class Deployed:
    site: SiteConfig
    lab: Lab
    topology: Topology

    @property
    def agents(self) -> int:
        assert self.site.lab is not None
        return self.site.lab.agents

    def vault(self) -> dict[str, str]:
        path = self.site.inventory_dir / "group_vars" / "all" / "vault.yml"
        loaded: dict[str, str] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return loaded

    def server(self, host: str) -> Server:
        tls = Tls(ca_certs_file=str(self.site.state_dir / "pki" / "ca.crt"),
                  validate=ssl.CERT_REQUIRED)
        address = self.topology.host(host).address
        return Server(f"ldaps://{address}", tls=tls, get_info=NONE, connect_timeout=5)


@pytest.fixture(scope="module")
def deployed(standby_lab: LabSession) -> Deployed:
    return Deployed(standby_lab.site, standby_lab.lab, standby_lab.topology)


def test_anonymous_users_see_nothing(deployed: Deployed) -> None:
    for host, suffix in (("fallback", "dc=planb,dc=lab"), ("primary", "dc=primary,dc=lab")):
        anonymous = Connection(deployed.server(host), auto_bind=True)
        anonymous.search(suffix, "(objectClass=*)", attributes=["*"])
        assert anonymous.entries == [], host
        anonymous.unbind()


def test_plain_ldap_only_on_loopback(deployed: Deployed) -> None:
    address = deployed.topology.host("fallback").address
    with pytest.raises(LDAPSocketOpenError):
        Connection(Server(f"ldap://{address}", get_info=NONE, connect_timeout=3),
                   auto_bind=True)
    out = deployed.lab.run_on("fallback", ["ss -Hltn | awk '{print $4}' | sort"]).stdout
    assert "127.0.0.1:389" in out.split()
    assert not any(a.endswith(":389") and not a.startswith("127.") for a in out.split())


def test_synapse_reads_people_but_no_password_hash(deployed: Deployed) -> None:
    vault = deployed.vault()
    sync = Connection(deployed.server("fallback"), "cn=planb-sync,ou=services,dc=planb,dc=lab",
                      vault["vault_ldap_sync_password"], auto_bind=True)
    dn = "uid=test.agent,ou=people,dc=planb,dc=lab"
    assert sync.add(dn, ["inetOrgPerson"], {"uid": "test.agent", "cn": "Zoé Agént",
                                            "sn": "Agént",
                                            "userPassword": "{SSHA}c2VjcmV0LWhhc2gtYnl0ZXM="})
    try:
        synapse = Connection(deployed.server("fallback"),
                             "cn=synapse,ou=services,dc=planb,dc=lab",
                             vault["vault_ldap_synapse_password"], auto_bind=True)
        synapse.search("ou=people,dc=planb,dc=lab", "(uid=test.agent)",
                       attributes=["cn", "userPassword"])
        assert len(synapse.entries) == 1
        attrs = synapse.entries[0].entry_attributes_as_dict
        assert attrs["cn"] == ["Zoé Agént"]
        assert not attrs.get("userPassword")
        # Not even the account that writes hashes can read them back.
        sync.search(dn, "(objectClass=*)", attributes=["userPassword"])
        assert not sync.entries[0].entry_attributes_as_dict.get("userPassword")
        assert not synapse.modify(dn, {"cn": [("MODIFY_REPLACE", ["x"])]})
    finally:
        sync.delete(dn)


def test_primary_serves_every_agent_over_verified_ldaps(deployed: Deployed) -> None:
    primary = deployed.site.primary.ldap
    assert primary is not None and primary.bind_password_file is not None
    password_file = (deployed.site.base_dir / primary.bind_password_file)
    reader = Connection(deployed.server("primary"), primary.bind_dn,
                        password_file.read_text(encoding="ascii").strip(), auto_bind=True)
    entries = reader.extend.standard.paged_search(
        primary.base_dn, "(objectClass=inetOrgPerson)",
        attributes=["uid", "pwdAccountLockedTime", "memberOf", "departmentNumber"],
        paged_size=100, generator=False)
    people = [e for e in entries if e.get("type") == "searchResEntry"]
    # The seeded agents, and those churn (test_sync_*.py) hired, left or brought back.
    churn = churned(deployed.site)
    assert len(people) == deployed.agents + churn["hires"]
    leavers = [e for e in people if e["attributes"].get("pwdAccountLockedTime")]
    seeded_leavers = len(leavers) - churn["leavers"] + churn["reactivations"]
    assert 0.01 * deployed.agents <= seeded_leavers <= 0.03 * deployed.agents
    assert all(e["attributes"]["memberOf"] for e in people)

    secret = (deployed.site.state_dir / "lab" / "agents-secret").read_bytes().strip()
    active = next(e for e in people if not e["attributes"].get("pwdAccountLockedTime"))
    login = active["attributes"]["uid"][0]
    assert Connection(deployed.server("primary"), active["dn"],
                      agent_password(secret, login)).bind()
    assert not Connection(deployed.server("primary"), active["dn"], "wrong").bind()
    leaver = leavers[0]
    assert not Connection(deployed.server("primary"), leaver["dn"],
                          agent_password(secret, leaver["attributes"]["uid"][0])).bind()
