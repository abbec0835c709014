"""The admin API tunnel's local end: nobody but planb's user can take it or reach it.

``ssh`` is replaced by a forwarder that does what ``ssh -L`` does locally (listen
where planb tells it, pipe each connection to the host's port: here a stand-in
Synapse on 127.0.0.1); the real ssh and Synapse are in the lab tests. What is
tested is planb's side: where the tunnel listens, who may connect to it, that the
admin client speaks HTTP through it, and that nothing is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from planb.inventory import SshTarget
from planb.messaging.admin_api import AdminApi
from planb.messaging.tunnel import admin_tunnel
from planb.schema import Secret

FORWARDER = Path(__file__).parent / "fixtures" / "ssh_forwarder.py"
TARGET = SshTarget("fallback", "10.77.3.11", user="root")
NOBODY = 65534


@pytest.fixture
def synapse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """A stand-in Synapse on 127.0.0.1 and an ``ssh`` on PATH that forwards to it;
    yields the Authorization headers Synapse received."""
    tokens: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            tokens.append(self.headers.get("Authorization", ""))
            body = json.dumps({"server_version": "1.99.0"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ssh = bin_dir / "ssh"
    ssh.write_text(f"#!/bin/sh\nexec {sys.executable} {FORWARDER} \"$@\"\n", encoding="utf-8")
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PLANB_TEST_REMOTE_PORT", str(httpd.server_address[1]))
    try:
        yield tokens
    finally:
        httpd.shutdown()
        httpd.server_close()


CONNECT_AS_NOBODY = """
import socket, sys, urllib.parse
url = sys.argv[1]
scheme, rest = url.split("://", 1)
try:
    if scheme == "http+unix":
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(urllib.parse.unquote(rest))
    else:
        host, port = rest.rstrip("/").rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=3)
    sock.sendall(b"GET /_synapse/admin/v1/server_version HTTP/1.0\\r\\n\\r\\n")
    print("reached:", sock.recv(100)[:12])
except OSError as exc:
    print("refused:", type(exc).__name__)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another local user needs root")
def test_another_local_user_cannot_reach_the_tunnel(synapse: list[str]) -> None:
    """The attack: a second account on planb's machine connects to the tunnel (or, with
    a TCP port, binds it first and answers /health to collect the admin token)."""
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    with admin_tunnel(TARGET, timeout=10) as url:
        other = subprocess.run([python, "-c", CONNECT_AS_NOBODY, url], user=NOBODY,
                               group=NOBODY, capture_output=True, text=True, timeout=30,
                               cwd="/")
        assert other.stdout.startswith("refused: PermissionError"), other.stdout + other.stderr


def test_the_tunnel_is_a_unix_socket_in_a_private_directory(synapse: list[str]) -> None:
    with admin_tunnel(TARGET, timeout=10) as url:
        assert url.startswith("http+unix://")
        api = AdminApi(url, Secret("syt_secret"), "planb.test")
        socket_path = Path(api.socket_path or "")
        folder = socket_path.parent
        mode = folder.stat()
        assert stat.S_ISSOCK(socket_path.stat().st_mode)
        assert (mode.st_uid, stat.S_IMODE(mode.st_mode)) == (os.getuid(), 0o700)
        assert stat.S_IMODE(socket_path.stat().st_mode) & 0o077 == 0
        try:
            answer = api.request("GET", "/_synapse/admin/v1/server_version", what="version")
            assert answer["server_version"] == "1.99.0"
        finally:
            api.close()
    assert synapse[-1] == "Bearer syt_secret"  # after the /health check planb made
    assert not folder.exists()  # socket and directory removed with the tunnel
