"""The lab CA, the fallback OpenLDAP and the lab primary on a lab of their own (bridge planb7).

Deploys the ``bundle``, ``pki``, ``lab_primary`` and ``openldap`` roles twice (the
second run must change nothing) on hosts with no route out, then checks what a
person would: anonymous users see nothing, Synapse's account cannot read password
hashes, the primary serves every seeded agent over LDAPS with a certificate the lab
CA vouches for (for its IP address), agents bind with the password
``planb lab password`` gives and leavers cannot.

Needs the offline bundle (``planb bundle build``); skipped with a reason without it.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ldap3 import NONE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPSocketOpenError

from planb.config import LabConfig, SiteConfig, load_config
from planb.lab.agents import agent_password
from planb.lab.lab import Lab
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.provisioning import PlaybookResult, new_run_dir, run_playbook
from planb.provisioning.deploy import deploy_vars

pytestmark = pytest.mark.lab

BRIDGE = "planb7"
SUBNET = "10.77.7.0/24"
AGENTS = 9000
PLAYBOOK = """\
- name: Bundle
  hosts: all
  gather_facts: false
  roles: [{role: bundle}]
- name: TLS
  hosts: fallback:lab_primary
  gather_facts: false
  roles: [{role: pki}]
- name: Lab primary
  hosts: lab_primary
  gather_facts: false
  roles: [{role: lab_primary}]
- name: Fallback directory
  hosts: fallback_directory
  gather_facts: false
  roles: [{role: openldap}]
"""


@dataclass
class Deployed:
    site: SiteConfig
    lab: Lab
    first: PlaybookResult
    second: PlaybookResult
    cold_s: float

    def vault(self) -> dict[str, str]:
        path = self.site.inventory_dir / "group_vars" / "all" / "vault.yml"
        loaded: dict[str, str] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return loaded

    def server(self, host: str) -> Server:
        tls = Tls(ca_certs_file=str(self.site.state_dir / "pki" / "ca.crt"),
                  validate=ssl.CERT_REQUIRED)
        address = build_topology(SUBNET, BRIDGE).host(host).address
        return Server(f"ldaps://{address}", tls=tls, get_info=NONE, connect_timeout=5)


def _bundle_dir() -> Path:
    from planb.bundle import build_bundle

    bundle = build_bundle().path
    if not (bundle / "manifest.json").exists():
        pytest.fail(f"no offline bundle at {bundle}: 'planb bundle build' made none "
                    "(the lab hosts have no route out, so slapd can only come from it)")
    return bundle


def _deploy(site: SiteConfig, playbook: Path, bundle: Path) -> PlaybookResult:
    extravars = {**deploy_vars(site), "planb_bundle_dir": str(bundle)}
    return run_playbook(playbook, site.inventory_dir,
                        run_dir=new_run_dir(site.state_dir, playbook), extravars=extravars)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    bundle = _bundle_dir()
    site_dir = tmp_path_factory.mktemp("directory-lab")
    lab_config = LabConfig(subnet=SUBNET, bridge=BRIDGE, agents=AGENTS)
    key = site_dir / ".planb" / "lab" / "id_ed25519"
    site = load_config(write_lab_site(site_dir, build_topology(SUBNET, BRIDGE), key,
                                      lab_config))
    playbook = site_dir / "directory.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    lab = Lab(site)
    try:
        lab.up()
        started = time.monotonic()
        first = _deploy(site, playbook, bundle)
        cold = time.monotonic() - started
        second = _deploy(site, playbook, bundle)
        print(f"\ndirectory roles ({AGENTS} agents): cold deploy {cold:.1f} s, "
              f"re-deploy {second.duration_s:.1f} s")
        yield Deployed(site, lab, first, second, cold)
    finally:
        lab.down()


def test_deploy_succeeds_then_changes_nothing(deployed: Deployed) -> None:
    assert deployed.first.ok, deployed.first.failures
    assert deployed.second.ok, deployed.second.failures
    assert {h: s.changed for h, s in deployed.second.hosts.items()} == \
        {"primary": 0, "fallback": 0}


def test_anonymous_users_see_nothing(deployed: Deployed) -> None:
    for host, suffix in (("fallback", "dc=planb,dc=lab"), ("primary", "dc=primary,dc=lab")):
        anonymous = Connection(deployed.server(host), auto_bind=True)
        anonymous.search(suffix, "(objectClass=*)", attributes=["*"])
        assert anonymous.entries == [], host
        anonymous.unbind()


def test_plain_ldap_only_on_loopback(deployed: Deployed) -> None:
    address = build_topology(SUBNET, BRIDGE).host("fallback").address
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
        paged_size=500, generator=False)
    people = [e for e in entries if e.get("type") == "searchResEntry"]
    assert len(people) == AGENTS
    leavers = [e for e in people if e["attributes"].get("pwdAccountLockedTime")]
    assert 0.015 * AGENTS <= len(leavers) <= 0.025 * AGENTS
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
