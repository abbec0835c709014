"""Listening sockets: what each fallback host must listen on, and on which addresses.

Pure logic. :func:`parse_ss` reads ``ss -Hlntu`` output; :func:`expected_rules` says
what a host of given inventory groups must (and may) listen on; :func:`compare` finds
what is missing, what listens beyond loopback though it must stay on it, and what
listens beyond loopback without being expected. Loopback-only sockets that no rule
names are tolerated (for example the local DNS stub): nothing outside reaches them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Proto = Literal["tcp", "udp"]
Scope = Literal["public", "loopback"]

DIRECTORY = "fallback_directory"
MESSAGING = "fallback_messaging"
PROXY = "fallback_proxy"


@dataclass(frozen=True)
class Listener:
    """One listening socket: protocol, local address (``*`` for any) and port."""

    proto: Proto
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.address in ("*", ""):
            return False
        try:
            return ipaddress.ip_address(self.address).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{address}:{self.port}/{self.proto}"


@dataclass(frozen=True)
class PortRule:
    """A port (or range) a service listens on, and where it may be reached from."""

    service: str
    proto: Proto
    first: int
    scope: Scope
    last: int = 0
    #: False for ranges used only on demand (TURN relay ports).
    required: bool = True

    def matches(self, listener: Listener) -> bool:
        return (listener.proto == self.proto
                and self.first <= listener.port <= max(self.first, self.last))

    def __str__(self) -> str:
        ports = f"{self.first}-{self.last}" if self.last > self.first else str(self.first)
        return f"{ports}/{self.proto} ({self.service}, {self.scope})"


@dataclass(frozen=True)
class PortComparison:
    """What differs between the listeners seen and the rules."""

    missing: tuple[PortRule, ...] = ()
    #: Listeners beyond loopback for a port that must stay on loopback.
    exposed: tuple[tuple[Listener, PortRule], ...] = ()
    #: Listeners beyond loopback that no rule expects.
    extra: tuple[Listener, ...] = ()
    seen: tuple[Listener, ...] = field(default=(), compare=False)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.exposed or self.extra)

    def describe(self) -> str:
        """A short sentence per problem, or the public sockets when all is as expected."""
        if self.ok:
            public = sorted({f"{ln.port}/{ln.proto}" for ln in self.seen if not ln.loopback},
                            key=lambda s: (int(s.split("/")[0]), s))
            return "as expected; public: " + (", ".join(public) or "none")
        parts = [f"not listening: {rule}" for rule in self.missing]
        parts += [f"{listener} must listen on loopback only ({rule.service})"
                  for listener, rule in self.exposed]
        parts += [f"unexpected listener {listener}" for listener in self.extra]
        return "; ".join(parts)


def parse_ss(text: str) -> list[Listener]:
    """Parse ``ss -Hlntu`` lines (``tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*``)."""
    listeners = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[0] not in ("tcp", "udp"):
            continue
        local = fields[4]
        address, _, port = local.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"cannot read the local address {local!r} in: {line.strip()}")
        address = address.strip("[]").split("%", 1)[0]
        if address in ("0.0.0.0", "::", "*"):
            address = "*"
        listeners.append(Listener(fields[0], address, int(port)))  # type: ignore[arg-type]
    return sorted(set(listeners), key=lambda ln: (ln.port, ln.proto, ln.address))


def _int(hostvars: Mapping[str, Any], name: str, default: int) -> int:
    value = hostvars.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def expected_rules(groups: Iterable[str], hostvars: Mapping[str, Any] | None = None,
                   *, standby: bool = False) -> list[PortRule]:
    """The rules for a fallback host in ``groups`` (role defaults, inventory overrides);
    ``standby``: the site has a hot standby, which PostgreSQL streams to from the
    messaging host's private address (pg_hba.conf lets in only the standby's)."""
    hv = hostvars or {}
    groups = set(groups)
    rules = [PortRule("ssh", "tcp", _int(hv, "ansible_port", 22), "public")]
    if DIRECTORY in groups:
        rules += [PortRule("slapd ldaps", "tcp", 636, "public"),
                  PortRule("slapd ldap", "tcp", 389, "loopback")]
    if MESSAGING in groups:
        rules += [PortRule("synapse", "tcp", _int(hv, "synapse_port", 8008), "loopback"),
                  PortRule("postgresql" + (" (replication to the standby)" if standby else ""),
                           "tcp", _int(hv, "postgresql_port", 5432),
                           "public" if standby else "loopback")]
        if PROXY not in groups:
            # Split site: nginx's backend gate on the private address, for the proxy hosts.
            rules.append(PortRule("nginx backend gate", "tcp",
                                  _int(hv, "nginx_backend_port", 8008), "public"))
    if PROXY in groups:
        turn = _int(hv, "coturn_port", 3478)
        rules += [PortRule("nginx https", "tcp", 443, "public"),
                  PortRule("nginx http (redirect)", "tcp", 80, "public"),
                  PortRule("coturn", "tcp", turn, "public"),
                  PortRule("coturn", "udp", turn, "public"),
                  PortRule("coturn relay", "udp", _int(hv, "coturn_min_port", 49152), "public",
                           last=_int(hv, "coturn_max_port", 49999), required=False)]
        if str(hv.get("coturn_tls", "false")).lower() in ("true", "yes", "1"):
            rules.append(PortRule("coturn tls", "tcp", _int(hv, "coturn_tls_port", 5349),
                                  "public"))
    return rules


def compare(listeners: Iterable[Listener], rules: Iterable[PortRule]) -> PortComparison:
    """Check ``listeners`` against ``rules`` (see the module docstring)."""
    seen = tuple(listeners)
    rules = tuple(rules)
    missing = []
    for rule in rules:
        if not rule.required:
            continue
        if not any(rule.matches(ln) and (ln.loopback == (rule.scope == "loopback"))
                   for ln in seen):
            missing.append(rule)
    exposed, extra = [], []
    for listener in seen:
        if listener.loopback:
            continue
        matching = [rule for rule in rules if rule.matches(listener)]
        if any(rule.scope == "public" for rule in matching):
            continue
        if matching:
            exposed.append((listener, matching[0]))
        else:
            extra.append(listener)
    return PortComparison(tuple(missing), tuple(exposed), tuple(extra), seen)
