"""planb's enrolment page: the directory part (ldap3, blocking: run it in a thread).

One attempt is one connection as the enrol service account (``cn=planb-enrol``), whose
ACL lets it read agents' entries and their code attributes, write those, and write
(never read) ``userPassword``:

1. find the one ``planbAgent`` entry with ``uid=<login>`` (RFC 4515 escaped);
2. a locked code (``planbEnrolmentFailures`` >= max_failures) is refused unchecked;
   a wrong code adds one failure (Modify-Increment: concurrent tries all count);
3. a right, unexpired code is spent first (deleting that very hash value: two
   concurrent uses cannot both succeed), then the password is set with the Password
   Modify extended operation (slapd hashes it); if that fails the code is put back.

Nothing here logs or keeps the password or the code. Every LDAP failure is an answer
(the outcome ``unavailable``), never an exception that would reach Synapse.
"""

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Optional

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from planb_guard_directory import PERMANENT_LOCK, _first

logger = logging.getLogger("planb_ldap_guard")

CODE = "planbEnrolmentCode"
EXPIRES = "planbEnrolmentExpires"
FAILURES = "planbEnrolmentFailures"
ENROLLED = "planbEnrolledAt"
ATTRIBUTES = ("uid", CODE, EXPIRES, FAILURES, "pwdAccountLockedTime")
NO_SUCH_ATTRIBUTE, VALUE_EXISTS = 16, 20


@dataclass(frozen=True)
class EnrolConfig:
    """Where the directory is, the enrol account, and the code rules."""

    uris: Sequence[str]
    base: str
    bind_dn: str
    bind_password: str
    ca_file: str | None
    connect_timeout: float
    max_failures: int


