"""Raw request paths the proxy must refuse, and encoded ones it must still pass to Synapse.

nginx routes on its normalised path (``$uri``: percent-decoded, dot-segments resolved,
slashes merged) but forwards the raw one (``$request_uri``) to Synapse, whose web
framework routes on the raw path's segments, each percent-decoded once. When the two
disagree, nginx's ``/_synapse/admin`` refusal can be walked around. So the proxy
refuses, on the raw path (before ``?``), dot-segments and empty segments (``/`` also
written ``%2F``), a raw ``#`` or ``\\``, encoded ``.`` ``\\`` NUL (and those and ``/``
double-encoded), overlong UTF-8 (400), and the admin prefix in any case or encoding
(404); both answers carry :data:`REFUSED_MARKER`. An encoded ``/`` inside an ID passes:
planb's localparts may hold one.

Requests go out byte for byte over a raw TLS socket (:func:`raw_request`): HTTP
libraries normalise or reject such paths before sending them.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planb.verify.endpoints import TIMEOUT, HttpAnswer, tls_context
from planb.verify.model import CheckFailed

if TYPE_CHECKING:
    from planb.config import SiteConfig
    from planb.inventory import InventoryHost
    from planb.verify.registry import CheckContext

#: The body nginx answers a refused path with (planb-matrix.conf.j2, planb-backend.conf.j2).
REFUSED_MARKER = "refused by the planb proxy"
#: The end of nginx's own error pages (a request its parser rejects before any rule).
NGINX_PAGE = "<center>nginx</center>"


@dataclass(frozen=True)
class PathCase:
    """A raw request target and why it is there.

    ``{server}`` stands for the Matrix server name, ``{host}`` for the public host name.
    ``by_parser``: nginx's request parser refuses it (its own 400 page) before planb's
    rules see it.
    """

    target: str
    why: str
    by_parser: bool = False

    def raw(self, server_name: str, host: str = "") -> bytes:
        target = self.target.replace("{server}", server_name).replace("{host}", host)
        return target.encode("latin-1")


#: Raw paths nginx must refuse itself: none may reach Synapse.
HOSTILE_PATHS: tuple[PathCase, ...] = (
    PathCase("/_synapse/admin/../../_matrix/client/versions",
             "dot-segments climbing out of the admin prefix"),
    PathCase("/_synapse/admin/v2/users/..%2F..%2F..%2F..%2F_matrix%2Fclient%2Fversions",
             "encoded slashes: nginx sees /_matrix, Synapse its admin users servlet"),
    PathCase("/_matrix/client/../../_synapse/admin/v1/server_version",
             "dot-segments climbing into the admin prefix"),
    PathCase("/_matrix/client/./versions", "a single-dot segment"),
    PathCase("/_matrix/client/versions/..", "a trailing dot-dot segment"),
    PathCase("/_matrix/client/%2e%2e/%2e%2e/_synapse/admin/v1/server_version",
             "encoded dots (lower case)"),
    PathCase("/_matrix/client/%2E%2E/versions", "encoded dots (upper case)"),
    PathCase("/_matrix/client/.%2e/versions", "a half-encoded dot-dot"),
    PathCase("/_matrix/client/versions%2F..%2F..%2F..%2F_synapse%2Fadmin%2Fv1%2Fserver_version",
             "dot-segments between encoded slashes"),
    PathCase("/_synapse%2Fadmin/v1/server_version", "an encoded slash in the admin prefix"),
    PathCase("/_matrix//client/versions", "a doubled slash"),
    PathCase("/_matrix/client/%2Fversions", "an empty segment made with an encoded slash"),
    PathCase("//_synapse/admin/v1/server_version", "a leading doubled slash"),
    PathCase("/_matrix/client/..\\../_synapse/admin/v1/server_version", "backslashes"),
    PathCase("/_matrix/client/%5c../versions", "an encoded backslash"),
    PathCase("/_matrix/client/%252e%252e/%252e%252e/_synapse/admin/v1/server_version",
             "double-encoded dots"),
    PathCase("/_matrix/client/%252F../versions", "a double-encoded slash"),
    PathCase("/_matrix/client/..;/..;/_synapse/admin/v1/server_version",
             "dot-dot with ';' path parameters"),
    PathCase("/_matrix/client/versions#/x", "a raw '#' (nginx's path ends there, Synapse's not)"),
    PathCase("https://{host}/_synapse/admin/../../_matrix/client/versions",
             "an absolute-form target with dot-segments"),
    PathCase("/_matrix/client/versions%00", "an encoded NUL", by_parser=True),
    PathCase("/_matrix/client/versions\x00", "a raw NUL", by_parser=True),
    PathCase("/_matrix/client/%c0%ae%c0%ae/versions", "overlong UTF-8 dots (2 bytes)"),
    PathCase("/_matrix/client/%e0%80%ae%e0%80%ae/versions", "overlong UTF-8 dots (3 bytes)"),
    PathCase("/_synapse/admin/v1/server_version", "the admin prefix"),
    PathCase("/_synapse/admin;x/v1/server_version", "the admin prefix with a path parameter"),
    PathCase("/_SYNAPSE/Admin/v1/server_version", "the admin prefix in other case"),
    PathCase("/%5Fsynapse/%61dmin/v1/server_version", "the admin prefix percent-encoded"),
)

#: Encoded paths Matrix clients send (matrix-nio, Element): they must reach Synapse.
LEGIT_PATHS: tuple[PathCase, ...] = (
    PathCase("/_matrix/client/versions", "the versions endpoint"),
    PathCase("/_matrix/client/v3/profile/%40planb-probe-1%3A{server}",
             "a user ID (%40 %3A)"),
    PathCase("/_matrix/client/v3/profile/%40dept%2Fjdupont%3A{server}/displayname",
             "a user ID holding a slash (%2F)"),
    PathCase("/_matrix/client/v3/directory/room/%23planb-no-such-alias%3A{server}",
             "a room alias (%23)"),
    PathCase("/_matrix/client/v3/rooms/%21planbRoom%3A{server}/event/%24AbC-_dEf123",
             "a room ID and an event ID (%21 %24)"),
    PathCase("/_matrix/client/v3/rooms/%21planbRoom%3A{server}/state/m.room.member/"
             "%40planb-probe-1%3A{server}", "a state key holding a user ID"),
    PathCase("/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled",
             "a push rule ID starting with a dot"),
    PathCase("/_matrix/client/v3/sync?since=s12_3..4%2F..%2e&filter=%7B%22a%22%3A1%7D",
             "a query string holding dots and encoded slashes"),
)


def refused_by_proxy(answer: HttpAnswer) -> bool:
    """Whether nginx answered itself: planb's refusal, or its own error page."""
    return REFUSED_MARKER in answer.text or NGINX_PAGE in answer.text


