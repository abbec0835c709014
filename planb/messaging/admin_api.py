"""A small client for Synapse's admin API (and the few client-API calls planb-admin makes).

Thread-safe: each thread keeps its own keep-alive HTTP connection, so a thread pool
overlaps round trips (the issue measured ~50 user creations/s with 8 in flight).
Every call retries with exponential backoff on HTTP 429 (honouring
``retry_after_ms``), on 5xx and on a dropped connection; any other error raises
:class:`MatrixApiError` naming the call and the user or room. The access token is
only ever put in the ``Authorization`` header: never logged, never in an error.

The base URL is ``http+unix://<percent-encoded socket path>`` (the SSH tunnel's
private Unix socket, :mod:`planb.messaging.tunnel`) or a plain local ``http://``.
"""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planb.errors import PlanbError
from planb.schema import Secret

log = logging.getLogger(__name__)

Json = dict[str, Any]
#: Page size when listing users and rooms.
PAGE = 1000


class MatrixApiError(PlanbError):
    """A Synapse API call that failed for good: what, on whom, HTTP status and errcode."""

    def __init__(self, message: str, *, status: int = 0, errcode: str = "") -> None:
        super().__init__(message)
        self.status, self.errcode = status, errcode


@dataclass(frozen=True)
class Retry:
    """How hard to retry: attempts in all, first delay, cap on one delay (seconds)."""

    attempts: int = 6
    first: float = 0.25
    cap: float = 8.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(self.cap, delay * 2)


@dataclass(frozen=True)
class MatrixUserInfo:
    """One user as the admin API lists it."""

    user_id: str
    display_name: str
    deactivated: bool
    admin: bool
    user_type: str | None


UNIX_SCHEME = "http+unix"


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix stream socket (``Host: localhost``)."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def unix_url(socket_path: Path | str) -> str:
    """The base URL that reaches an HTTP server listening on ``socket_path``."""
    return f"{UNIX_SCHEME}://{urllib.parse.quote(str(socket_path), safe='')}"


def unix_connection(socket_path: Path | str, timeout: float) -> UnixHTTPConnection:
    """A (not yet connected) HTTP connection to ``socket_path``."""
    return UnixHTTPConnection(str(socket_path), timeout)


def quote(text: str) -> str:
    """Percent-encode one path segment (user IDs, room IDs, aliases)."""
    return urllib.parse.quote(text, safe="")


