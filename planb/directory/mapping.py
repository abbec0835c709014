"""Which source attribute (or CSV header) feeds which agent field, and the conversion.

Defaults exist for OpenLDAP ``inetOrgPerson``, Active Directory and CSV; planb.yml's
``primary.mapping`` overrides them field by field (``agent field: attribute``). For
LDAP, ``a|b`` means "a, or b when a is absent"; ``-`` unmaps a default field.

Turning one record (an ldap3 entry's attributes, or a CSV row) into an
:class:`~planb.directory.model.Agent` is a pure function here:
:func:`agent_from_record`.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from planb.agent_fields import AGENT_FIELDS, FLAVOURS, REQUIRED, UNMAPPED, check_mapping
from planb.directory.identifiers import unescape_dn_value
from planb.directory.model import (
    Agent,
    AgentCollector,
    SourceResult,
    check_mail,
    display_name_for,
    parse_bool,
)
from planb.schema import Secret

log = logging.getLogger(__name__)

#: Active Directory userAccountControl: ACCOUNTDISABLE.
UAC_ACCOUNTDISABLE = 0x2

_COMMON = {
    "given_name": "givenName", "surname": "sn", "display_name": "displayName",
    "mail": "mail", "title": "title", "mobile": "mobile",
}
DEFAULT_MAPPINGS: dict[str, dict[str, str]] = {
    "openldap": {
        **_COMMON, "id": "entryUUID", "login": "uid", "department": "departmentNumber|ou",
        "employee_number": "employeeNumber", "password_hash": "userPassword",
        "groups": "memberOf",  # the memberof overlay; operational, requested by name
        # ppolicy's lock: any value (000001010000Z = locked for good) means disabled.
        "disabled": "pwdAccountLockedTime",
    },
    "active_directory": {
        **_COMMON, "id": "objectGUID", "login": "sAMAccountName", "department": "department",
        "employee_number": "employeeID", "groups": "memberOf",
        "disabled": "userAccountControl",
    },
    # CSV headers default to the agent field names.
    "csv": {name: name for name in AGENT_FIELDS if name not in ("disabled", "password_hash")},
}


@dataclass(frozen=True)
class FieldMap:
    """Agent field -> source names tried in order (lower-cased); ``explicit`` came from config."""

    flavour: str
    fields: Mapping[str, tuple[str, ...]]
    explicit: frozenset[str] = frozenset()

    def names(self, agent_field: str) -> tuple[str, ...]:
        """The source names for ``agent_field`` (empty when unmapped)."""
        return self.fields.get(agent_field, ())


def resolve_mapping(flavour: str, overrides: Mapping[str, str] | None = None) -> FieldMap:
    """The defaults for ``flavour`` with ``overrides`` (from planb.yml) applied."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown source flavour {flavour!r} (known: {', '.join(FLAVOURS)})")
    overrides = dict(overrides or {})
    check_mapping(overrides, flavour)
    merged = {**DEFAULT_MAPPINGS[flavour], **overrides}
    resolved: dict[str, tuple[str, ...]] = {}
    for agent_field, source in merged.items():
        if source == UNMAPPED:
            continue
        if flavour == "csv":
            resolved[agent_field] = (unicodedata.normalize("NFC", source.strip()).casefold(),)
        else:
            resolved[agent_field] = tuple(n.strip().casefold() for n in source.split("|"))
    return FieldMap(flavour, resolved, frozenset(overrides))


def without_password(fmap: FieldMap) -> FieldMap:
    """``fmap`` without the password hash (primary.ldap.copy_password_hashes false): the
    hash is then neither requested from the primary nor copied."""
    return FieldMap(fmap.flavour, {k: v for k, v in fmap.fields.items()
                                   if k != "password_hash"}, fmap.explicit)


def source_attributes(fmap: FieldMap) -> list[str]:
    """Every LDAP attribute to request for ``fmap`` (operational ones included), sorted."""
    return sorted({name for names in fmap.fields.values() for name in names})


# --- values -----------------------------------------------------------------------------


def _values(record: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, list[Any]]:
    """The first of ``names`` with a non-empty value in ``record`` (keys lower-cased)."""
    for name in names:
        raw = record.get(name)
        if raw is None or raw == "" or raw == b"":
            continue
        items = list(raw) if isinstance(raw, list | tuple | set | frozenset) else [raw]
        items = [v for v in items if v not in (None, "", b"")]
        if items:
            return name, items
    return (names[0] if names else ""), []


def _text(value: Any, name: str) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"attribute {name} is not UTF-8 text") from None
    elif isinstance(value, bool):
        value = "TRUE" if value else "FALSE"
    elif isinstance(value, datetime):
        value = value.isoformat()
    return str(value).strip()


def canonical_id(value: Any, name: str) -> str:
    """A stable id: AD's objectGUID (16 little-endian bytes, or ``{...}`` as ldap3 formats
    it) or entryUUID as a lower-case UUID string; any other identifier as given."""
    if isinstance(value, bytes | bytearray) and name == "objectguid" and len(value) == 16:
        return str(uuid.UUID(bytes_le=bytes(value)))
    text = _text(value, name)
    if name not in ("objectguid", "entryuuid"):
        return text
    try:
        return str(uuid.UUID(text.strip("{}")))
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a UUID") from None


