"""planb's Synapse module: who may log in, into which account, and standby.

Loaded by Synapse (``modules:`` in homeserver.yaml, class :class:`PlanbGuard`); it
replaces matrix-synapse-ldap3, which turned the typed login into ``@<login>`` and
created that account when missing. Here a password login (``m.login.password``):

1. is refused before anything else unless the typed login is made only of ASCII
   Matrix localpart characters (``@localpart:server`` accepted), is not a reserved
   localpart (planb's admin account) and, for an email login, holds no LDAP filter
   syntax (no Unicode letter that case folding turns into an ASCII one ever reaches
   the directory: ``İ ı ſ`` and the Kelvin sign ``K``);
2. is refused in standby (the mode file, read at each login: no restart to switch)
   unless it is one of the standby-exempt probe accounts, so right and wrong
   passwords get the very same answer and nothing reaches the directory;
3. is refused while the client address's bucket of failed logins is empty;
4. then, as Synapse's service account, finds exactly one ``ou=people`` entry (RFC 4515
   escaped filter), refuses a locked one, binds as that entry with the password, and
   opens ``@<planbLocalpart>:server`` (probe entries have none: ``@<uid>``) only if
   that account exists, is active and is an ordinary (not admin) account. It never
   creates an account: planb's sync does.

Every refusal answers like a wrong password (Synapse: 403 M_FORBIDDEN "Invalid
username or password") and logs one WARNING line starting with :data:`REFUSED`
(``planb verify`` counts them), never the password.

In standby the spam-checker callbacks also refuse, for everyone but planb's admin
and the exempt probes, to send events, create rooms, invite and join (what Synapse's
``hs_disabled`` did, without its restart); planb's admin API work goes on. Active or
not, a join to a department room needs the directory's word
(:mod:`planb_guard_rooms`).
"""

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, Optional, Tuple, Union

from ldap3.utils.conv import escape_filter_chars
from planb_guard_directory import Directory, DirectoryConfig, DirectoryUnavailable, lock_refuses
from planb_guard_rooms import DepartmentRooms

try:  # inside Synapse
    from synapse.api.errors import Codes
    from synapse.logging.context import current_context

    FORBIDDEN: Any = Codes.FORBIDDEN
except ImportError:  # planb's unit tests, outside Synapse
    FORBIDDEN = "M_FORBIDDEN"
    current_context = None  # type: ignore[assignment]

logger = logging.getLogger("planb_ldap_guard")

#: Logged (at WARNING, so any log level keeps it) for every refused login.
REFUSED = "planb guard refused login"
NOT_SPAM = "NOT_SPAM"
#: A refused department room join (the reason is in the log, not in the answer).
DEPARTMENT_ONLY = "This room is for the members of its department (fallback directory)."
PASSWORD = "m.login.password"

_SAFE_LOCALPART = re.compile(r"[A-Za-z0-9._=/+-]+", re.ASCII)
_SAFE_EMAIL = re.compile(r"[A-Za-z0-9._%+=/-]+@[A-Za-z0-9.-]+", re.ASCII)


def _safe_localpart(localpart: str) -> bool:
    """Only ASCII Matrix localpart characters (no Unicode case folding anywhere)."""
    return localpart.isascii() and _SAFE_LOCALPART.fullmatch(localpart) is not None


def split_login(username: str) -> Tuple[str, Optional[str]]:
    """(localpart, server) of ``@localpart:server``; (login, None) for a bare login."""
    if username.startswith("@") and ":" in username:
        localpart, server = username[1:].split(":", 1)
        return localpart, server
    return username, None


@dataclass(frozen=True)
class GuardConfig:
    """The module's configuration (see :meth:`PlanbGuard.parse_config`)."""

    directory: DirectoryConfig
    reserved: FrozenSet[str]
    probes: FrozenSet[str]
    standby_exempt: FrozenSet[str]
    mode_file: str
    lockout_seconds: float
    per_second: float
    burst_count: float
    standby_message: str
    shared_secret_file: str
    admin_localpart: str
    enrol: Any = None  # planb_enrol.EnrolSettings: the enrolment page's form handler


