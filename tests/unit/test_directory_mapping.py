"""The agent model and the conversion of LDAP entries (OpenLDAP, Active Directory)."""

from __future__ import annotations

import logging
import uuid

import pytest

from planb.config import PrimaryConfig
from planb.directory.mapping import (
    agent_from_record,
    agents_from_entries,
    lower_keys,
    resolve_mapping,
    source_attributes,
)
from planb.directory.model import Agent, parse_bool, password_fingerprint
from planb.errors import ConfigError
from planb.schema import Secret, load_yaml_as

GUID = uuid.UUID("9dc8ef51-d5a2-433a-9d53-0af29c4d71da")


def ad_entry(**extra: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "objectGUID": [GUID.bytes_le], "sAMAccountName": ["jdupont"], "givenName": ["Jean"],
        "sn": ["Dupont"], "mail": ["jean.dupont@grandlyon.example"], "department": ["DSIN"],
        "userAccountControl": [512],
        "memberOf": ["CN=Finances\\, Budget,OU=Groups,DC=ad,DC=example",
                     "CN=Tous,OU=Groups,DC=ad,DC=example"],
    }
    entry.update(extra)
    return entry


def openldap_entry(**extra: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "entryUUID": [str(GUID).upper()], "uid": [b"edurand"], "givenName": ["\u00c9lodie"],
        "sn": ["Durand"], "ou": ["Ressources humaines"], "userPassword": [b"{SSHA}c2FsdA=="],
        "employeeNumber": ["A042"],
    }
    entry.update(extra)
    return entry


def test_active_directory_entry_becomes_an_agent() -> None:
    agent = agent_from_record(lower_keys(ad_entry()), resolve_mapping("active_directory"))
    assert agent.id == str(GUID)  # objectGUID bytes are little-endian in the first groups
    assert (agent.login, agent.display_name, agent.department) == (
        "jdupont", "Jean Dupont", "DSIN")
    assert agent.enabled
    assert agent.groups == frozenset({"Finances, Budget", "Tous"})
    assert agent.password_hash is None


def test_ad_guid_formatted_by_ldap3_gives_the_same_id() -> None:
    entry = ad_entry(objectGUID="{" + str(GUID).upper() + "}")
    assert agent_from_record(lower_keys(entry), resolve_mapping("active_directory")).id == str(GUID)


@pytest.mark.parametrize(("uac", "enabled"), [(512, True), (514, False), ("66050", False),
                                              (66048, True)])
def test_ad_disabled_bit(uac: object, enabled: bool) -> None:
    entry = ad_entry(userAccountControl=[uac])
    assert agent_from_record(lower_keys(entry), resolve_mapping("active_directory")).enabled is (
        enabled)


def test_openldap_entry_with_fallback_department_and_password() -> None:
    fmap = resolve_mapping("openldap")
    agent = agent_from_record(lower_keys(openldap_entry()), fmap)
    assert agent.id == str(GUID)
    assert (agent.login, agent.given_name, agent.department) == (
        "edurand", "\u00c9lodie", "Ressources humaines")
    assert agent.password_hash == "{SSHA}c2FsdA=="
    assert "SSHA" not in repr(agent)
    with_number = lower_keys(openldap_entry(departmentNumber=["42"]))
    assert agent_from_record(with_number, fmap).department == "42"
    member = lower_keys(openldap_entry(memberOf=["cn=Voirie \\2B Eau,ou=groups,dc=primary"]))
    assert agent_from_record(member, fmap).groups == frozenset({"Voirie + Eau"})


