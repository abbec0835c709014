"""The fallback directory against the attacks of issue 11 (§2 lockout, §6 slapd), on the lab.

- slapd's root DN cannot bind over the network (ldaps): its password is refused
  (invalidCredentials) while root on the host, over ldapi (SASL EXTERNAL), still works.
- The sync account, which writes the agents' passwords, cannot reset the password of
  planb's own accounts (Synapse's, its own) nor of the probe accounts
  (insufficientAccessRights), and still sets an agent's.
- Failed binds lock an agent out for a while (ppolicy pwdMaxFailure): 9 typos do not,
  the 10th does (the right password is then refused); the sync reads that agent as
  active, plans nothing for it and does not lift the lock; the drills' sample still
  counts them; once the lockout duration has passed the right password works again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator

import pytest
from ldap3 import MODIFY_REPLACE, Connection
from ldap3.core.exceptions import LDAPException
from typer.testing import CliRunner

from planb.actions.sampling import active_agents
from planb.cli.main import app
from planb.config import SiteConfig
from planb.directory.fallback_endpoint import fallback_endpoint
from planb.directory.fallback_ldap import LOCKED, Layout
from planb.inventory import vault_value
from planb.lab.agents import agent_password
from tests.integration.conftest import LabSession
from tests.integration.lab_state import ldap_only

pytestmark = pytest.mark.lab
runner = CliRunner()
#: The fallback directory's host in the (non-split) session lab.
DIRECTORY_HOST = "fallback"
INVALID_CREDENTIALS, INSUFFICIENT_ACCESS = 49, 50


@pytest.fixture(scope="module")
def lab(standby_lab: LabSession) -> Iterator[LabSession]:
    """The standby lab with the fallback LDAP synced (LDAP only: no Matrix needed)."""
    with ldap_only(standby_lab.site):
        code, out = cli(standby_lab.site, "sync", "apply", "--yes", "--ldap-only", "--adopt")
        assert code == 0, out
    yield standby_lab


def cli(site: SiteConfig, *args: str) -> tuple[int, str]:
    done = runner.invoke(app, ["--config", str(site.source), *args])
    return done.exit_code, done.output


def bind(site: SiteConfig, dn: str, password: str) -> int:
    """A simple bind over ldaps to the fallback directory: LDAP's result code."""
    conn = Connection(fallback_endpoint(site).server(), user=dn, password=password,
                      raise_exceptions=False)
    try:
        conn.bind()
        return int(conn.result["result"])
    except LDAPException:
        return -1
    finally:
        conn.unbind()


def ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def agents(site: SiteConfig) -> list[str]:
    return sorted(active_agents(site))


def agent_secret(site: SiteConfig) -> bytes:
    return (site.state_dir / "lab" / "agents-secret").read_bytes().strip()


def ldapi(lab: LabSession, *args: str, stdin: str | None = None) -> str:
    """An LDAP tool as root over ldapi on the directory host (SASL EXTERNAL)."""
    if stdin is None:
        done = lab.lab.run_on(DIRECTORY_HOST, [*args, "-Q", "-Y", "EXTERNAL", "-H", "ldapi:///"])
    else:
        quoted = stdin.replace("'", "'\\''")
        done = lab.lab.run_on(DIRECTORY_HOST, [
            f"printf '%s' '{quoted}' | {' '.join(args)} -Q -Y EXTERNAL -H ldapi:///"])
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_root_dn_cannot_bind_over_the_network_but_root_over_ldapi_can(
        lab: LabSession) -> None:
    site = lab.site
    admin_dn = f"cn=admin,{site.fallback.ldap_suffix}"
    password = str(vault_value(site.inventory_dir, "vault_ldap_admin_password"))
    assert bind(site, admin_dn, password) == INVALID_CREDENTIALS
    assert "cn=peercred,cn=external,cn=auth" in ldapi(lab, "ldapwhoami")
    config = ldapi(lab, "ldapsearch", "-LLL", "-b", "olcDatabase={1}mdb,cn=config",
                   "-s", "base", "olcRootPW", "olcRootDN")
    assert "olcRootDN" in config and "olcRootPW" not in config


