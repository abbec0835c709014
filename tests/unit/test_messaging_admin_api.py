"""The admin API client's HTTP error handling, against a local http.server on 127.0.0.1.

The server stands in for Synapse only to produce the answers Synapse gives when it
is busy or broken (429 with retry_after_ms, 5xx, a dropped connection, 4xx), which
a healthy lab Synapse cannot be made to give on demand. What the client does with
real answers is tested against the lab's Synapse (tests/integration).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from planb.messaging.admin_api import AdminApi, MatrixApiError, Retry
from planb.schema import Secret

TOKEN = Secret("syt_very_secret_token_value")


class Script:
    """Answers to give, in order (status, body or None to drop the connection)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, object] | None]] = []
        self.seen: list[tuple[str, str, str, bytes]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.seen.append((self.command, self.path,
                                self.headers.get("Authorization", ""), body))
            status, answer = script.answers.pop(0) if script.answers else (200, {})
            if answer is None:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = _answer

        def log_message(self, *args: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def client(url: str, slept: list[float], attempts: int = 4) -> AdminApi:
    return AdminApi(url, TOKEN, "planb.lab", retry=Retry(attempts=attempts, first=0.1, cap=1),
                    sleep=slept.append)


def test_429_waits_as_long_as_synapse_asks_then_succeeds(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(429, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 1500}),
                      (429, {"errcode": "M_LIMIT_EXCEEDED"}), (201, {})]
    slept: list[float] = []
    client(url, slept).create_user("jdupont", "Jean Dupont")
    assert slept == [1.5, 0.2]  # Synapse's wait, then the backoff's next step
    assert len(script.seen) == 3
    method, path, auth, body = script.seen[-1]
    assert (method, path) == ("PUT", "/_synapse/admin/v2/users/%40jdupont%3Aplanb.lab")
    assert auth == f"Bearer {TOKEN}"
    assert json.loads(body) == {"displayname": "Jean Dupont"}  # no password


def test_5xx_and_dropped_connections_are_retried_with_growing_delays(
        server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(502, {"error": "bad gateway"}), (0, None),
                      (500, {"errcode": "M_UNKNOWN"}), (200, {})]
    slept: list[float] = []
    client(url, slept, attempts=5).deactivate("jdupont")
    assert slept == [0.1, 0.2, 0.4]
    assert [s[1] for s in script.seen][-1] == "/_synapse/admin/v1/deactivate/%40jdupont%3Aplanb.lab"
    assert json.loads(script.seen[-1][3]) == {"erase": False}


def test_gives_up_after_the_last_attempt_naming_the_user(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(503, {"error": "overloaded"})] * 3
    slept: list[float] = []
    with pytest.raises(MatrixApiError) as caught:
        client(url, slept, attempts=3).set_display_name("élodie", "Élodie Martin")
    assert caught.value.status == 503
    assert "display name of @élodie:planb.lab" in caught.value.message
    assert "overloaded" in caught.value.message and "gave up" in caught.value.message
    assert len(slept) == 2


def test_a_4xx_is_not_retried_and_the_token_never_shows(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(403, {"errcode": "M_FORBIDDEN", "error": "You are not a server admin"})]
    slept: list[float] = []
    with pytest.raises(MatrixApiError) as caught:
        client(url, slept).join("!room:planb.lab", "jdupont")
    assert slept == []
    assert caught.value.errcode == "M_FORBIDDEN"
    assert caught.value.message.startswith("join @jdupont:planb.lab to !room:planb.lab: HTTP 403")
    assert str(TOKEN) not in caught.value.message and str(TOKEN) not in repr(caught.value)


def test_unreachable_synapse_is_a_clear_error(server: tuple[str, Script]) -> None:
    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    import socket
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    assert dead != port
    slept: list[float] = []
    with pytest.raises(MatrixApiError) as caught:
        client(f"http://127.0.0.1:{dead}", slept, attempts=2).create_user("a", "A")
    assert "create @a:planb.lab: no answer" in caught.value.message
    assert "connection to Synapse failed" in caught.value.message


def test_only_a_local_http_url_is_accepted() -> None:
    with pytest.raises(ValueError, match="local http URL"):
        AdminApi("https://matrix.example.org", TOKEN, "example.org")


def test_reactivate_sends_no_password_unless_synapse_insists(
        server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, {})]  # local passwords off: Synapse refuses any password
    client(url, []).reactivate("jdupont")
    assert [json.loads(s[3]) for s in script.seen] == [{"deactivated": False}]
    script.seen.clear()
    script.answers = [(400, {"errcode": "M_MISSING_PARAM",
                             "error": "Must provide a password to re-activate an account."}),
                      (200, {})]
    client(url, []).reactivate("jdupont")
    first, second = (json.loads(s[3]) for s in script.seen)
    assert first == {"deactivated": False}
    assert second["deactivated"] is False and len(second["password"]) >= 32