class AdminApi:
    """Calls to ``base_url`` (the tunnel's end) as planb-admin."""

    def __init__(self, base_url: str, token: Secret, server_name: str, *,
                 retry: Retry | None = None, timeout: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.socket_path: str | None = None
        if parsed.scheme == UNIX_SCHEME and parsed.netloc:
            self.socket_path = urllib.parse.unquote(parsed.netloc)
            self.host, self.port = "localhost", 0
        elif parsed.scheme == "http" and parsed.hostname:
            self.host, self.port = parsed.hostname, parsed.port or 80
        else:
            raise ValueError("the admin API is reached over the tunnel's Unix socket "
                             f"(http+unix://) or a local http URL, not {base_url!r}")
        self._token, self.server_name = token, server_name
        self.retry, self.timeout, self._sleep = retry or Retry(), timeout, sleep
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[http.client.HTTPConnection] = []

    # --- plumbing -------------------------------------------------------------------

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def localpart(self, user_id: str) -> str | None:
        """The localpart of a user of this server, None for anyone else."""
        suffix = f":{self.server_name}"
        if user_id.startswith("@") and user_id.endswith(suffix):
            return user_id[1:-len(suffix)]
        return None

    def new_connection(self) -> http.client.HTTPConnection:
        """A fresh connection to the API (the tunnel's socket, or host and port)."""
        if self.socket_path:
            return unix_connection(self.socket_path, self.timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.new_connection()
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()

    def _once(self, method: str, path: str, body: Json | None) -> tuple[int, Json, float | None]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn = self._conn()
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        header = response.getheader("Retry-After")
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {"error": raw[:200].decode("utf-8", "replace")}
        if not isinstance(answer, dict):
            answer = {"value": answer}
        retry_after = float(header) if header and header.isdigit() else None
        return response.status, answer, retry_after

    def request(self, method: str, path: str, body: Json | None = None, *,
                what: str, ok: tuple[int, ...] = (200, 201)) -> Json:
        """One call; retried on 429, 5xx and dropped connections. ``what`` names it
        in errors ("create @jdupont:planb.lab")."""
        delays = self.retry.delays()
        while True:
            try:
                status, answer, retry_after = self._once(method, path, body)
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                reason = f"connection to Synapse failed ({type(exc).__name__})"
                status, answer, retry_after = 0, {"error": reason}, None
            if status in ok:
                return answer
            if status != 429 and status != 0 and status < 500:
                raise self._error(what, status, answer)
            delay = next(delays, None)
            if delay is None:
                raise self._error(what, status, answer, retried=True)
            if status == 429:
                wait_ms = answer.get("retry_after_ms")
                if isinstance(wait_ms, int | float) and wait_ms >= 0:
                    delay = max(delay, wait_ms / 1000)
                elif retry_after is not None:
                    delay = max(delay, retry_after)
            log.debug("%s: HTTP %s, retrying in %.2f s", what, status or "-", delay)
            self._sleep(min(delay, 60.0))

    @staticmethod
    def _error(what: str, status: int, answer: Json, *, retried: bool = False
               ) -> MatrixApiError:
        errcode = str(answer.get("errcode") or "")
        detail = str(answer.get("error") or "").strip()
        where = f"HTTP {status}" if status else "no answer"
        text = f"{what}: {where}" + (f" {errcode}" if errcode else "") + \
            (f": {detail}" if detail else "") + (" (gave up after retries)" if retried else "")
        return MatrixApiError(text, status=status, errcode=errcode)

    # --- users ----------------------------------------------------------------------

    def create_user(self, localpart: str, display_name: str) -> None:
        """Create (or update) a user without a password: agents log in through LDAP."""
        uid = self.user_id(localpart)
        self.request("PUT", f"/_synapse/admin/v2/users/{quote(uid)}",
                     {"displayname": display_name}, what=f"create {uid}")

    def set_display_name(self, localpart: str, display_name: str) -> None:
        uid = self.user_id(localpart)
        self.request("PUT", f"/_synapse/admin/v2/users/{quote(uid)}",
                     {"displayname": display_name}, what=f"display name of {uid}")

    def deactivate(self, localpart: str) -> None:
        """Deactivate without erasing: the user's messages stay readable by others."""
        uid = self.user_id(localpart)
        self.request("POST", f"/_synapse/admin/v1/deactivate/{quote(uid)}", {"erase": False},
                     what=f"deactivate {uid}")

    def reactivate(self, localpart: str) -> None:
        """Reactivate, without a password: with local passwords off (planb's Synapse)
        Synapse refuses any password ("Password change disabled"). A server that still
        has local passwords insists on one ("Must provide a password"): then a random
        one nobody ever sees is set; agents keep logging in with their directory one."""
        uid = self.user_id(localpart)
        path, what = f"/_synapse/admin/v2/users/{quote(uid)}", f"reactivate {uid}"
        try:
            self.request("PUT", path, {"deactivated": False}, what=what)
        except MatrixApiError as exc:
            if exc.status != 400 or "password" not in exc.message.lower():
                raise
            self.request("PUT", path, {"deactivated": False, "logout_devices": False,
                                       "password": secrets.token_urlsafe(32)}, what=what)

    def users(self, page_size: int = PAGE) -> Iterator[MatrixUserInfo]:
        """Every local user, deactivated ones included (paged)."""
        start: str | None = "0"
        while start is not None:
            query = urllib.parse.urlencode({"from": start, "limit": page_size, "guests": "false",
                                            "deactivated": "true"})
            page = self.request("GET", f"/_synapse/admin/v2/users?{query}", what="list users")
            for user in page.get("users", []):
                yield MatrixUserInfo(
                    user_id=str(user["name"]), display_name=str(user.get("displayname") or ""),
                    deactivated=bool(user.get("deactivated")), admin=bool(user.get("admin")),
                    user_type=user.get("user_type"))
            token = page.get("next_token")
            start = str(token) if token not in (None, "") else None

    # --- rooms ----------------------------------------------------------------------

    def alias_id(self, alias_localpart: str) -> str:
        return f"#{alias_localpart}:{self.server_name}"

    def resolve_alias(self, alias_localpart: str) -> str | None:
        """The room ID an alias points to, None if it points nowhere."""
        alias = self.alias_id(alias_localpart)
        answer = self.request("GET", f"/_matrix/client/v3/directory/room/{quote(alias)}",
                              what=f"resolve {alias}", ok=(200, 404))
        room = answer.get("room_id")
        return str(room) if room else None

    def rooms(self, page_size: int = PAGE) -> Iterator[Json]:
        """Every room on the server as the admin API lists it (paged)."""
        start: int | None = 0
        while start is not None:
            query = urllib.parse.urlencode({"from": start, "limit": page_size})
            page = self.request("GET", f"/_synapse/admin/v1/rooms?{query}", what="list rooms")
            yield from page.get("rooms", [])
            nxt = page.get("next_batch")
            start = int(nxt) if nxt not in (None, "") else None

    def room(self, room_id: str) -> Json:
        """The admin API's details of one room (join_rules, canonical_alias...)."""
        return self.request("GET", f"/_synapse/admin/v1/rooms/{quote(room_id)}",
                            what=f"room {room_id}")

    def delete_room(self, room_id: str) -> None:
        """Delete a room and purge it (its local aliases go with it)."""
        self.request("DELETE", f"/_synapse/admin/v1/rooms/{quote(room_id)}",
                     {"purge": True, "block": False}, what=f"delete room {room_id}")

    def members(self, room_id: str) -> list[str]:
        """User IDs joined to ``room_id``."""
        answer = self.request("GET", f"/_synapse/admin/v1/rooms/{quote(room_id)}/members",
                              what=f"members of {room_id}")
        return [str(m) for m in answer.get("members", [])]

    def create_room(self, body: Json, alias_localpart: str) -> str:
        """Create a room as planb-admin; its ID."""
        answer = self.request("POST", "/_matrix/client/v3/createRoom", body,
                              what=f"create room {self.alias_id(alias_localpart)}")
        return str(answer["room_id"])

    def join(self, room_id: str, localpart: str) -> None:
        """Force-join a user (the admin invites first when the room is invite-only)."""
        uid = self.user_id(localpart)
        self.request("POST", f"/_synapse/admin/v1/join/{quote(room_id)}", {"user_id": uid},
                     what=f"join {uid} to {room_id}")

    def kick(self, room_id: str, localpart: str, reason: str) -> None:
        """Remove a user from a room (planb-admin holds the power to kick)."""
        uid = self.user_id(localpart)
        self.request("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/kick",
                     {"user_id": uid, "reason": reason}, what=f"remove {uid} from {room_id}")

    def put_state(self, room_id: str, event_type: str, content: Json,
                  state_key: str = "") -> None:
        """Set one state event as planb-admin (a repeat with the same content is a no-op)."""
        self.request("PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/state/"
                            f"{quote(event_type)}/{quote(state_key)}", content,
                     what=f"set {event_type} in {room_id}")

    def send_text(self, room_id: str, body: str, *, msgtype: str = "m.text",
                  html: str | None = None) -> str:
        """Send a message as planb-admin (idempotent transaction ID); the event ID.

        ``html``: the same message as HTML (``formatted_body``) for clients that show it.
        """
        txn = secrets.token_hex(12)
        content = {"msgtype": msgtype, "body": body}
        if html is not None:
            content |= {"format": "org.matrix.custom.html", "formatted_body": html}
        answer = self.request(
            "PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{txn}",
            content, what=f"send to {room_id}")
        return str(answer.get("event_id", ""))
