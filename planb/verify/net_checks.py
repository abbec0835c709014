"""Checks run from the controller against the fallback: TLS, LDAP, the Matrix API.

Connections go to the inventory address of the host with the public name for SNI
and ``Host`` (see :mod:`planb.verify.endpoints`). Logins in the injection check are
sent with a probe account's real password when one is known: only then could a
login such as ``*lanb-probe-1`` get in if the LDAP filter were built unescaped.
"""

from __future__ import annotations

import secrets
import ssl
import time
from typing import TYPE_CHECKING, Any

import ldap3
from ldap3.core.exceptions import LDAPException

from planb.inventory import load_hosts
from planb.verify.endpoints import HttpAnswer, ca_file, https_request, tls_handshake
from planb.verify.model import CheckFailed, CheckSkipped
from planb.verify.probes import run_probes

if TYPE_CHECKING:
    from planb.inventory import InventoryHost
    from planb.verify.registry import CheckContext

#: Logins holding LDAP filter syntax (RFC 4515) that must never log anyone in.
INJECTION_LOGINS = ("*", "a*", "*)(uid=*", "\\2a", "*)(|(uid=*", "(uid=*)")
LDAPS_PORT = 636


def _cert_check(ctx: CheckContext, address: str, port: int, names: list[str]) -> str:
    seen = []
    for name in names:
        try:
            cert = tls_handshake(ctx.site, address, port, name)
        except ssl.SSLCertVerificationError as exc:
            raise CheckFailed(f"{address}:{port} as {name}: {exc.verify_message or exc}") from None
        except ConnectionRefusedError:
            raise CheckFailed(f"nothing answers on {address}:{port}") from None
        days = cert.days_left()
        if days < ctx.cert_min_days:
            raise CheckFailed(f"{address}:{port} as {name}: certificate expires in {days:.0f} "
                              f"days ({cert.not_after:%Y-%m-%d}), under {ctx.cert_min_days}")
        seen.append(f"{name} ({cert.version}, {days:.0f} days left)")
    trust = ca_file(ctx.site) or "the system trust store"
    return f"{port}: valid for " + ", ".join(seen) + f", verified with {trust}"


def tls_https(ctx: CheckContext, host: InventoryHost) -> str:
    """443 presents a certificate valid for the public name (and the server name)."""
    names = list(dict.fromkeys([ctx.site.matrix.public_hostname, ctx.site.matrix.server_name]))
    return _cert_check(ctx, host.address, 443, names)


def tls_ldaps(ctx: CheckContext, host: InventoryHost) -> str:
    """636 presents a certificate valid for the address Synapse and the sync use."""
    return _cert_check(ctx, host.address, LDAPS_PORT, [host.address])


def ldap_anonymous(ctx: CheckContext, host: InventoryHost) -> str:
    """An anonymous search of the whole directory over LDAPS returns nothing."""
    ca = ca_file(ctx.site)
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ca) if ca else None)
    server = ldap3.Server(host.address, port=LDAPS_PORT, use_ssl=True, tls=tls,
                          connect_timeout=10)
    suffix = ctx.site.fallback.ldap_suffix
    try:
        with ldap3.Connection(server, auto_bind=True, receive_timeout=10) as conn:
            conn.search(suffix, "(objectClass=*)", search_scope=ldap3.SUBTREE,
                        attributes=["*"], size_limit=10)
            entries = len(conn.entries)
            answer = conn.result.get("description", "?")
    except LDAPException as exc:
        if "refused" in str(exc):
            raise CheckFailed(f"nothing answers on {host.address}:{LDAPS_PORT}") from None
        raise RuntimeError(f"anonymous LDAPS connection failed: {exc}") from None
    if entries:
        raise CheckFailed(f"an anonymous search under {suffix} returned {entries} entries")
    return f"anonymous search under {suffix}: no entries ({answer})"


def _call(ctx: CheckContext, host: InventoryHost, method: str, path: str,
          body: dict[str, Any] | None = None) -> HttpAnswer:
    try:
        return https_request(ctx.site, host.address, method, path, body)
    except ssl.SSLCertVerificationError as exc:
        raise CheckFailed(f"TLS: {exc.verify_message or exc}") from None
    except ConnectionRefusedError:
        raise CheckFailed(f"nothing answers on {host.address}:443") from None


def client_api(ctx: CheckContext, host: InventoryHost) -> str:
    """GET /_matrix/client/versions through nginx over TLS answers with versions."""
    answer = _call(ctx, host, "GET", "/_matrix/client/versions")
    versions = answer.body.get("versions") if isinstance(answer.body, dict) else None
    if answer.status != 200 or not versions:
        raise CheckFailed(f"/_matrix/client/versions answered {answer.status}: {answer.text!r}")
    return f"200 in {answer.seconds * 1000:.0f} ms, spec versions up to {versions[-1]}"


