"""The openldap role's desired state (templates/desired.json.j2) rendered by Ansible.

What slapd is told: the root DN has no password (no network bind) unless the role is
told otherwise, planb's own accounts' passwords cannot be written by the sync account,
and the default password policy locks an account for a while after failed binds,
while planb's own accounts are never locked out. The enrolment account sets agents'
passwords and enrolment attributes only; nobody else sees an enrolment code's hash.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import planb
from planb.provisioning.runner import ansible_env

ROLE = planb.PLAYBOOKS_DIR / "roles" / "openldap"
SUFFIX = "dc=planb,dc=lab"
SYNC = f"cn=planb-sync,ou=services,{SUFFIX}"
SYNAPSE = f"cn=synapse,ou=services,{SUFFIX}"
PROBE = f"uid=planb-probe-1,ou=people,{SUFFIX}"
ENROL = f"cn=planb-enrol,ou=services,{SUFFIX}"
PEOPLE = f'dn.subtree="ou=people,{SUFFIX}"'
CODE_ATTRS = ("planbEnrolmentCode", "planbEnrolmentExpires", "planbEnrolmentFailures",
              "planbEnrolledAt")


def render(tmp_path: Path, **overrides: object) -> dict[str, Any]:
    """The desired state as the role renders it, with ``overrides`` as extra vars."""
    out = tmp_path / "desired.json"
    playbook = tmp_path / "render.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "connection": "local",
        "vars_files": [str(ROLE / "defaults" / "main.yml")],
        "vars": {"vault_ldap_admin_password": "admin-password-123",
                 "vault_ldap_sync_password": "sync-password-123",
                 "vault_ldap_synapse_password": "synapse-password-123",
                 "vault_ldap_enrol_password": "enrol-password-123",
                 "vault_probe_password": "probe-password-123",
                 "planb_config": {"fallback": {"ldap_suffix": SUFFIX}},
                 "ansible_python_interpreter": sys.executable},
        "tasks": [{"name": "Render", "ansible.builtin.copy": {
            "content": "{{ lookup('ansible.builtin.template', '"
                       + str(ROLE / "templates" / "desired.json.j2") + "') }}",
            "dest": str(out), "mode": "0600"}}],
    }]), encoding="utf-8")
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(overrides), encoding="utf-8")
    env = {**os.environ, **ansible_env(), "ANSIBLE_HOME": str(tmp_path / "ansible"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
         str(playbook), "-e", f"@{extra}"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text(encoding="utf-8"))


def entry(desired: dict[str, Any], dn: str) -> dict[str, Any]:
    return next(e for e in desired["entries"] if e["dn"] == dn)


@pytest.fixture(scope="module")
def desired(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return render(tmp_path_factory.mktemp("desired"))


def test_the_root_dn_has_no_password_so_it_cannot_bind_over_the_network(
        desired: dict[str, Any]) -> None:
    database = entry(desired, "olcDatabase={1}mdb,cn=config")
    assert database["attrs"]["olcRootPW"] == []
    assert "password" not in database
    assert "admin-password-123" not in json.dumps(desired)


def test_a_directory_that_must_keep_its_admin_bind_gets_a_root_password(
        tmp_path: Path) -> None:
    database = entry(render(tmp_path, openldap_admin_network_bind=True),
                     "olcDatabase={1}mdb,cn=config")
    assert "olcRootPW" not in database["attrs"]
    assert database["password"]["attr"] == "olcRootPW"


def test_nobody_can_write_the_passwords_of_planbs_own_accounts(desired: dict[str, Any]) -> None:
    acls = entry(desired, "olcDatabase={1}mdb,cn=config")["attrs"]["olcAccess"]
    assert acls[0].startswith("to * by dn.exact=gidNumber=0+uidNumber=0")
    for dn in (SYNC, SYNAPSE, ENROL, PROBE, f"uid=planb-probe-2,ou=people,{SUFFIX}"):
        rule = f'to dn.exact="{dn}" attrs=userPassword by anonymous auth by * none'
        assert rule in acls[1:6], acls
    # The sync account writes passwords under ou=people only, after those rules.
    sync_rule = next(i for i, a in enumerate(acls) if "attrs=userPassword" in a and SYNC in a
                     and "=wx" in a)
    assert sync_rule > 5 and f'dn.subtree="ou=people,{SUFFIX}"' in acls[sync_rule]
    assert not any("=wx" in a and "ou=people" not in a for a in acls)


def test_the_default_policy_locks_for_a_while_after_failed_binds(
        desired: dict[str, Any]) -> None:
    policy = entry(desired, f"cn=default,ou=policies,{SUFFIX}")["attrs"]
    assert policy["pwdMaxFailure"] == ["10"]
    assert policy["pwdLockoutDuration"] == ["900"]
    assert policy["pwdFailureCountInterval"] == ["900"]
    assert policy["pwdLockout"] == ["TRUE"]


def test_planbs_own_accounts_are_never_locked_out(desired: dict[str, Any]) -> None:
    no_lockout = f"cn=no-lockout,ou=policies,{SUFFIX}"
    assert entry(desired, no_lockout)["attrs"]["pwdMaxFailure"] == ["0"]
    for dn in (SYNC, SYNAPSE, ENROL, PROBE):
        assert entry(desired, dn)["attrs"]["pwdPolicySubentry"] == [no_lockout]


def test_the_lockout_is_sized_by_role_variables(tmp_path: Path) -> None:
    desired = render(tmp_path, openldap_ppolicy_max_failure=3,
                     openldap_ppolicy_lockout_duration=20)
    policy = entry(desired, f"cn=default,ou=policies,{SUFFIX}")["attrs"]
    assert (policy["pwdMaxFailure"], policy["pwdLockoutDuration"]) == (["3"], ["20"])


def _rule(acls: list[str], what: str) -> tuple[int, str]:
    """The first rule (index, text) that starts ``to <what>``."""
    return next((i, a) for i, a in enumerate(acls) if a.startswith(f"to {what} "))


def test_the_enrolment_account_sets_agents_passwords_only(desired: dict[str, Any]) -> None:
    acls = entry(desired, "olcDatabase={1}mdb,cn=config")["attrs"]["olcAccess"]
    assert entry(desired, ENROL)["password"]["value"] == "enrol-password-123"
    _, people_password = _rule(acls, f"{PEOPLE} attrs=userPassword")
    assert f'by dn.exact="{ENROL}" =w ' in people_password  # set, never read
    # No other userPassword rule gives it anything (its own password: bind only).
    others = [a for a in acls if f'by dn.exact="{ENROL}"' in a and "userPassword" in a]
    assert others == [people_password]
    assert f'to dn.exact="{ENROL}" attrs=userPassword by anonymous auth by * none' in acls


def test_only_the_sync_and_enrolment_accounts_see_the_code_attributes(
        desired: dict[str, Any]) -> None:
    acls = entry(desired, "olcDatabase={1}mdb,cn=config")["attrs"]["olcAccess"]
    index, rule = _rule(acls, f"{PEOPLE} attrs={','.join(CODE_ATTRS)}")
    assert rule.endswith(f'by dn.exact="{SYNC}" write by dn.exact="{ENROL}" write by * none')
    serial_index, serial = _rule(acls, f"{PEOPLE} attrs=planbEnrolmentSerial")
    assert serial.endswith(f'by dn.exact="{SYNC}" write by dn.exact="{ENROL}" read by * none')
    people_index, people = _rule(acls, f"{PEOPLE} by")
    # slapd takes the first rule that matches: the attribute rules come before the
    # rule for the rest of ou=people, which lets Synapse (and agents) read.
    assert index < people_index and serial_index < people_index
    assert f'by dn.exact="{ENROL}" read' in people and f'by dn.exact="{ENROL}" write' \
        not in people
    assert not any(ENROL in a for a in acls if "ou=groups" in a or a.startswith("to * "))