def test_the_sync_account_cannot_reset_planbs_own_or_the_probes_passwords(
        lab: LabSession) -> None:
    site = lab.site
    suffix = site.fallback.ldap_suffix
    endpoint = fallback_endpoint(site)
    login = agents(site)[0]
    conn = endpoint.connect()
    try:
        for dn in (f"uid=planb-probe-1,ou=people,{suffix}",
                   f"cn=synapse,ou=services,{suffix}",
                   f"cn=planb-sync,ou=services,{suffix}"):
            conn.modify(dn, {"userPassword": [(MODIFY_REPLACE, [ssha("attacker-pass")])]})
            assert conn.result["result"] == INSUFFICIENT_ACCESS, (dn, conn.result)
        # An agent's password it still sets (here: the same password, hashed anew).
        password = agent_password(agent_secret(site), login)
        conn.modify(Layout(suffix).person_dn(login),
                    {"userPassword": [(MODIFY_REPLACE, [ssha(password)])]})
        assert conn.result["result"] == 0, conn.result
    finally:
        conn.unbind()
    assert bind(site, Layout(suffix).person_dn(login), password) == 0
    assert bind(site, f"cn=synapse,ou=services,{suffix}", "attacker-pass") == INVALID_CREDENTIALS


def set_lockout_duration(lab: LabSession, seconds: int) -> None:
    dn = f"cn=default,ou=policies,{lab.site.fallback.ldap_suffix}"
    ldapi(lab, "ldapmodify", stdin=f"dn: {dn}\nchangetype: modify\nreplace: "
                                    f"pwdLockoutDuration\npwdLockoutDuration: {seconds}\n-\n")


def locked_time(site: SiteConfig, dn: str) -> str | None:
    conn = fallback_endpoint(site).connect(read_only=True)
    try:
        conn.search(dn, "(objectClass=*)", search_scope="BASE",
                    attributes=["pwdAccountLockedTime"])
        values = conn.entries[0].entry_attributes_as_dict.get("pwdAccountLockedTime") or []
    finally:
        conn.unbind()
    return str(values[0]) if values else None


def test_failed_binds_lock_an_agent_out_for_a_while_and_the_sync_leaves_it_alone(
        lab: LabSession) -> None:
    site = lab.site
    policy = ldapi(lab, "ldapsearch", "-LLL", "-b",
                   f"cn=default,ou=policies,{site.fallback.ldap_suffix}", "-s", "base")
    assert "pwdMaxFailure: 10" in policy and "pwdLockoutDuration: 900" in policy
    login = agents(site)[-1]
    dn = Layout(site.fallback.ldap_suffix).person_dn(login)
    password = agent_password(agent_secret(site), login)
    for _ in range(9):  # typos: a right password afterwards works and resets the count
        assert bind(site, dn, "not-the-password") == INVALID_CREDENTIALS
    assert bind(site, dn, password) == 0
    for _ in range(10):
        assert bind(site, dn, "not-the-password") == INVALID_CREDENTIALS
    try:
        assert bind(site, dn, password) == INVALID_CREDENTIALS, "locked out"
        when = locked_time(site, dn)
        assert when is not None and when != LOCKED and not when.startswith("0000"), when
        # The sync: the agent is active, nothing to plan, the lock stays.
        with ldap_only(site):
            code, out = cli(site, "sync", "plan", "--json")
            assert code == 0, out
            plan = json.loads(out[out.index("{"):])
            assert login not in json.dumps(plan)
            summary = plan["summary"]
            assert not any(v for k, v in summary.items() if k.startswith("ldap")), summary
            code, out = cli(site, "sync", "apply", "--yes", "--ldap-only")
            assert code == 0, out
        assert locked_time(site, dn) == when, "the sync lifted the lock"
        assert login in active_agents(site)
        # The lockout heals by itself: here after 3 s instead of 900.
        set_lockout_duration(lab, 3)
        time.sleep(4)
        assert bind(site, dn, password) == 0
        assert locked_time(site, dn) is None
    finally:
        set_lockout_duration(lab, 900)