class ModeFile:
    """planb's mode file (``active``, anything else is standby), re-read when it changes."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._seen: Optional[Tuple[int, int, int]] = None
        self._active = False
        self._lock = threading.Lock()

    def active(self) -> bool:
        """True only when the file exists and says ``active``; a missing file is standby."""
        try:
            st = os.stat(self._path)
        except OSError:
            return False
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            if key != self._seen:
                try:
                    with open(self._path, encoding="utf-8") as f:
                        self._active = f.read().strip() == "active"
                except OSError:
                    self._active = False
                self._seen = key
            return self._active


class FailureBuckets:
    """A token bucket of failed logins per client address (one token per failure)."""

    MAX_TRACKED = 100_000

    def __init__(self, per_second: float, burst_count: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._burst, self._clock = per_second, burst_count, clock
        self._buckets: Dict[str, Tuple[float, float]] = {}

    def _level(self, address: str, now: float) -> float:
        tokens, since = self._buckets.get(address, (self._burst, now))
        return min(self._burst, tokens + (now - since) * self._rate)

    def allows(self, address: str) -> bool:
        """True while ``address`` has at least one failed login left."""
        return self._level(address, self._clock()) >= 1

    def failed(self, address: str) -> None:
        """Take one token for a failed login from ``address``."""
        now = self._clock()
        if len(self._buckets) >= self.MAX_TRACKED:  # forget the addresses refilled
            self._buckets = {a: v for a, v in self._buckets.items()
                             if self._level(a, now) < self._burst}
        self._buckets[address] = (max(self._level(address, now) - 1, 0.0), now)


class _Refused(Exception):
    """A refused login: ``reason`` is logged, ``failed`` charges the address's bucket."""

    def __init__(self, reason: str, failed: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.failed = reason, failed


def _request() -> Any:
    """Synapse's view of the HTTP request being served (None outside one)."""
    if current_context is None:
        return None
    return getattr(current_context(), "request", None)


class PlanbGuard:
    """The Synapse module: password logins, standby spam checks, the admin token resource."""

    def __init__(self, config: GuardConfig, api: Any) -> None:
        self._config, self._api = config, api
        self._server = api.server_name
        self._mode = ModeFile(config.mode_file)
        self._failures = FailureBuckets(config.per_second, config.burst_count)
        self._directory = Directory(config.directory)
        self._exempt_users = frozenset(
            f"@{lp}:{self._server}" for lp in config.reserved | config.standby_exempt)
        self._rooms = DepartmentRooms(api, lambda: self._directory,
                                      f"@{config.admin_localpart}:{self._server}")
        api.register_password_auth_provider_callbacks(
            auth_checkers={(PASSWORD, ("password",)): self.check_auth},
            check_3pid_auth=self.check_3pid_auth)
        api.register_spam_checker_callbacks(
            check_event_for_spam=self.check_event_for_spam,
            user_may_create_room=self.user_may_create_room,
            user_may_invite=self.user_may_invite,
            user_may_join_room=self.user_may_join_room)
        if config.shared_secret_file:
            from planb_guard_admin import RESOURCE_PATH, AdminTokenResource

            api.register_web_resource(RESOURCE_PATH, AdminTokenResource(
                api, config.shared_secret_file, f"@{config.admin_localpart}:{self._server}"))
        # The welcome page's live state (public: mode and the site's public message).
        from planb_guard_status import register as register_status

        register_status(api, config.mode_file,
                        os.path.join(os.path.dirname(config.mode_file), "public_message"))
        if config.enrol is not None:  # the enrolment page's form (works in standby too)
            from planb_enrol import register as register_enrol

            register_enrol(api, config.enrol)

    @staticmethod
    def parse_config(config: Dict[str, Any]) -> GuardConfig:
        """Check and read the module's configuration (homeserver.yaml ``modules:``)."""
        uris = config.get("uri")
        uris = [uris] if isinstance(uris, str) else list(uris or [])
        with open(config["bind_password_file"], encoding="utf-8") as f:
            bind_password = f.read().strip()
        limiter = config.get("planb_failed_per_address") or {}
        per_second = float(limiter.get("per_second", 0.2))
        burst = float(limiter.get("burst_count", 500))
        timeout = float(config.get("planb_connect_timeout", 5))
        if not uris or timeout <= 0 or per_second < 0 or burst < 1:
            raise ValueError("planb guard: uri needed, planb_connect_timeout > 0, "
                             "planb_failed_per_address burst_count >= 1")
        directory = DirectoryConfig(uris=uris, base=str(config["base"]),
                                    bind_dn=str(config["bind_dn"]),
                                    bind_password=bind_password,
                                    ca_file=config.get("ca_file"), connect_timeout=timeout)
        from planb_enrol import parse_enrol_config

        lower = lambda key: frozenset(str(n).lower() for n in config.get(key) or [])  # noqa: E731
        return GuardConfig(
            directory=directory,
            reserved=lower("planb_reserved_localparts"),
            probes=lower("planb_probe_localparts"),
            # Exact spelling: only the login planb's own tools type is exempt.
            standby_exempt=frozenset(str(n) for n in
                                     config.get("planb_standby_exempt_localparts") or []),
            mode_file=str(config.get("planb_mode_file", "/etc/planb/mode")),
            lockout_seconds=float(config.get("planb_lockout_seconds", 900)),
            per_second=per_second, burst_count=burst,
            standby_message=str(config.get("planb_standby_message")
                                or "This server is in standby."),
            shared_secret_file=str(config.get("planb_shared_secret_file") or ""),
            admin_localpart=str(config.get("planb_admin_localpart") or "planb-admin"),
            enrol=parse_enrol_config(config.get("planb_enrol"), directory),
        )

    # --- logins ------------------------------------------------------------------

    async def check_auth(self, username: str, login_type: str,
                         login_dict: Dict[str, Any]) -> Optional[Tuple[str, None]]:
        """Synapse's auth checker for ``m.login.password``: (user_id, None) or None."""
        password = login_dict.get("password")
        try:
            localpart, server = split_login(username)
            if not _safe_localpart(localpart) or (server is not None and server != self._server):
                raise _Refused("not made of Matrix localpart characters of this server")
            if localpart.lower() in self._config.reserved:
                raise _Refused("reserved localpart")
            self._admit(exempt=localpart in self._config.standby_exempt)
            value = escape_filter_chars(localpart)
            # @lp:server names a Matrix account: the entry holding it (or a probe's uid).
            ldap_filter = (f"(|(planbLocalpart={value})(&(uid={value})(!(planbLocalpart=*))))"
                           if server is not None else f"(uid={value})")
            user_id = await self._directory_login(ldap_filter, password)
        except _Refused as refused:
            self._refuse(username, refused)
            return None
        logger.info("planb guard: %r logged in as %s", username[:80], user_id)
        return user_id, None

    async def check_3pid_auth(self, medium: str, address: str,
                              password: str) -> Optional[Tuple[str, None]]:
        """Email logins: the one entry holding that mail, then as :meth:`check_auth`."""
        try:
            if medium != "email" or not _SAFE_EMAIL.fullmatch(address):
                raise _Refused("not a plain ASCII email address")
            self._admit(exempt=False)
            user_id = await self._directory_login(
                f"(mail={escape_filter_chars(address)})", password)
        except _Refused as refused:
            self._refuse(address, refused)
            return None
        logger.info("planb guard: %r logged in as %s", address[:80], user_id)
        return user_id, None

    def _refuse(self, login: str, refused: _Refused) -> None:
        address = self._client_address()
        if refused.failed:
            self._failures.failed(address)
        logger.warning("%s %r from %s: %s", REFUSED, login[:80], address, refused.reason)

    def _admit(self, exempt: bool) -> None:
        """Standby and the per-address failure bucket, both before any LDAP request."""
        if not exempt and not self._mode.active():
            raise _Refused("standby")
        if not self._failures.allows(self._client_address()):
            raise _Refused("too many failed logins from this address, wait")

    def _client_address(self) -> str:
        request = _request()
        return str(getattr(request, "ip_address", None) or "unknown")

    async def _directory_login(self, ldap_filter: str, password: Any) -> str:
        """Search, lock check, bind as the entry, account check: the user id to open."""
        if not isinstance(password, str) or not password:
            raise _Refused("empty password", failed=True)
        try:
            entries = await self._api.defer_to_thread(self._directory.search, ldap_filter)
        except DirectoryUnavailable:
            raise _Refused("directory unavailable") from None
        except Exception as exc:  # noqa: BLE001 - fail closed, and say so
            raise _Refused(f"directory search failed: {type(exc).__name__}: {exc}") from None
        if len(entries) != 1:
            raise _Refused("no entry" if not entries else "several entries", failed=True)
        entry = entries[0]
        why = lock_refuses(entry.locked_time, self._config.lockout_seconds)
        if why:
            raise _Refused(why, failed=True)
        if entry.localpart:
            localpart = entry.localpart.lower()
        elif not entry.is_agent and entry.uid.lower() in self._config.probes:
            localpart = entry.uid.lower()
        else:
            raise _Refused("entry without planbLocalpart", failed=True)
        try:
            bound = await self._api.defer_to_thread(self._directory.bind_as, entry.dn, password)
        except Exception as exc:  # noqa: BLE001 - fail closed (never logs the password)
            raise _Refused(f"agent bind failed: {type(exc).__name__}") from None
        if bound is None:
            raise _Refused("directory unavailable")
        if not bound:
            raise _Refused("wrong password", failed=True)
        if not _safe_localpart(localpart) or localpart in self._config.reserved:
            raise _Refused("the entry's localpart is not an agent's")
        user_id = f"@{localpart}:{self._server}"
        info = await self._api.get_userinfo_by_id(user_id)
        if info is None:
            raise _Refused(f"no Matrix account {user_id} (never created here)")
        if info.is_deactivated or getattr(info, "locked", False):
            raise _Refused(f"{user_id} is deactivated")
        if info.is_admin or info.is_guest or info.appservice_id is not None:
            raise _Refused(f"{user_id} is not an agent's account")
        if info.user_type is not None and localpart not in self._config.probes:
            raise _Refused(f"{user_id} is a {info.user_type} account")
        return user_id

    # --- standby: what hs_disabled used to refuse ------------------------------------

    def _standby_refuses(self, user_id: str) -> bool:
        """True in standby when the request's own user is not planb's admin or a probe.

        The decision is on whoever authenticated the HTTP request: the admin API
        force-joining an agent (planb's sync) is planb's admin at work. Work with no
        request behind it (Synapse's own background tasks) is never refused.
        """
        if self._mode.active():
            return False
        request = _request()
        if request is None:
            return False
        entity = getattr(request, "authenticated_entity", None) or user_id
        refused = entity not in self._exempt_users
        if refused:
            logger.info("planb guard: standby: refused an action of %s", entity)
        return refused

    def _answer(self, user_id: str) -> Union[str, Tuple[Any, Dict[str, str]]]:
        if self._standby_refuses(user_id):
            return FORBIDDEN, {"error": self._config.standby_message}
        return NOT_SPAM

    async def check_event_for_spam(self, event: Any) -> Union[str, Tuple[Any, Dict[str, str]]]:
        """Standby: no event from agents' own requests."""
        return self._answer(str(event.sender))

    async def user_may_create_room(self, user_id: str,
                                   room_config: Optional[Dict[str, Any]] = None
                                   ) -> Union[str, Tuple[Any, Dict[str, str]]]:
        return self._answer(user_id)

    async def user_may_invite(self, inviter: str, invitee: str,
                              room_id: str) -> Union[str, Tuple[Any, Dict[str, str]]]:
        return self._answer(inviter)

    async def user_may_join_room(self, user_id: str, room_id: str,
                                 is_invited: bool) -> Union[str, Tuple[Any, Dict[str, str]]]:
        """Standby first; then a department room's members only (the directory says)."""
        standby = self._answer(user_id)
        if standby != NOT_SPAM:
            return standby
        request = _request()
        entity = None if request is None else \
            (getattr(request, "authenticated_entity", None) or user_id)
        if await self._rooms.refusal(user_id, room_id, is_invited, entity):
            return FORBIDDEN, {"error": DEPARTMENT_ONLY}
        return NOT_SPAM
