"""planb: matrix-synapse-ldap3 with logins that cannot inject into its LDAP filter.

matrix-synapse-ldap3 builds ``(&(uid=<login>)...)`` and ``(mail=<address>)`` without
RFC 4515 escaping, so a login such as ``*`` or ``a*`` or ``x)(uid=*`` would be read
as a pattern. This wrapper refuses, before any LDAP request:

- a login that is not made only of Matrix localpart characters ``[a-z0-9._=/+-]``
  (ASCII upper case accepted; ``@localpart:server`` is accepted), so never ``* ( ) \\``
  or NUL, and never a non-ASCII letter that case folding turns into an ASCII one
  (``İ ı ſ`` and the Kelvin sign ``K`` match ``i s k`` under a Unicode
  case-insensitive match, and ``"İ".lower()`` is ``i`` plus a combining dot): the
  login that reaches the directory, or a reserved name, is the one typed;
- an email login holding ``* ( ) \\`` or NUL;
- a reserved localpart (planb's admin account): it must never be reachable through
  the directory, which may be the compromised system.

Refused logins fall through to Synapse's other checks (the local password database),
so a reserved account still logs in with its local password.

It also bounds how long a login waits for the directory: upstream builds an ldap3
ServerPool that retries forever, so with slapd down every login hung until the proxy
gave up (10 min). Here each server gets a connect timeout and the pool is tried
``planb_pool_cycles`` times, then the login fails (and the directory's recovery is
seen at the next login).

Config: the module's usual keys plus ``planb_reserved_localparts`` (list),
``planb_connect_timeout`` (seconds, default 5) and ``planb_pool_cycles`` (default 1).
"""

import logging
import re
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Optional

import ldap3
from ldap_auth_provider import LdapAuthProviderModule

logger = logging.getLogger("planb_ldap_guard")

#: Logged (at WARNING, so any log level keeps it) for every refused login, so
#: 'planb verify' can prove the guard stopped a login even while Synapse's standby
#: switch refuses every ordinary login anyway.
REFUSED = "planb guard refused login"

_SAFE_LOCALPART = re.compile(r"[A-Za-z0-9._=/+-]+", re.ASCII)
_FILTER_SPECIALS = frozenset("*()\\\x00")


def _safe_localpart(localpart: str) -> bool:
    """Only ASCII Matrix localpart characters (no Unicode case folding anywhere)."""
    return localpart.isascii() and _SAFE_LOCALPART.fullmatch(localpart) is not None


def _localpart(username: str) -> str:
    """The localpart of ``@localpart:server`` or of a bare login."""
    if username.startswith("@") and ":" in username:
        return username.split(":", 1)[0][1:]
    return username


@dataclass(frozen=True)
class _PlanbConfig:
    ldap: Any
    reserved: FrozenSet[str]
    connect_timeout: float
    pool_cycles: int


class PlanbLdapAuthProvider(LdapAuthProviderModule):
    """LdapAuthProviderModule that only passes filter-safe, non-reserved logins."""

    def __init__(self, config: _PlanbConfig, api: Any) -> None:
        self._planb = config
        # ldap3 sleeps this long after each failed pool cycle (default 10 s).
        ldap3.set_config_parameter("POOLING_LOOP_TIMEOUT", 1)
        super().__init__(config.ldap, api)

    @staticmethod
    def parse_config(config: Dict[str, Any]) -> _PlanbConfig:
        config = dict(config)
        reserved = config.pop("planb_reserved_localparts", None) or []
        connect_timeout = float(config.pop("planb_connect_timeout", 5))
        pool_cycles = int(config.pop("planb_pool_cycles", 1))
        if connect_timeout <= 0 or pool_cycles < 1:
            raise ValueError("planb_connect_timeout must be > 0 and planb_pool_cycles >= 1")
        return _PlanbConfig(
            ldap=LdapAuthProviderModule.parse_config(config),
            reserved=frozenset(str(name).lower() for name in reserved),
            connect_timeout=connect_timeout,
            pool_cycles=pool_cycles,
        )

    def _get_server(self, get_info: Optional[str] = None) -> ldap3.ServerPool:
        servers = [
            ldap3.Server(uri, get_info=get_info, tls=self.ldap_tls,
                         connect_timeout=self._planb.connect_timeout)
            for uri in self.ldap_uris
        ]
        return ldap3.ServerPool(servers, active=self._planb.pool_cycles, exhaust=False)

    async def check_auth(
        self, username: str, login_type: str, login_dict: Dict[str, Any]
    ) -> Optional[str]:
        localpart = _localpart(username)
        if not _safe_localpart(localpart):
            logger.warning("%s %r: not made of Matrix localpart characters", REFUSED,
                           username[:80])
            return None
        if localpart.lower() in self._planb.reserved:
            return None
        return await super().check_auth(username, login_type, login_dict)

    async def check_3pid_auth(
        self, medium: str, address: str, password: str
    ) -> Optional[str]:
        if _FILTER_SPECIALS.intersection(address):
            logger.warning("%s %r: LDAP filter characters in an address", REFUSED,
                           address[:80])
            return None
        result = await super().check_3pid_auth(medium, address, password)
        if result is not None and _localpart(result).lower() in self._planb.reserved:
            return None
        return result
