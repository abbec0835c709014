"""DN and filter escaping (RFC 4514/4515) and Matrix localparts."""

from __future__ import annotations

import re

import pytest
from ldap3.operation.search import compile_filter, parse_filter
from ldap3.utils.dn import parse_dn, safe_dn

from planb.directory.identifiers import (
    LOCALPART_CHARS,
    MAX_LOCALPART,
    assign_localparts,
    child_dn,
    escape_dn_value,
    filter_and,
    filter_equals,
    localpart_for,
    room_aliases,
    unescape_dn_value,
)

AWKWARD = [
    "Dupont, Jean", "a+b", 'say "hi"', "back\\slash", "<tag>", "semi;colon", "x=y",
    "#hash", "mid#hash", " leading", "trailing ", " ", "  ", "# both ", "Élodie Müller",
    "smile😀", "nul\x00byte", "\\", "\\ ", "ends with \\", "#", "Zoë,#+\"\\<>;= ",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_dn_value_survives_ldap3_parsing(value: str) -> None:
    dn = child_dn("uid", value, "ou=people,dc=planb,dc=lab")
    parsed = parse_dn(dn)
    assert [(t, s) for t, _, s in parsed] == [("uid", ","), ("ou", ","), ("dc", ","), ("dc", "")]
    assert unescape_dn_value(parsed[0][1]) == value
    assert safe_dn(dn)  # what ldap3 runs on every DN it sends


def test_dn_escaping_patches_ldap3_gaps() -> None:
    assert escape_dn_value(" ") == "\\ "  # ldap3 gives an escaped backslash + bare space
    assert escape_dn_value("a\x00b") == "a\\00b"  # RFC 4514 wants the hex form
    assert escape_dn_value("a#b") == "a\\#b"  # ldap3's own parser rejects a bare '#'
    with pytest.raises(ValueError, match="must not be empty"):
        escape_dn_value("")


def test_rdn_attribute_is_checked() -> None:
    with pytest.raises(ValueError, match="not an LDAP attribute name"):
        child_dn("uid,ou=x", "a", "dc=x")


def _sent_value(search_filter: str) -> bytes:
    """The assertion value ldap3 would put on the wire for a one-item filter."""
    tree = parse_filter(search_filter, None, True, True, None, False)
    node = tree.elements[0]
    while node.elements:
        node = node.elements[-1]
    return bytes(compile_filter(node)["equalityMatch"]["assertionValue"])


@pytest.mark.parametrize("value", [*AWKWARD, "a*b", "(x)", "x)(uid=*", "x\\29"])
def test_filter_value_reaches_the_wire_exactly(value: str) -> None:
    search_filter = filter_equals("uid", value)
    assert _sent_value(search_filter) == value.encode("utf-8")


def test_filter_injection_is_neutralised() -> None:
    search_filter = filter_and("(objectClass=inetOrgPerson)", filter_equals("uid", "*)(uid=*"))
    assert search_filter == "(&(objectClass=inetOrgPerson)(uid=\\2a\\29\\28uid=\\2a))"


def test_filter_on_binary_guid_escapes_every_byte() -> None:
    raw = bytes(range(16))
    search_filter = filter_equals("objectGUID", raw)
    assert search_filter == "(objectGUID=" + "".join(f"\\{b:02x}" for b in raw) + ")"
    assert _sent_value(search_filter) == raw


def test_localpart_is_lowercase_ascii_without_accents() -> None:
    assert localpart_for("Élodie.MÜLLER") == "elodie.muller"
    assert localpart_for("Cœur-de-Lion") == "coeur-de-lion"
    assert localpart_for("jean_pierre/2") == "jean_pierre/2"


def test_localpart_escapes_other_characters_reversibly() -> None:
    assert localpart_for("jean dupont") == "jean=20dupont"
    assert localpart_for("a=b") == "a=3db"  # '=' is escaped, so no literal can mimic an escape
    assert localpart_for("😀") == "=f0=9f=98=80"
    assert localpart_for("a=20b") != localpart_for("a b")


@pytest.mark.parametrize("login", [*AWKWARD, "12345", "x" * 400, "Ⅻ", "ﬁ"])
def test_localpart_uses_only_allowed_characters(login: str) -> None:
    localpart = localpart_for(login)
    assert set(localpart) <= LOCALPART_CHARS | {"="}
    assert 0 < len(localpart) <= MAX_LOCALPART
    assert not localpart.isdigit()
    assert localpart_for(login) == localpart  # deterministic


def test_long_logins_keep_distinct_localparts() -> None:
    assert localpart_for("x" * 300 + "a") != localpart_for("x" * 300 + "b")


def test_collision_is_reported_and_second_agent_not_provisioned() -> None:
    result = assign_localparts([("id-2", "élodie"), ("id-1", "Elodie"), ("id-3", "paul")])
    assert result.by_id == {"id-1": "elodie", "id-3": "paul"}
    (collision,) = result.collisions
    assert (collision.kept_id, collision.refused_id) == ("id-1", "id-2")
    assert (collision.kept_login, collision.refused_login) == ("Elodie", "élodie")
    assert "not provisioned" in collision.reason and "'élodie'" in collision.reason


def test_existing_holder_keeps_its_localpart_whatever_the_order() -> None:
    result = assign_localparts([("a", "Elodie"), ("z", "elodie")], existing={"z": "elodie"})
    assert result.by_id == {"z": "elodie"}
    assert result.collisions[0].refused_id == "a"


def test_existing_localpart_is_kept_after_a_login_change() -> None:
    result = assign_localparts([("a", "new.name")], existing={"a": "old.name"})
    assert result.by_id == {"a": "old.name"}


def test_unmanaged_matrix_account_is_never_given_to_an_agent() -> None:
    result = assign_localparts([("a", "Admin"), ("b", "admin")], unmanaged={"admin"})
    assert result.by_id == {}
    assert {c.refused_id for c in result.collisions} == {"a", "b"}
    assert all("does not manage" in c.reason for c in result.collisions)


def test_room_aliases_are_slugs_and_never_shared() -> None:
    aliases = room_aliases(["Direction des Finances", "R&D", "R-D", "Ressources humaines"])
    assert aliases["Direction des Finances"] == "dept-direction-des-finances"
    assert aliases["R&D"] == "dept-r-d"
    assert re.fullmatch(r"dept-r-d-[0-9a-f]{6}", aliases["R-D"])
    assert len(set(aliases.values())) == 4
