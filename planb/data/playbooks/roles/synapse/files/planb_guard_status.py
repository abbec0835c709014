"""planb's Synapse module: the fallback's public state, for the welcome page.

Read at each request (no restart, nothing baked at deploy time), public by design (the
welcome page at ``https://<public_hostname>/`` shows the same), never a secret:

- ``GET /_synapse/client/fallback_status`` -> ``{"mode": "active"|"standby",
  "message": <the site's public activation message or "">}`` (JSON, for tools);
- ``GET /_synapse/client/fallback_status_mode`` -> ``active`` or ``standby`` (text,
  what nginx's SSI reads into a variable to pick the page's live block);
- ``GET /_synapse/client/fallback_status_message`` -> the message, HTML-escaped
  (nginx's SSI includes it as is, so the escaping happens here, once).

The mode is the mode file (``active``, anything else or missing is standby); the
message is the message file the failover playbook writes from the site's activation
text (missing: none). Only the message of an active fallback is shown.
"""

import html
import json
from typing import Any

try:  # inside Synapse
    from twisted.web.resource import Resource
except ImportError:  # planb's unit tests, outside Synapse
    Resource = object  # type: ignore[assignment,misc]

STATUS_PATH = "/_synapse/client/fallback_status"
MODE_PATH = "/_synapse/client/fallback_status_mode"
MESSAGE_PATH = "/_synapse/client/fallback_status_message"
#: The longest message shown (the rest is cut): the page stays light.
MAX_MESSAGE = 2000


def read_status(mode_file: str, message_file: str) -> tuple[str, str]:
    """``(mode, message)`` as the files say now; the message only when active."""
    try:
        with open(mode_file, encoding="utf-8") as f:
            mode = "active" if f.read().strip() == "active" else "standby"
    except OSError:
        mode = "standby"
    message = ""
    if mode == "active":
        try:
            with open(message_file, encoding="utf-8", errors="replace") as f:
                message = f.read(MAX_MESSAGE).strip()
        except OSError:
            message = ""
    return mode, message


class StatusResource(Resource):
    """One view of the state: ``json``, ``mode`` (text) or ``message`` (escaped HTML)."""

    isLeaf = True

    def __init__(self, mode_file: str, message_file: str, view: str) -> None:
        super().__init__()
        self._mode_file, self._message_file, self._view = mode_file, message_file, view

    def render_GET(self, request: Any) -> bytes:  # noqa: N802 - twisted's name
        mode, message = read_status(self._mode_file, self._message_file)
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        if self._view == "json":
            request.setHeader(b"Content-Type", b"application/json")
            return json.dumps({"mode": mode, "message": message}).encode()
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        if self._view == "mode":
            return mode.encode()
        return html.escape(message).encode()


def register(api: Any, mode_file: str, message_file: str) -> None:
    """Register the three read-only views on Synapse's web server."""
    for path, view in ((STATUS_PATH, "json"), (MODE_PATH, "mode"), (MESSAGE_PATH, "message")):
        api.register_web_resource(path, StatusResource(mode_file, message_file, view))
