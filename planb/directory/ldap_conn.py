"""Opening verified LDAP connections (LDAPS or StartTLS) with ldap3, for both directories.

One place decides how planb talks LDAP: TLS always (``ldaps://``, or ``ldap://``
upgraded with StartTLS; plain text is refused), the certificate checked against a
CA file, ``get_info=NONE`` (reading the schema made each connection 8x slower)
and errors turned into :class:`~planb.errors.PlanbError` messages that name the
server and never the password.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ldap3 import NONE, SIMPLE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException

from planb.errors import PlanbError, UsageError
from planb.schema import Secret

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10
RECEIVE_TIMEOUT = 60


class DirectoryUnreachable(PlanbError):
    """A directory could not be reached or refused planb's bind; nothing was changed."""


@dataclass(frozen=True)
class LdapEndpoint:
    """Where and as whom to bind. ``password`` is a Secret (masked in reprs)."""

    url: str
    bind_dn: str
    password: Secret = field(repr=False)
    ca_file: Path | None = None
    #: What to call this directory in messages ("the primary directory", ...).
    label: str = "the directory"

    def server(self) -> Server:
        """An ldap3 Server for :attr:`url` that verifies the certificate."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise UsageError(f"{self.label}: {self.url!r} is not an ldap:// or ldaps:// URL")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise UsageError(f"{self.label}: CA file {self.ca_file} not found",
                             hint="deploy first (the lab CA is made by 'planb deploy'), "
                                  "or fix ca_file in planb.yml")
        tls = Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT,
                  ca_certs_file=str(self.ca_file) if self.ca_file else None)
        use_ssl = parts.scheme == "ldaps"
        port = parts.port or (636 if use_ssl else 389)
        return Server(parts.hostname, port=port, use_ssl=use_ssl, tls=tls, get_info=NONE,
                      connect_timeout=CONNECT_TIMEOUT)

    def connect(self, *, read_only: bool = False, server: Server | None = None) -> Connection:
        """A bound connection (StartTLS first for ldap://); DirectoryUnreachable if not."""
        server = server or self.server()
        conn = Connection(server, user=self.bind_dn, password=str(self.password),
                          authentication=SIMPLE, client_strategy=SYNC, read_only=read_only,
                          receive_timeout=RECEIVE_TIMEOUT, raise_exceptions=False,
                          auto_bind=False)
        try:
            if not conn.open(read_server_info=False) and conn.closed:
                raise DirectoryUnreachable(f"cannot reach {self.label} at {self.url}")
            if not server.ssl and not conn.start_tls(read_server_info=False):
                conn.unbind()
                raise DirectoryUnreachable(
                    f"{self.label} at {self.url} refused StartTLS: {conn.result['description']}",
                    hint="use ldaps:// or enable StartTLS on the server; planb never sends a "
                         "password over plain LDAP")
            if not conn.bind(read_server_info=False):
                description = conn.result.get("description", "bind failed")
                conn.unbind()
                raise DirectoryUnreachable(
                    f"{self.label} at {self.url} refused the bind as {self.bind_dn}: "
                    f"{description}; nothing was changed",
                    hint="check the bind DN and its password (file)")
        except LDAPException as exc:
            raise DirectoryUnreachable(
                f"cannot reach {self.label} at {self.url}: {_reason(exc)}; nothing was changed",
                hint="check that it is up, the URL and port, and that its certificate is "
                     "signed by the configured CA") from None
        log.debug("bound to %s as %s", self.url, self.bind_dn)
        return conn


def _reason(exc: LDAPException) -> str:
    """ldap3's message without its nested reprs (they can be very long)."""
    text = str(exc) or type(exc).__name__
    return text.split(" - ")[0][:300] if len(text) > 300 else text


def read_secret_file(path: Path, what: str) -> Secret:
    """The first line of ``path`` as a Secret; UsageError naming the file (never its content)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what}: password file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what}: cannot read password file {path}: "
                         f"{type(exc).__name__}") from None
    value = text.strip("\r\n").split("\n", 1)[0].rstrip("\r")
    if not value:
        raise UsageError(f"{what}: password file {path} is empty")
    return Secret(value)