def admin_api_refused(ctx: CheckContext, host: InventoryHost) -> str:
    """/_synapse/admin is not reachable through nginx."""
    answer = _call(ctx, host, "GET", "/_synapse/admin/v1/server_version")
    if answer.status not in (403, 404):
        raise CheckFailed(f"/_synapse/admin/v1/server_version answered {answer.status} through "
                          "nginx: the admin API is exposed")
    return f"/_synapse/admin refused ({answer.status})"


def registration_refused(ctx: CheckContext, host: InventoryHost) -> str:
    """POST /_matrix/client/v3/register is refused (403), not offered (401 flows)."""
    answer = _call(ctx, host, "POST", "/_matrix/client/v3/register",
                   {"username": "planb-verify-" + secrets.token_hex(4),
                    "password": secrets.token_urlsafe(24)})
    if answer.status != 403:
        raise CheckFailed(f"registration answered {answer.status} ({answer.errcode}): it must "
                          "be closed (403)")
    return f"registration refused (403 {answer.errcode})"


def _login(ctx: CheckContext, host: InventoryHost, login: str, password: str) -> HttpAnswer:
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": login},
            "password": password, "initial_device_display_name": "planb verify"}
    for _ in range(3):
        answer = _call(ctx, host, "POST", "/_matrix/client/v3/login", body)
        if answer.status != 429:
            return answer
        wait = (answer.body or {}).get("retry_after_ms", 2000) / 1000
        if wait > 15:
            break
        time.sleep(wait)
    raise RuntimeError(f"login of {login!r} rate limited (429); retry later")


def injection_logins(probe_login: str | None) -> list[str]:
    """The logins to try: fixed ones, plus variants that would match ``probe_login``."""
    logins = list(INJECTION_LOGINS)
    if probe_login:
        logins += ["*" + probe_login[1:], probe_login[:-1] + "*",
                   probe_login + ")(uid=*", "\\" + f"{ord(probe_login[0]):02x}" + probe_login[1:]]
    return logins


#: What Synapse's LDAP login guard logs for each login it refuses (synapse role).
GUARD_REFUSED = "planb guard refused login"


def _guard_refusals(ctx: CheckContext, since: float) -> int | None:
    """How many logins the guard refused since ``since`` (epoch), on the messaging hosts.

    None when no messaging host could be read. In standby Synapse refuses every
    ordinary login, so the HTTP answer alone cannot show that the guard (and not
    the standby switch) stopped an injected login: its log line does.
    """

    total, read = 0, False
    for other in load_hosts(ctx.site):
        if "fallback_messaging" not in other.groups:
            continue
        out = ctx.remote(other).run(
            f"journalctl -u synapse --since @{int(since)} -o cat --no-pager"
            f" | grep -c '{GUARD_REFUSED}'")
        if out.rc in (0, 1):
            total += int(out.stdout.strip() or 0)
            read = True
    return total if read else None


def ldap_injection(ctx: CheckContext, host: InventoryHost) -> str:
    """Logins holding * ( ) \\ never log anyone in (403 M_FORBIDDEN); the guard refused them."""
    probe = ctx.probe_accounts[0] if ctx.probe_accounts else None
    password = probe[1] if probe else secrets.token_urlsafe(16)
    accepted = []
    started = time.time() - 1
    for login in injection_logins(probe[0] if probe else None):
        answer = _login(ctx, host, login, password)
        if not (answer.status == 403 and answer.errcode == "M_FORBIDDEN"):
            accepted.append(f"{login!r} -> {answer.status} {answer.errcode}")
    if accepted:
        raise CheckFailed("logins with LDAP filter syntax were not refused as invalid: "
                          + "; ".join(accepted))
    tried = len(injection_logins(probe[0] if probe else None))
    refused = _guard_refusals(ctx, started)
    if refused is not None and refused < tried:
        raise CheckFailed(f"only {refused} of {tried} logins with LDAP filter syntax were "
                          "refused by the LDAP login guard before reaching the directory")
    how = "with a probe account's password" if probe else "without a probe password"
    guard = f", {refused} refused by the LDAP guard" if refused is not None else ""
    return f"{tried} logins refused (403 M_FORBIDDEN){guard}, {how}"


def admin_token(ctx: CheckContext, host: InventoryHost) -> str:
    """The Synapse admin token on the controller exists with mode 0600."""
    path = ctx.site.state_dir / "synapse" / "admin-token"
    if not path.is_file():
        raise CheckFailed(f"{path} is missing (the synapse role writes it)")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise CheckFailed(f"{path} is {mode:04o}: it must be 0600")
    return f"{path} {mode:04o}"


def probe_exchange(ctx: CheckContext, host: InventoryHost) -> str:
    """Two probe accounts log in through LDAP via nginx over TLS and exchange a message."""

    if len(ctx.probe_accounts) < 2:
        raise CheckSkipped("no probe accounts (give two: see 'planb verify --help')")
    results = run_probes(ctx.site, ctx.probe_accounts[:2], address=host.address)
    bad = [f"{r.login}: {r.detail}" for r in results if not r.ok]
    if bad:
        raise CheckFailed("; ".join(bad))
    return "; ".join(f"{r.login}: {r.detail}" for r in results)