def generalized_time(moment: datetime) -> str:
    """``moment`` as LDAP GeneralizedTime (UTC, whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def expired(value: str | None, now: datetime) -> bool:
    """True when the GeneralizedTime ``value`` is past (an unreadable one is expired)."""
    if value is None:
        return False
    text = value.strip().rstrip("Zz").split(".")[0]
    try:
        when = datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return True
    return when <= now


def _int(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0


class EnrolDirectory:
    """One enrolment attempt against the fallback directory, as the enrol account."""

    def __init__(self, config: EnrolConfig) -> None:
        self._config = config
        tls = ldap3.Tls(validate=2, ca_certs_file=config.ca_file)  # ssl.CERT_REQUIRED
        self._servers = [ldap3.Server(uri, tls=tls, connect_timeout=config.connect_timeout,
                                      get_info=ldap3.NONE) for uri in config.uris]

    def _connect(self) -> Optional["ldap3.Connection"]:
        for server in self._servers:
            conn = ldap3.Connection(
                server, user=self._config.bind_dn, password=self._config.bind_password,
                receive_timeout=max(1, math.ceil(self._config.connect_timeout)),
                raise_exceptions=False)
            try:
                if conn.bind():
                    return conn
                logger.error("planb enrol: the enrol account's bind to %s was refused (%s)",
                             server.host, conn.result.get("description"))
            except LDAPException as exc:
                logger.error("planb enrol: directory %s unavailable: %s", server.host,
                             type(exc).__name__)
            conn.unbind()
        return None

    def attempt(self, login: str, code: str, password: str,
                verify: Callable[[str, str], bool], burn: Callable[[], None],
                now: datetime | None = None) -> str:
        """The outcome of enrolling ``login`` with ``code`` (normalised) and ``password``."""
        conn = self._connect()
        if conn is None:
            return "unavailable"
        try:
            return self._attempt(conn, login, code, password, verify, burn,
                                 now or datetime.now(UTC))
        except LDAPException as exc:
            logger.error("planb enrol: directory error: %s", type(exc).__name__)
            return "unavailable"
        finally:
            conn.unbind()

    def _attempt(self, conn: "ldap3.Connection", login: str, code: str, password: str,
                 verify: Callable[[str, str], bool], burn: Callable[[], None],
                 now: datetime) -> str:
        conn.search(self._config.base,
                    f"(&(objectClass=planbAgent)(uid={escape_filter_chars(login)}))",
                    search_scope=ldap3.SUBTREE, attributes=list(ATTRIBUTES), size_limit=2)
        # 0 success, 4 sizeLimitExceeded (several entries), 32 noSuchObject (no base yet)
        if conn.result.get("result") not in (0, 4, 32):
            logger.error("planb enrol: search refused (%s)", conn.result.get("description"))
            return "unavailable"
        entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        if len(entries) != 1:
            burn()
            return "unknown_login"
        dn, attrs = str(entries[0]["dn"]), entries[0].get("attributes") or {}
        stored = _first(attrs.get(CODE))
        if (_first(attrs.get("pwdAccountLockedTime")) or "").strip() == PERMANENT_LOCK:
            burn()
            return "leaver"
        if stored is None:
            burn()
            return "no_code"
        failures = _int(_first(attrs.get(FAILURES)))
        if failures >= self._config.max_failures:
            burn()
            return "locked"
        if not verify(code, stored):
            self._count_failure(conn, dn, failures)
            return "wrong_code"
        if expired(_first(attrs.get(EXPIRES)), now):
            return "expired"
        return self._enrol(conn, dn, stored, _first(attrs.get(EXPIRES)), failures,
                           password, now)

    @staticmethod
    def _count_failure(conn: "ldap3.Connection", dn: str, seen: int) -> None:
        """One more wrong code on ``dn`` (atomic where slapd allows: Modify-Increment)."""
        if conn.modify(dn, {FAILURES: [(ldap3.MODIFY_INCREMENT, [1])]}):
            return
        if conn.result.get("result") == NO_SUCH_ATTRIBUTE:
            if conn.modify(dn, {FAILURES: [(ldap3.MODIFY_ADD, ["1"])]}):
                return
            if conn.result.get("result") == VALUE_EXISTS and \
                    conn.modify(dn, {FAILURES: [(ldap3.MODIFY_INCREMENT, [1])]}):
                return
        if not conn.modify(dn, {FAILURES: [(ldap3.MODIFY_REPLACE, [str(seen + 1)])]}):
            logger.error("planb enrol: could not count a wrong code (%s)",
                         conn.result.get("description"))

    @staticmethod
    def _enrol(conn: "ldap3.Connection", dn: str, stored: str, expires: str | None,
               failures: int, password: str, now: datetime) -> str:
        """Spend the code (that very value: once only), then set the password."""
        spent = conn.modify(dn, {CODE: [(ldap3.MODIFY_DELETE, [stored])],
                                 EXPIRES: [(ldap3.MODIFY_REPLACE, [])],
                                 FAILURES: [(ldap3.MODIFY_REPLACE, [])],
                                 ENROLLED: [(ldap3.MODIFY_REPLACE, [generalized_time(now)])]})
        if not spent:
            if conn.result.get("result") == NO_SUCH_ATTRIBUTE:
                return "no_code"  # spent meanwhile by a concurrent attempt
            logger.error("planb enrol: could not spend the code (%s)",
                         conn.result.get("description"))
            return "unavailable"
        if conn.extend.standard.modify_password(user=dn, new_password=password) is True:
            return "enrolled"
        logger.error("planb enrol: the password change was refused (%s)",
                     conn.result.get("description"))
        back = {CODE: [(ldap3.MODIFY_ADD, [stored])], ENROLLED: [(ldap3.MODIFY_REPLACE, [])]}
        if expires is not None:
            back[EXPIRES] = [(ldap3.MODIFY_REPLACE, [expires])]
        if failures:
            back[FAILURES] = [(ldap3.MODIFY_REPLACE, [str(failures)])]
        if not conn.modify(dn, back):
            logger.error("planb enrol: could not put the code back (%s)",
                         conn.result.get("description"))
        return "unavailable"
