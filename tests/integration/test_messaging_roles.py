"""The messaging side on the session's deployed lab: synapse, nginx, coturn.

The session lab (tests/integration/conftest.py) runs the whole site.yml twice, the
second run changing nothing (test_lab_deploy.py). Here, what an agent or an
administrator would see: the client API answers
through nginx over TLS (verified with the planb CA, SNI matrix.planb.lab), the
admin API and registration are refused there, the admin token works from the host
itself, the fallback starts in standby (logins refused like a wrong password, admin
provisioning allowed) and failover.yml flips it only when asked, without restarting
Synapse.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import stat
import subprocess
from dataclasses import dataclass

import pytest

from planb import PLAYBOOKS_DIR
from planb.config import SiteConfig
from planb.hostkeys import known_hosts_path
from planb.lab.lab import Lab
from planb.provisioning import PlaybookResult, new_run_dir, run_playbook
from planb.provisioning.deploy import deploy_vars
from planb.verify.accounts import default_probe_file, load_probe_accounts
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab

HOST = "fallback"
FAILOVER = PLAYBOOKS_DIR / "failover.yml"
PROBE_USER = "probe-local"
PROBE_PASSWORD = "probe-local-password-1"


@dataclass
class Deployed:
    site: SiteConfig
    lab: Lab
    address: str


@pytest.fixture(scope="module")
def deployed(standby_lab: LabSession) -> Deployed:
    address = standby_lab.topology.host(HOST).address
    return Deployed(standby_lab.site, standby_lab.lab, address)


def _https(d: Deployed, method: str, path: str, body: object | None = None
           ) -> tuple[int, dict[str, object]]:
    """A request to nginx on the fallback's address, TLS verified against the planb CA."""
    context = ssl.create_default_context(cafile=str(d.site.state_dir / "pki" / "ca.crt"))
    host = d.site.matrix.public_hostname
    conn = http.client.HTTPConnection(d.address, 443, timeout=30)
    conn.sock = context.wrap_socket(socket.create_connection((d.address, 443), timeout=30),
                                    server_hostname=host)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Host": host,
                                                   "Content-Type": "application/json"})
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    try:
        return response.status, json.loads(raw) if raw else {}
    except ValueError:
        return response.status, {"raw": raw.decode(errors="replace")}


def _on_host(d: Deployed, method: str, path: str, token: str, body: object | None = None
             ) -> tuple[int, dict[str, object]]:
    """A request to Synapse's loopback listener, made on the fallback host itself."""
    script = (
        "import json,sys,urllib.request,urllib.error\n"
        "a=json.load(sys.stdin)\n"
        "r=urllib.request.Request('http://127.0.0.1:8008'+a['path'],method=a['method'],"
        "data=None if a['body'] is None else json.dumps(a['body']).encode(),"
        "headers={'Authorization':'Bearer '+a['token']})\n"
        "try:\n r=urllib.request.urlopen(r);print(r.status);print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n print(e.code);print(e.read().decode())\n"
    )
    request = json.dumps({"path": path, "method": method, "token": token, "body": body})
    argv = d.lab.ssh_argv(HOST, ["python3", "-c", script])
    done = subprocess.run(argv, input=request, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    status, _, text = done.stdout.partition("\n")
    return int(status), json.loads(text) if text.strip() else {}


def _admin_token(d: Deployed) -> str:
    return (d.site.state_dir / "synapse" / "admin-token").read_text(encoding="utf-8").strip()


def _login(d: Deployed, user: str, password: str) -> tuple[int, dict[str, object]]:
    return _https(d, "POST", "/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
        "password": password})


def _failover(d: Deployed, mode: str) -> PlaybookResult:
    extravars = deploy_vars(d.site) | {"planb_failover_mode": mode}
    return run_playbook(FAILOVER, d.site.inventory_dir,
                        run_dir=new_run_dir(d.site.state_dir, FAILOVER), extravars=extravars,
                        known_hosts=known_hosts_path(d.site))


def test_client_api_answers_through_nginx_over_tls(deployed: Deployed) -> None:
    status, body = _https(deployed, "GET", "/_matrix/client/versions")
    assert status == 200
    assert "v1.1" in body["versions"]  # type: ignore[operator]
    status, body = _https(deployed, "GET", "/.well-known/matrix/client")
    assert status == 200
    assert body["m.homeserver"] == {"base_url": "https://matrix.planb.lab"}


def test_admin_api_and_federation_are_not_exposed(deployed: Deployed) -> None:
    for path in ("/_synapse/admin/v1/server_version", "/_synapse/admin/v2/users",
                 "/_synapse/client/planb/admin_token",
                 "/_matrix/federation/v1/version", "/.well-known/matrix/server"):
        status, _ = _https(deployed, "GET", path)
        assert status == 404, path


