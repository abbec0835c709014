"""Controller-side connections to the fallback: TLS with the site's CA, HTTPS by name.

The controller may not resolve the public host name to the fallback (the lab's
names exist only inside the lab), so every connection goes to the host's inventory
address while TLS uses the public name for SNI and certificate verification, and
HTTP sends it as ``Host``: exactly what a client that resolves the name sees.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from planb.config import SiteConfig

TIMEOUT = 10.0


def ca_file(site: SiteConfig) -> Path | None:
    """The planb CA (``<state_dir>/pki/ca.crt``) when it exists, else None (system trust)."""
    path = site.state_dir / "pki" / "ca.crt"
    return path if path.is_file() else None


def tls_context(site: SiteConfig) -> ssl.SSLContext:
    """A verifying client context trusting the planb CA (or the system's store)."""
    ca = ca_file(site)
    return ssl.create_default_context(cafile=str(ca) if ca else None)


@dataclass(frozen=True)
class PeerCertificate:
    """What a verified TLS handshake showed."""

    subject: str
    names: tuple[str, ...]
    not_after: datetime
    version: str

    def days_left(self, now: datetime | None = None) -> float:
        return (self.not_after - (now or datetime.now(UTC))).total_seconds() / 86400


def tls_handshake(site: SiteConfig, address: str, port: int, name: str,
                  timeout: float = TIMEOUT) -> PeerCertificate:
    """Connect to ``address:port``, verify the certificate for ``name`` (DNS name or IP).

    Raises :class:`ssl.SSLCertVerificationError` when it is not valid for ``name`` or
    not signed by the trusted CA, :class:`OSError` when nothing answers.
    """
    context = tls_context(site)
    with socket.create_connection((address, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=name) as tls:
        cert: dict[str, Any] = tls.getpeercert() or {}
        version = tls.version() or "?"
    subject = ", ".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)
    names = tuple(str(v) for _, v in cert.get("subjectAltName", ()))
    not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), UTC)
    return PeerCertificate(subject, names, not_after, version)


@dataclass(frozen=True)
class HttpAnswer:
    """An HTTP response: status, parsed JSON body (or None) and the first bytes of text."""

    status: int
    body: Any
    text: str
    seconds: float
    #: The whole text read (``text`` is its first 200 characters).
    whole: str = field(default="", repr=False)

    @classmethod
    def read(cls, status: int, raw: bytes, start: float) -> HttpAnswer:
        """The answer to a request sent at ``start`` (monotonic): JSON parsed if it is."""
        text = raw.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return cls(status, parsed, text[:200], time.monotonic() - start, text)

    @property
    def errcode(self) -> str | None:
        return self.body.get("errcode") if isinstance(self.body, dict) else None


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a fixed address, with SNI, verification and Host for another name."""

    def __init__(self, address: str, name: str, port: int, context: ssl.SSLContext,
                 timeout: float) -> None:
        super().__init__(name, port, timeout=timeout, context=context)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def https_request(site: SiteConfig, address: str, method: str, path: str,
                  body: dict[str, Any] | None = None, *, form: dict[str, str] | None = None,
                  name: str | None = None, port: int = 443,
                  timeout: float = TIMEOUT, token: str | None = None) -> HttpAnswer:
    """``method path`` on ``https://<name><path>`` reached at ``address``, with ``body``
    as JSON or ``form`` as an HTML form (application/x-www-form-urlencoded); ``token``:
    a Matrix access token, sent as ``Authorization: Bearer`` (never in the URL, which
    nginx logs)."""
    name = name or site.matrix.public_hostname
    conn = _PinnedHTTPS(address, name, port, tls_context(site), timeout)
    start = time.monotonic()
    try:
        headers: dict[str, str] = {}
        payload: bytes | None = None
        if body is not None:
            payload, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
        elif form is not None:
            payload = urlencode(form).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read(65536)
    finally:
        conn.close()
    return HttpAnswer.read(response.status, raw, start)
