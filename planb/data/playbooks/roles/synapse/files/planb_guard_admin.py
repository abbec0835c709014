"""planb's Synapse module: the admin token without any password login.

``POST /_synapse/client/planb/admin_token`` with ``{"ts": <unix seconds>, "nonce":
<hex>, "mac": <hex HMAC-SHA256>}``, the MAC made with Synapse's registration shared
secret over ``planb-admin-token\\n<ts>\\n<nonce>``, answers ``{"login_token": ...}``:
a short-lived ``m.login.token`` for planb's admin account, which the caller exchanges
at ``/login`` for an access token (script ``planb-synapse-admin-token``, run by the
synapse role on the host).

Only from the host itself: the TCP peer must be the loopback and the request must
carry no ``X-Forwarded-For`` (nginx sets one on everything it proxies, and refuses
this path anyway). A MAC is good once (its nonce is remembered) and only within
:data:`MAX_SKEW` seconds of its timestamp. Any refusal is a bare 404/403.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import threading
import time
from typing import Any

from synapse.module_api import DirectServeJsonResource

logger = logging.getLogger("planb_ldap_guard")

RESOURCE_PATH = "/_synapse/client/planb/admin_token"
MAX_SKEW = 60
CONTEXT = "planb-admin-token"


def admin_token_mac(secret: bytes, ts: int, nonce: str) -> str:
    """The MAC the resource expects (the host script computes the same)."""
    return hmac.new(secret, f"{CONTEXT}\n{ts}\n{nonce}".encode(), hashlib.sha256).hexdigest()


class AdminTokenResource(DirectServeJsonResource):
    """Login tokens for planb's admin account, for the loopback holder of the secret."""

    def __init__(self, api: Any, secret_file: str, admin_user_id: str) -> None:
        super().__init__()
        self._api, self._secret_file, self._admin = api, secret_file, admin_user_id
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _from_loopback(request: Any) -> bool:
        if request.requestHeaders.hasHeader(b"X-Forwarded-For"):
            return False
        try:
            peer = request.channel.transport.getPeer().host
            return ipaddress.ip_address(peer).is_loopback
        except (AttributeError, ValueError):
            return False

    def _fresh(self, ts: int, nonce: str) -> bool:
        now = time.time()
        with self._lock:
            self._seen = {n: t for n, t in self._seen.items() if now - t < 2 * MAX_SKEW}
            if abs(now - ts) > MAX_SKEW or nonce in self._seen:
                return False
            self._seen[nonce] = now
            return True

    def _secret(self) -> bytes:
        with open(self._secret_file, "rb") as f:
            return f.read().strip()

    async def _async_render_POST(self, request: Any) -> tuple[int, dict[str, Any]]:
        if not self._from_loopback(request):
            return 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}
        body = self._body(request)
        if body is None:
            return 400, {"errcode": "M_BAD_JSON", "error": "ts, nonce and mac expected"}
        ts, nonce, mac = body
        expected = admin_token_mac(self._secret(), ts, nonce)
        if not hmac.compare_digest(expected, mac) or not self._fresh(ts, nonce):
            logger.warning("planb guard: refused an admin token request (bad or replayed MAC)")
            return 403, {"errcode": "M_FORBIDDEN", "error": "Forbidden"}
        token = await self._api.create_login_token(self._admin, duration_in_ms=60_000)
        logger.info("planb guard: login token issued for %s", self._admin)
        return 200, {"login_token": token, "user_id": self._admin}

    @staticmethod
    def _body(request: Any) -> tuple[int, str, str] | None:
        try:
            body = json.loads(request.content.read(4096) or b"{}")
            ts, nonce, mac = int(body["ts"]), str(body["nonce"]), str(body["mac"])
        except (ValueError, KeyError, TypeError):
            return None
        if not 16 <= len(nonce) <= 128 or not nonce.isalnum():
            return None
        return ts, nonce, mac