def describe(answer: HttpAnswer) -> str:
    """``404 M_UNRECOGNIZED`` or ``400 'first bytes'``: what came back, shortly."""
    return f"{answer.status} {answer.errcode or repr(answer.text[:60])}"


def raw_request(site: SiteConfig, address: str, target: bytes, *, method: bytes = b"GET",
                name: str | None = None, port: int = 443,
                timeout: float = TIMEOUT) -> HttpAnswer:
    """Send ``method target`` exactly as given over TLS to ``address`` (SNI, Host: ``name``)."""
    name = name or site.matrix.public_hostname
    start = time.monotonic()
    with socket.create_connection((address, port), timeout) as plain, \
            tls_context(site).wrap_socket(plain, server_hostname=name) as tls:
        tls.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: " + name.encode()
                    + b"\r\nConnection: close\r\n\r\n")
        response = http.client.HTTPResponse(tls, method=method.decode())
        try:
            response.begin()
            raw = response.read(65536)
        finally:
            response.close()
    return HttpAnswer.read(response.status, raw, start)


def _send(ctx: CheckContext, host: InventoryHost, case: PathCase) -> HttpAnswer:
    try:
        matrix = ctx.site.matrix
        return raw_request(ctx.site, host.address,
                           case.raw(matrix.server_name, matrix.public_hostname))
    except ssl.SSLCertVerificationError as exc:
        raise CheckFailed(f"TLS: {exc.verify_message or exc}") from None
    except ConnectionRefusedError:
        raise CheckFailed(f"nothing answers on {host.address}:443") from None


def proxy_paths_refused(ctx: CheckContext, host: InventoryHost) -> str:
    """Hostile raw paths are refused by nginx itself; encoded Matrix IDs reach Synapse."""
    passed = [f"{case.target!r} -> {describe(answer)}" for case in HOSTILE_PATHS
              if not refused_by_proxy(answer := _send(ctx, host, case))]
    blocked = [f"{case.target!r} ({case.why}) -> {describe(answer)}"
               for case in LEGIT_PATHS
               if refused_by_proxy(answer := _send(ctx, host, case))
               or not isinstance(answer.body, dict)]
    problems = []
    if blocked:
        problems.append(f"{len(blocked)} Matrix paths did not reach Synapse: "
                        + "; ".join(blocked))
    if passed:  # last, its count at the end: a long message is cut at its start
        problems.append("hostile raw paths reached Synapse past nginx: " + "; ".join(passed)
                        + f" ({len(passed)} of {len(HOSTILE_PATHS)}; the rules are in the "
                        "nginx role's vars/main.yml)")
    if problems:
        raise CheckFailed(". ".join(problems))
    return (f"{len(HOSTILE_PATHS)} hostile raw paths refused by nginx, "
            f"{len(LEGIT_PATHS)} encoded Matrix paths answered by Synapse")