@functools.lru_cache(maxsize=4096)  # the same few group DNs repeat on every entry
def _group_name(value: str) -> str:
    """``cn=Finances,ou=groups,dc=x`` -> ``Finances``; a plain name stays as is."""
    if "=" not in value or "," not in value:
        return value
    try:
        first = parse_dn(value)[0]
    except LDAPInvalidDnError:
        return value
    return unescape_dn_value(first[1])


def _disabled(values: list[Any], name: str) -> bool:
    if not values:
        return False
    if name == "useraccountcontrol":
        try:
            return bool(int(_text(values[0], name)) & UAC_ACCOUNTDISABLE)
        except ValueError:
            raise ValueError(f"userAccountControl {values[0]!r} is not a number") from None
    try:
        return parse_bool(_text(values[0], name))
    except ValueError:
        return True  # a lock time or any other value: present means disabled


def _password(values: list[Any]) -> Secret | None:
    for value in values:
        try:
            text = value.decode("ascii") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            continue
        if text.startswith("{") and "}" in text:
            return Secret(text)
    if values:
        log.warning("ignored a userPassword value that is not a {SCHEME} hash")
    return None


def record_key(record: Mapping[str, Any], fmap: FieldMap) -> tuple[str | None, str | None]:
    """Best-effort ``(id, login)`` of a record, for rejection messages."""
    out: list[str | None] = []
    for agent_field in REQUIRED:
        name, values = _values(record, fmap.names(agent_field))
        try:
            out.append(canonical_id(values[0], name) if values else None)
        except ValueError:
            out.append(None)
    return out[0], out[1]


def record_disabled(record: Mapping[str, Any], fmap: FieldMap, *, leaver: bool = False
                    ) -> bool:
    """Whether a record says its agent is disabled, read even when the rest of it is
    unusable (a bad mail, a missing name): the leaver filter matched, ``enabled`` reads
    false, or the ``disabled`` attribute (a ppolicy lock, AD's ACCOUNTDISABLE) is set.
    A value that cannot be read says nothing (False)."""
    if leaver:
        return True
    name, values = _values(record, fmap.names("enabled"))
    if values:
        try:
            if not parse_bool(_text(values[0], name)):
                return True
        except ValueError:
            pass
    name, values = _values(record, fmap.names("disabled"))
    try:
        return _disabled(values, name)
    except ValueError:
        return False


def agent_from_record(record: Mapping[str, Any], fmap: FieldMap, *, leaver: bool = False
                      ) -> Agent:
    """Turn one record into an Agent; ValueError with the reason if it cannot be.

    ``record`` maps lower-cased attribute names (or CSV headers) to a value or a list
    of values (str, bytes, int as ldap3 returns them). ``leaver`` is set when the
    entry matched the source's leaver filter.
    """
    text: dict[str, str] = {}
    for agent_field in ("id", "login", "given_name", "surname", "display_name", "mail",
                        "department", "title", "mobile", "employee_number"):
        name, values = _values(record, fmap.names(agent_field))
        if not values:
            if agent_field in REQUIRED:
                raise ValueError(f"missing {agent_field} (nothing in {name!r})" if name
                                 else f"missing {agent_field} (not mapped)")
            text[agent_field] = ""
        elif agent_field == "id":
            text[agent_field] = canonical_id(values[0], name)
        else:
            text[agent_field] = _text(values[0], name)
    check_mail(text["mail"])
    enabled = not leaver
    name, values = _values(record, fmap.names("enabled"))
    if values:
        try:
            enabled = parse_bool(_text(values[0], name)) and enabled
        except ValueError as exc:
            raise ValueError(f"enabled: {exc}") from None
    elif fmap.flavour == "csv" and any(n in record for n in fmap.names("enabled")):
        raise ValueError("enabled: empty value")
    name, values = _values(record, fmap.names("disabled"))
    enabled = enabled and not _disabled(values, name)
    _, group_values = _values(record, fmap.names("groups"))
    groups = frozenset(
        _group_name(g) for v in group_values
        for g in (_text(v, "groups").split("|") if fmap.flavour == "csv" else [_text(v, "")])
        if g.strip()
    )
    _, hashes = _values(record, fmap.names("password_hash"))
    text["display_name"] = text["display_name"] or display_name_for(
        text["given_name"], text["surname"], text["login"])
    return Agent(**text, enabled=enabled, groups=frozenset(g.strip() for g in groups),
                 password_hash=_password(hashes))


def lower_keys(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """An ldap3 ``attributes`` mapping with lower-cased names (ldap3's is case-insensitive)."""
    return {str(k).casefold(): v for k, v in attributes.items()}


def agents_from_entries(
    entries: Iterable[tuple[str, Mapping[str, Any]]], fmap: FieldMap, source: str,
    leavers: frozenset[str] = frozenset(),
) -> SourceResult:
    """Convert ``(dn, attributes)`` pairs from an LDAP search into a SourceResult.

    Entries that cannot be converted, and duplicate ids or logins, become rejections
    naming the DN. ``leavers`` holds DNs that matched the leaver filter.
    """
    collector = AgentCollector(source)
    for dn, attributes in entries:
        record = lower_keys(attributes)
        try:
            agent = agent_from_record(record, fmap, leaver=dn in leavers)
        except ValueError as exc:
            agent_id, login = record_key(record, fmap)
            collector.reject(str(exc), entry=dn, id=agent_id, login=login,
                             disabled=record_disabled(record, fmap, leaver=dn in leavers))
            continue
        collector.add(agent, entry=dn)
    return collector.result()