def test_registration_is_refused(deployed: Deployed) -> None:
    status, body = _https(deployed, "POST", "/_matrix/client/v3/register", {
        "username": "intrus", "password": "intrus-password-1",
        "auth": {"type": "m.login.dummy"}})
    assert status == 403
    assert body["errcode"] == "M_FORBIDDEN"


def test_admin_token_is_private_and_works_on_the_host(deployed: Deployed) -> None:
    token_file = deployed.site.state_dir / "synapse" / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    status, user = _on_host(deployed, "GET", "/_synapse/admin/v2/users/@planb-admin:planb.lab",
                            _admin_token(deployed))
    assert status == 200
    assert user["admin"] is True and user["user_type"] == "support"
    status, limits = _on_host(
        deployed, "GET", "/_synapse/admin/v1/users/@planb-admin:planb.lab/override_ratelimit",
        _admin_token(deployed))
    assert (status, limits) == (200, {"messages_per_second": 0, "burst_count": 0})


def test_filter_characters_in_a_login_get_nobody_in(deployed: Deployed) -> None:
    for login in ("*", "a*", "*)(uid=*", "x\\2a", "(uid=*)"):
        status, body = _login(deployed, login, "anything")
        assert status == 403 and body["errcode"] == "M_FORBIDDEN", login


def test_standby_blocks_agents_but_not_provisioning_and_failover_flips(
        deployed: Deployed) -> None:
    """A Matrix-only password never logs in; a probe spelled otherwise than its exempt
    login is an ordinary login: refused in standby, in once failover.yml says active."""
    token = _admin_token(deployed)
    mode = deployed.lab.run_on(HOST, ["cat", "/etc/planb/mode"])
    assert mode.stdout.strip() == "standby"
    # Provisioning in standby: the admin API creates a user, the admin makes a room.
    status, _ = _on_host(deployed, "PUT", f"/_synapse/admin/v2/users/@{PROBE_USER}:planb.lab",
                         token, {"password": PROBE_PASSWORD, "logout_devices": False})
    assert status in (200, 201)
    status, room = _on_host(deployed, "POST", "/_matrix/client/v3/createRoom", token,
                            {"name": "standby provisioning"})
    assert status == 200 and str(room["room_id"]).startswith("!")
    probe, password = load_probe_accounts(default_probe_file(deployed.site))[0]
    canary = probe.upper()
    for user, secret in ((PROBE_USER, PROBE_PASSWORD), (canary, password)):
        status, body = _login(deployed, user, secret)
        assert (status, body["errcode"], body["error"]) == (
            403, "M_FORBIDDEN", "Invalid username or password"), (user, body)
    try:
        first = _failover(deployed, "active")
        assert first.ok and first.changed_total > 0
        assert _failover(deployed, "active").changed_total == 0
        status, body = _login(deployed, canary, password)
        assert status == 200 and body["user_id"] == f"@{probe}:planb.lab", body
        # No local passwords: the admin API's password is no way in, active or not.
        status, _ = _login(deployed, PROBE_USER, PROBE_PASSWORD)
        assert status == 403
    finally:
        back = _failover(deployed, "standby")
    assert back.ok
    status, _ = _login(deployed, canary, password)
    assert status == 403


def test_the_admin_token_resource_wants_a_fresh_mac_from_the_host_itself(
        deployed: Deployed) -> None:
    """One MAC gets one login token; a replay, a bad MAC or a proxied request get none."""
    script = (
        "import hashlib,hmac,json,secrets,time,urllib.request,urllib.error\n"
        "k=open('/etc/synapse/keys/registration_shared_secret','rb').read().strip()\n"
        "t=int(time.time());n=secrets.token_hex(16)\n"
        "def mac(t,n):\n"
        " return hmac.new(k,f'planb-admin-token\\n{t}\\n{n}'.encode(),hashlib.sha256).hexdigest()\n"
        "m=mac(t,n);o=secrets.token_hex(16)\n"
        "def post(b,h={}):\n"
        " r=urllib.request.Request('http://127.0.0.1:8008/_synapse/client/planb/admin_token',"
        "data=json.dumps(b).encode(),headers=h)\n"
        " try:\n  return urllib.request.urlopen(r).status\n"
        " except urllib.error.HTTPError as e:\n  return e.code\n"
        "good={'ts':t,'nonce':n,'mac':m}\n"
        "print(post(good,{'X-Forwarded-For':'127.0.0.1'}),post(dict(good,mac='0'*64)),"
        "post(good),post(good),post({'ts':t-3600,'nonce':o,'mac':mac(t-3600,o)}))\n"
    )
    done = deployed.lab.run_on(HOST, ["python3", "-c", script])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["404", "403", "200", "403", "403"]
