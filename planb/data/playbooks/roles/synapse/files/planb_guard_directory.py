"""planb's Synapse login guard: the directory part (ldap3, blocking: run it in a thread).

One login is two LDAP steps on two fresh connections:

1. as Synapse's service account, search ``ou=people`` for the entry the login names
   (the filter is built by the guard with RFC 4515 escaping) and read what decides
   the login before any agent bind: how many entries, the Matrix localpart, the
   ppolicy lock;
2. only then bind as that entry with the typed password.

Nothing here logs or keeps the password. Every LDAP failure is an answer (an
:class:`Entry` list or False), never an exception that would reach Synapse.
"""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import ldap3
from ldap3.core.exceptions import LDAPException

logger = logging.getLogger("planb_ldap_guard")

#: planb's permanent leaver lock (the sync writes it); any other value is ppolicy's.
PERMANENT_LOCK = "000001010000Z"
ATTRIBUTES = ("uid", "planbLocalpart", "cn", "mail", "pwdAccountLockedTime", "objectClass",
              "departmentNumber")


class DirectoryUnavailable(Exception):
    """The directory could not be asked (down, timeout, service bind refused)."""


@dataclass(frozen=True)
class Entry:
    """What the service search read of one ``ou=people`` entry."""

    dn: str
    uid: str
    localpart: str | None
    locked_time: str | None
    is_agent: bool
    #: ``departmentNumber`` values, as stored (the department rooms' check compares them).
    departments: tuple[str, ...] = ()


@dataclass(frozen=True)
class DirectoryConfig:
    """Where the directory is and how the guard reaches it."""

    uris: Sequence[str]
    base: str
    bind_dn: str
    bind_password: str
    ca_file: str | None
    connect_timeout: float


def _first(values: object) -> str | None:
    if isinstance(values, (list, tuple)):
        return str(values[0]) if values else None
    return None if values in (None, "") else str(values)


def _values(values: object) -> tuple[str, ...]:
    """Every value of a (multi-valued) attribute, as strings; one string is one value."""
    if values in (None, ""):
        return ()
    if isinstance(values, (list, tuple)):
        return tuple(str(v) for v in values)
    return (str(values),)


def lock_age(value: str, now: datetime) -> float | None:
    """Seconds since ``pwdAccountLockedTime`` (GeneralizedTime), None if unreadable."""
    text = value.strip().rstrip("Zz").split(".")[0]
    try:
        when = datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (now - when).total_seconds()


def lock_refuses(value: str | None, lockout_seconds: float,
                 now: datetime | None = None) -> str | None:
    """Why a ``pwdAccountLockedTime`` refuses the login before the bind, or None.

    planb's leaver lock always refuses; a ppolicy lockout refuses while it is younger
    than ``lockout_seconds`` (after that slapd decides: its lockout heals by itself).
    An unreadable value refuses.
    """
    if value is None:
        return None
    if value.strip() == PERMANENT_LOCK:
        return "entry locked (leaver)"
    age = lock_age(value, now or datetime.now(UTC))
    if age is None:
        return "entry locked (unreadable pwdAccountLockedTime)"
    if age < lockout_seconds:
        return f"entry locked (failed logins, {max(age, 0):.0f} s ago)"
    return None


class Directory:
    """The two LDAP steps of a login; each call opens and closes its own connection."""

    def __init__(self, config: DirectoryConfig) -> None:
        self._config = config
        tls = ldap3.Tls(validate=2, ca_certs_file=config.ca_file)  # ssl.CERT_REQUIRED
        self._servers = [ldap3.Server(uri, tls=tls, connect_timeout=config.connect_timeout,
                                      get_info=ldap3.NONE) for uri in config.uris]

    def _connection(self, server: "ldap3.Server", user: str, password: str
                    ) -> "ldap3.Connection":
        # ldap3 packs receive_timeout into SO_RCVTIMEO: whole seconds only.
        return ldap3.Connection(server, user=user, password=password,
                                receive_timeout=max(1, math.ceil(self._config.connect_timeout)),
                                raise_exceptions=False, read_only=True)

    def search(self, ldap_filter: str) -> list[Entry]:
        """The entries ``ldap_filter`` finds under the base, as the service account.

        :class:`DirectoryUnavailable` when no server answers or the service bind fails.
        """
        for server in self._servers:
            conn = self._connection(server, self._config.bind_dn, self._config.bind_password)
            try:
                if not conn.bind():
                    logger.error("planb guard: the service bind to %s was refused (%s)",
                                 server.host, conn.result.get("description"))
                    continue
                conn.search(self._config.base, ldap_filter, search_scope=ldap3.SUBTREE,
                            attributes=list(ATTRIBUTES), size_limit=2)
                return [self._entry(e) for e in conn.response or []
                        if e.get("type") == "searchResEntry"]
            except LDAPException as exc:
                logger.error("planb guard: directory %s unavailable: %s", server.host,
                             type(exc).__name__)
            finally:
                conn.unbind()
        raise DirectoryUnavailable("no directory server answered")

    @staticmethod
    def _entry(raw: dict) -> Entry:
        attrs = raw.get("attributes") or {}
        classes = {str(c).lower() for c in attrs.get("objectClass") or []}
        return Entry(dn=str(raw["dn"]), uid=_first(attrs.get("uid")) or "",
                     localpart=_first(attrs.get("planbLocalpart")),
                     locked_time=_first(attrs.get("pwdAccountLockedTime")),
                     is_agent="planbagent" in classes,
                     departments=_values(attrs.get("departmentNumber")))

    def bind_as(self, dn: str, password: str) -> bool | None:
        """True when ``dn`` binds with ``password``, False when refused, None if unreachable."""
        if not password:
            return False  # an empty password would be an anonymous (unauthenticated) bind
        for server in self._servers:
            conn = self._connection(server, dn, password)
            try:
                return bool(conn.bind())
            except LDAPException as exc:
                logger.error("planb guard: directory %s unavailable for a bind: %s",
                             server.host, type(exc).__name__)
            finally:
                conn.unbind()
        return None
