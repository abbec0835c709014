"""Reading the primary directory (OpenLDAP or Active Directory) over LDAP into agents.

A paged search (``primary.ldap.page_size`` entries a page: 9,000 never arrive in
one) under ``base_dn`` with ``user_filter``, asking only for the attributes the
mapping needs (operational ones such as ``entryUUID``, ``memberOf`` and
``pwdAccountLockedTime`` by name). Leavers are those the mapping marks disabled
(``pwdAccountLockedTime``, AD's ``userAccountControl`` bit 2) plus, when set,
those matching ``leaver_filter``. Read-only: this module never writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ldap3 import SUBTREE, Connection

from planb.config import LdapSourceConfig, PrimaryConfig, SiteConfig
from planb.directory.csv_source import read_csv
from planb.directory.ldap_conn import DirectoryUnreachable, LdapEndpoint, read_secret_file
from planb.directory.mapping import (
    agents_from_entries,
    resolve_mapping,
    source_attributes,
    without_password,
)
from planb.directory.model import SourceResult, rejection_lines
from planb.errors import UsageError

log = logging.getLogger(__name__)

PAGED_RESULTS = "1.2.840.113556.1.4.319"
#: Attributes whose raw bytes matter (AD's binary GUID must not be decoded as text).
BINARY_ATTRIBUTES = ("objectguid",)


def primary_endpoint(config: LdapSourceConfig, base_dir: Path) -> LdapEndpoint:
    """How to bind to the primary: URL, DN, the password (inline or from its file), CA."""
    if config.bind_password is not None:
        password = config.bind_password
    elif config.bind_password_file is not None:
        password = read_secret_file(base_dir / config.bind_password_file,
                                    "primary.ldap.bind_password_file")
    else:
        raise UsageError("primary.ldap: set bind_password or bind_password_file")
    ca_file = base_dir / config.ca_file if config.ca_file is not None else None
    return LdapEndpoint(config.url, config.bind_dn, password, ca_file,
                        label="the primary directory")


def paged_entries(conn: Connection, base: str, search_filter: str, attributes: list[str],
                  page_size: int, shown: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(dn, attributes)`` of every entry, page by page (RFC 2696 paged results)."""
    cookie: bytes | None = None
    while True:
        conn.search(base, search_filter, SUBTREE, attributes=attributes, paged_size=page_size,
                    paged_cookie=cookie)
        result = conn.result
        if result.get("result") != 0:
            raise DirectoryUnreachable(
                f"{shown}: the search under {base} with {search_filter} failed: "
                f"{result.get('description')} {result.get('message') or ''}".rstrip()
                + "; nothing was changed",
                hint="check primary.ldap.base_dn and user_filter in planb.yml")
        for item in conn.response or ():
            if item.get("type") != "searchResEntry":
                continue
            attrs = dict(item["attributes"])
            raw = item.get("raw_attributes") or {}
            for name in list(attrs):
                if name.casefold() in BINARY_ATTRIBUTES and raw.get(name):
                    attrs[name] = raw[name]
            yield item["dn"], attrs
        control = (result.get("controls") or {}).get(PAGED_RESULTS) or {}
        cookie = (control.get("value") or {}).get("cookie")
        if not cookie:
            return


def read_ldap(primary: PrimaryConfig, base_dir: Path, *, strict: bool = False) -> SourceResult:
    """Read every agent of the primary directory; DirectoryUnreachable if it cannot."""
    config = primary.ldap
    assert config is not None
    endpoint = primary_endpoint(config, base_dir)
    fmap = resolve_mapping(primary.flavour, primary.mapping)
    if not primary.copies_password_hashes:
        fmap = without_password(fmap)
    attributes = source_attributes(fmap)
    shown = f"{config.url} ({config.base_dn})"
    conn = endpoint.connect(read_only=True)
    try:
        leavers: frozenset[str] = frozenset()
        if config.leaver_filter:
            flt = f"(&{config.user_filter}{config.leaver_filter})"
            leavers = frozenset(dn for dn, _ in paged_entries(
                conn, config.base_dn, flt, ["1.1"], config.page_size, shown))
        result = agents_from_entries(
            paged_entries(conn, config.base_dn, config.user_filter, attributes,
                          config.page_size, shown), fmap, shown, leavers)
    finally:
        conn.unbind()
    log.info("%s: %s", shown, result.summary())
    _check_strict(result, strict)
    return result


def _check_strict(result: SourceResult, strict: bool) -> None:
    if strict and result.rejections:
        raise UsageError(
            f"{result.source}: {len(result.rejections)} record(s) rejected, nothing done "
            f"(--strict):\n{rejection_lines(result.rejections)}",
            hint="fix them at the source, or run without --strict to skip them")


def read_primary(site: SiteConfig, *, strict: bool = False) -> SourceResult:
    """Read the configured primary source (LDAP or CSV export)."""
    primary = site.primary
    if primary.kind == "csv":
        assert primary.csv is not None
        return read_csv(site.base_dir / primary.csv.path, primary.mapping,
                        encoding=primary.csv.encoding, delimiter=primary.csv.delimiter,
                        strict=strict)
    return read_ldap(primary, site.base_dir, strict=strict)
