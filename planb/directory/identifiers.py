"""Safe identifiers: LDAP DNs (RFC 4514), LDAP filters (RFC 4515), Matrix localparts.

Names with ``, + " \\ < > ; =``, a leading ``#`` or space, non-ASCII letters, emoji
or NUL are stored exactly and never break a DN or a filter. The escaping uses
ldap3's helpers and patches the cases where they fall short (each patch says why
and has a test in ``tests/unit/test_directory_identifiers.py``).

Matrix localparts are derived deterministically from the login; two agents whose
logins give the same localpart are a *collision*: it is reported, never merged.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ldap3.utils.conv import escape_bytes, escape_filter_chars
from ldap3.utils.dn import escape_rdn

from planb.agent_fields import check_attribute_name

# --- DNs (RFC 4514) ---------------------------------------------------------------------


def escape_dn_value(value: str) -> str:
    """Escape ``value`` for use as an RDN value (RFC 4514 section 2.4).

    Built on :func:`ldap3.utils.dn.escape_rdn`, with three gaps patched:

    * an empty value makes ldap3 raise ``IndexError``; an empty RDN value is never
      what we want, so this raises ``ValueError`` with a clear message;
    * a value of exactly one space comes out as ``\\\\ `` (an escaped backslash then a
      bare space) because ldap3 escapes the same space as leading and trailing;
      it must be ``\\ ``;
    * NUL comes out as a backslash followed by a raw NUL; RFC 4514 requires the
      hex form ``\\00``;
    * ``#`` after the first character is legal unescaped in RFC 4514, but ldap3's
      own DN parser (``parse_dn``/``safe_dn``, used when it sends requests) rejects
      it, so every ``#`` is escaped (escaping any special character is allowed).

    Non-ASCII letters and emoji stay as UTF-8, which RFC 4514 allows.
    """
    if not value:
        raise ValueError("an LDAP RDN value must not be empty")
    if value == " ":
        return "\\ "
    escaped = escape_rdn(value)
    # escape_rdn doubles every original backslash first, so the only backslash that
    # directly precedes a NUL is the one it added.
    escaped = escaped.replace("\\\x00", "\\00")
    # The only '#' escape_rdn escapes is a leading one; escape the rest.
    if escaped.startswith("\\#"):
        return "\\#" + escaped[2:].replace("#", "\\#")
    return escaped.replace("#", "\\#")


_HEX = "0123456789abcdefABCDEF"


def unescape_dn_value(escaped: str) -> str:
    """Undo RFC 4514 escaping (``\\X`` for a special character, ``\\HH`` for a byte)."""
    out = bytearray()
    i = 0
    while i < len(escaped):
        char = escaped[i]
        if char != "\\":
            out += char.encode("utf-8")
            i += 1
            continue
        pair = escaped[i + 1:i + 3]
        if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
            out.append(int(pair, 16))
            i += 3
        elif i + 1 < len(escaped):
            out += escaped[i + 1].encode("utf-8")
            i += 2
        else:
            raise ValueError(f"dangling backslash at the end of {escaped!r}")
    return out.decode("utf-8")


def rdn(attribute: str, value: str) -> str:
    """One RDN, ``attribute=escaped value``."""
    return f"{check_attribute_name(attribute)}={escape_dn_value(value)}"


def child_dn(attribute: str, value: str, parent: str) -> str:
    """The DN of the entry named ``attribute=value`` under ``parent`` (already a DN)."""
    return f"{rdn(attribute, value)},{parent}" if parent else rdn(attribute, value)


# --- Filters (RFC 4515) -----------------------------------------------------------------


def escape_filter_value(value: str | bytes) -> str:
    """Escape an assertion value for a search filter.

    Text uses :func:`ldap3.utils.conv.escape_filter_chars` (``\\ * ( )`` and NUL
    become ``\\5c \\2a \\28 \\29 \\00``; non-ASCII stays UTF-8, which RFC 4515
    allows). Patched gaps:

    * bytes (``objectGUID``): escape_filter_chars first tries to decode them as
      UTF-8 and, when that works (a GUID of low bytes does), leaves control bytes
      raw in the filter; bytes are always sent as ``\\HH`` per byte here
      (:func:`ldap3.utils.conv.escape_bytes`);
    * ldap3's filter parser strips leading and trailing spaces from assertion
      values, so a login with a leading or trailing space would match another
      entry; those spaces are sent as ``\\20``, which ldap3 keeps.
    """
    if isinstance(value, bytes):
        return escape_bytes(value)
    escaped = escape_filter_chars(value)
    core = escaped.lstrip(" ")
    lead = len(escaped) - len(core)
    stripped = core.rstrip(" ")
    trail = len(core) - len(stripped)
    return "\\20" * lead + stripped + "\\20" * trail


def filter_equals(attribute: str, value: str | bytes) -> str:
    """``(attribute=value)`` with ``value`` escaped."""
    if not value:
        raise ValueError(f"empty value for a filter on {attribute!r}")
    return f"({check_attribute_name(attribute)}={escape_filter_value(value)})"


def filter_present(attribute: str) -> str:
    """``(attribute=*)``."""
    return f"({check_attribute_name(attribute)}=*)"


def filter_and(*parts: str) -> str:
    """``(&part1part2...)``; parts are already filters."""
    return parts[0] if len(parts) == 1 else f"(&{''.join(parts)})"


def filter_or(*parts: str) -> str:
    """``(|part1part2...)``; parts are already filters."""
    return parts[0] if len(parts) == 1 else f"(|{''.join(parts)})"


# --- Matrix localparts ------------------------------------------------------------------

#: Characters a localpart keeps as they are (Matrix historical user ID grammar).
LOCALPART_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-/")
#: Letters NFKD does not decompose, spelled out the way French usage does.
_SPELLED = {"œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l", "þ": "th", "ð": "d", "ı": "i"}
#: Longest localpart planb makes (a user ID is at most 255 bytes with @ and :server).
MAX_LOCALPART = 128


def localpart_for(login: str) -> str:
    """The Matrix localpart for ``login``, deterministic and using only ``a-z 0-9 . _ = - /``.

    1. case-folded, decomposed (NFKD) and stripped of accents: ``Élodie`` -> ``elodie``;
       ``œ æ ø ł đ þ`` are spelled out (``oe ae o l d th``);
    2. any other character, ``=`` included, becomes ``=`` and the two hex digits of each
       UTF-8 byte (the Matrix spec's own escape): ``jean dupont`` -> ``jean=20dupont``,
       ``😀`` -> ``=f0=9f=98=80``; so this step is reversible and only step 1 can make
       two logins meet;
    3. a login of digits only gets a ``u`` in front (Synapse reserves numeric IDs for
       guests); anything longer than 128 characters is cut and ends with ``-`` and
       twelve hex digits of its SHA-256.
    """
    folded = unicodedata.normalize("NFKD", login.casefold())
    out: list[str] = []
    for char in folded:
        if unicodedata.combining(char):
            continue
        char = _SPELLED.get(char, char)
        for piece in char:
            if piece in LOCALPART_CHARS:
                out.append(piece)
            else:
                out.extend(f"={byte:02x}" for byte in piece.encode("utf-8"))
    localpart = "".join(out)
    if not localpart:
        raise ValueError("an empty login has no Matrix localpart")
    if localpart.isdigit():
        localpart = "u" + localpart
    if len(localpart) > MAX_LOCALPART:
        digest = hashlib.sha256(localpart.encode("utf-8")).hexdigest()[:12]
        localpart = f"{localpart[:MAX_LOCALPART - 13]}-{digest}"
    return localpart


@dataclass(frozen=True)
class Collision:
    """Two agents whose logins give the same Matrix localpart; ``refused`` is not provisioned.

    A refused *rename* (:mod:`planb.directory.renames`) sets ``keeps_login``: the login
    the refused agent keeps on the fallback (``refused_login`` is the one refused).
    """

    localpart: str
    kept_id: str
    kept_login: str
    refused_id: str
    refused_login: str
    reason: str
    keeps_login: str = ""


@dataclass(frozen=True)
class LocalpartAssignment:
    """Which agent gets which localpart, and who was refused and why."""

    by_id: Mapping[str, str]
    collisions: tuple[Collision, ...]


def assign_localparts(
    agents: Iterable[tuple[str, str]],
    existing: Mapping[str, str] | None = None,
    unmanaged: Iterable[str] = (),
    taken_by: Mapping[str, str] | None = None,
) -> LocalpartAssignment:
    """Give each ``(id, login)`` a localpart; report collisions instead of merging.

    ``existing`` maps an agent id to the localpart it already has (kept, even if the
    login changed since). ``taken_by`` gives the login shown for an existing owner
    that is not among ``agents``. Owners win in this order: an agent already holding
    the localpart, then the smallest id, so the result does not depend on the source
    order. ``unmanaged`` are localparts of Matrix accounts planb does not manage
    (an administrator, a bot): an agent is never given one of them.
    """
    existing = existing or {}
    taken_by = taken_by or {}
    holder: dict[str, str] = {}
    for agent_id, lp in sorted(existing.items()):
        holder.setdefault(lp, agent_id)
    logins: dict[str, str] = dict(taken_by)
    blocked = set(unmanaged) - set(holder)
    wanted: list[tuple[bool, str, str]] = []
    for agent_id, login in agents:
        logins[agent_id] = login
        if agent_id in existing:
            wanted.append((False, agent_id, existing[agent_id]))
        else:
            wanted.append((True, agent_id, localpart_for(login)))
    wanted.sort()
    by_id: dict[str, str] = {}
    collisions: list[Collision] = []
    for _new, agent_id, localpart in wanted:
        if localpart in blocked:
            reason = (f"localpart {localpart!r} belongs to a Matrix account planb does not "
                      "manage; not provisioned")
            collisions.append(Collision(localpart, "", "", agent_id, logins[agent_id], reason))
        elif (owner := holder.setdefault(localpart, agent_id)) != agent_id:
            reason = (f"login {logins[agent_id]!r} gives localpart {localpart!r}, already "
                      f"given to {logins.get(owner, owner)!r} (id {owner}); not provisioned")
            collisions.append(Collision(localpart, owner, logins.get(owner, ""), agent_id,
                                        logins[agent_id], reason))
        else:
            by_id[agent_id] = localpart
    collisions.sort(key=lambda c: (c.localpart, c.refused_id))
    return LocalpartAssignment(by_id, tuple(collisions))


# --- Department rooms ---------------------------------------------------------------------


def _slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(_SPELLED.get(c, c) for c in folded if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")


def room_aliases(departments: Iterable[str], prefix: str = "dept-") -> dict[str, str]:
    """Alias localpart of each department's room.

    ``Direction des Finances`` -> ``dept-direction-des-finances``.

    Deterministic. When two department names give the same slug, the first in sorted
    order keeps it and the others get ``-`` and six hex digits of the name's SHA-256,
    so two departments never share a room.
    """
    aliases: dict[str, str] = {}
    used: set[str] = set()
    for department in sorted(set(departments)):
        slug = _slug(department)[:60].strip("-")
        alias = prefix + slug if slug else ""
        if not slug or alias in used:
            digest = hashlib.sha256(department.encode("utf-8")).hexdigest()[:6]
            alias = f"{prefix}{slug}-{digest}" if slug else f"{prefix}{digest}"
        used.add(alias)
        aliases[department] = alias
    return aliases
