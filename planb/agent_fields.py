"""The agent fields a primary source can map, and how ``primary.mapping`` is checked.

This is what planb.yml's ``primary.mapping`` may name, so the configuration checks it
at load time (with the file's line) without knowing how the sync reads a source;
:mod:`planb.directory.mapping` holds the per-flavour defaults and the reading itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: Agent fields a source can map, in display order (``disabled`` is the leaver flag).
AGENT_FIELDS = (
    "id", "login", "given_name", "surname", "display_name", "mail", "department",
    "title", "mobile", "employee_number", "enabled", "disabled", "groups", "password_hash",
)
#: Fields every source must provide (they cannot be unmapped).
REQUIRED = ("id", "login")
#: The value that unmaps a default in ``primary.mapping``.
UNMAPPED = "-"
#: Where a source's defaults come from.
FLAVOURS = ("openldap", "active_directory", "csv")

_ATTRIBUTE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[A-Za-z0-9-]+)*$")


def check_attribute_name(name: str) -> str:
    """Return ``name`` if it is an LDAP attribute description (RFC 4512), else ValueError."""
    if not _ATTRIBUTE.match(name):
        raise ValueError(f"{name!r} is not an LDAP attribute name")
    return name


def check_mapping(overrides: Mapping[str, str], flavour: str) -> None:
    """Raise ValueError naming the first bad entry of a ``primary.mapping``."""
    for agent_field, source in overrides.items():
        if agent_field not in AGENT_FIELDS:
            raise ValueError(f"mapping: unknown agent field {agent_field!r} "
                             f"(known: {', '.join(AGENT_FIELDS)})")
        if source == UNMAPPED:
            if agent_field in REQUIRED:
                raise ValueError(f"mapping: {agent_field} is required and cannot be unmapped")
            continue
        if flavour != "csv":
            for name in source.split("|"):
                try:
                    check_attribute_name(name.strip())
                except ValueError as exc:
                    raise ValueError(f"mapping: {agent_field}: {exc}") from None