def test_cleartext_user_password_is_not_copied(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    entry = openldap_entry(userPassword=[b"hunter2"])
    agent = agent_from_record(lower_keys(entry), resolve_mapping("openldap"))
    assert agent.password_hash is None
    assert "hunter2" not in caplog.text and "not a {SCHEME} hash" in caplog.text


@pytest.mark.parametrize(("attrs", "enabled"), [
    ({"pwdAccountLockedTime": ["000001010000Z"]}, False),
    ({"pwdAccountLockedTime": []}, True),
    ({}, True),
])
def test_openldap_leaver_flag(attrs: dict[str, object], enabled: bool) -> None:
    entry = lower_keys(openldap_entry(**attrs))
    assert agent_from_record(entry, resolve_mapping("openldap")).enabled is enabled


def test_leaver_filter_match_disables() -> None:
    entry = lower_keys(openldap_entry())
    assert not agent_from_record(entry, resolve_mapping("openldap"), leaver=True).enabled


def test_mapping_override_and_unmapping() -> None:
    fmap = resolve_mapping("openldap", {"department": "businessCategory", "mobile": "-"})
    entry = lower_keys(openldap_entry(businessCategory=["Voirie"], mobile=["0600000000"]))
    agent = agent_from_record(entry, fmap)
    assert (agent.department, agent.mobile) == ("Voirie", "")
    assert "mobile" not in source_attributes(fmap)
    assert "businesscategory" in source_attributes(fmap)


def test_entries_with_problems_are_rejected_by_dn() -> None:
    entries = [
        ("uid=a,dc=x", openldap_entry()),
        ("uid=b,dc=x", openldap_entry(uid=[])),
        ("uid=c,dc=x", openldap_entry(entryUUID=[str(uuid.uuid4())], mail=["pas une adresse"])),
        ("uid=d,dc=x", openldap_entry(entryUUID=[str(uuid.uuid4())], uid=["EDURAND"])),
        ("uid=e,dc=x", openldap_entry(entryUUID=["not-a-uuid"], uid=["other"])),
    ]
    result = agents_from_entries(entries, resolve_mapping("openldap"), "ldaps://primary")
    assert [a.login for a in result.agents] == ["edurand"]
    reasons = {r.entry: r.reason for r in result.rejections}
    assert reasons["uid=b,dc=x"] == "missing login (nothing in 'uid')"
    assert reasons["uid=c,dc=x"] == "invalid mail 'pas une adresse'"
    assert reasons["uid=d,dc=x"].startswith("duplicate login 'EDURAND' (first seen at uid=a")
    assert "is not a UUID" in reasons["uid=e,dc=x"]
    assert {r.id for r in result.rejections if r.entry == "uid=b,dc=x"} == {str(GUID)}


@pytest.mark.parametrize(("word", "value"), [("oui", True), ("NON", False), ("Actif", True),
                                             ("inactif", False), ("1", True), ("false", False)])
def test_parse_bool_french_and_english(word: str, value: bool) -> None:
    assert parse_bool(word) is value


def test_parse_bool_refuses_unknown_words() -> None:
    with pytest.raises(ValueError, match="neither true"):
        parse_bool("peut-être")


def test_password_hash_never_in_repr_or_public_data() -> None:
    agent = Agent("1", "a", password_hash=Secret("{SSHA}secret"))
    assert "secret" not in repr(agent)
    assert "secret" not in str(agent.public())
    assert agent.public()["password"] is True
    assert password_fingerprint(agent.password_hash) != agent.password_hash


def test_config_mapping_is_checked() -> None:
    text = "kind: csv\ncsv: {path: a.csv}\nmapping:\n  loginn: Identifiant\n"
    with pytest.raises(ConfigError, match="unknown agent field 'loginn'"):
        load_yaml_as(PrimaryConfig, text, "planb.yml")
    text = ("kind: ldap\nldap: {url: ldaps://p, base_dn: dc=x, bind_dn: cn=y}\n"
            "mapping: {login: 'u id'}\n")
    with pytest.raises(ConfigError, match="'u id' is not an LDAP attribute name"):
        load_yaml_as(PrimaryConfig, text, "planb.yml")
    text = "kind: csv\ncsv: {path: a.csv}\nmapping: {id: '-'}\n"
    with pytest.raises(ConfigError, match="id is required"):
        load_yaml_as(PrimaryConfig, text, "planb.yml")


def test_config_leaver_filter_is_checked() -> None:
    text = ("kind: ldap\nldap: {url: ldaps://p, base_dn: dc=x, bind_dn: cn=y, "
            "leaver_filter: '(employeeType=leaver'}\n")
    with pytest.raises(ConfigError, match="leaver_filter .* is not an LDAP filter"):
        load_yaml_as(PrimaryConfig, text, "planb.yml")
    ok = text.replace("leaver'", "leaver)'")
    primary = load_yaml_as(PrimaryConfig, ok, "planb.yml")
    assert primary.ldap is not None and primary.ldap.leaver_filter == "(employeeType=leaver)"


@pytest.mark.parametrize(("flavour", "extra", "leaver"), [
    ("openldap", {"pwdAccountLockedTime": ["000001010000Z"]}, False),  # ppolicy lock
    ("openldap", {}, True),  # the leaver filter matched
    ("active_directory", {"userAccountControl": [514]}, False),  # ACCOUNTDISABLE
])
def test_a_rejected_record_still_says_it_is_disabled(flavour: str, extra: dict[str, object],
                                                    leaver: bool) -> None:
    entry = (openldap_entry if flavour == "openldap" else ad_entry)(
        mail=["pas une adresse"], **extra)
    result = agents_from_entries([("uid=x,dc=x", entry)], resolve_mapping(flavour), "primary",
                                 leavers=frozenset({"uid=x,dc=x"} if leaver else ()))
    [rejection] = result.rejections
    assert rejection.reason == "invalid mail 'pas une adresse'"
    assert (rejection.id, rejection.disabled) == (str(GUID), True)


def test_a_rejected_active_record_is_not_marked_disabled() -> None:
    entry = openldap_entry(mail=["pas une adresse"], pwdAccountLockedTime=[])
    result = agents_from_entries([("uid=x,dc=x", entry)], resolve_mapping("openldap"), "p")
    assert [r.disabled for r in result.rejections] == [False]
