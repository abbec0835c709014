"""The hot standby on the HA lab (issue 14): PostgreSQL streams the fallback's writes
to it within seconds, slapd replicates both ways, Synapse's media and signing key are
copied, Synapse, nginx and coturn stay stopped there, and the lag is shown by
``planb failover status`` and checked by ``planb verify`` (``standby.replication``).

Each test leaves the lab as it found it: what it writes (a room, an LDAP entry, a
media file) is removed again and seen removed on the other side.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import time
import urllib.parse
from collections.abc import Callable

import pytest

from planb.ha.replication import replication_state
from planb.verify.registry import run_checks
from tests.integration import lab_state
from tests.integration.conftest import LabSession
from tests.integration.ha_lab import KEPT_SITE
from tests.integration.lab_state import on

pytestmark = pytest.mark.lab

SUFFIX_DB = "synapse"
MEDIA = "/var/lib/synapse/media_store"


def wait_for(what: str, probe: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``probe`` is true; AssertionError naming ``what`` after ``timeout``."""
    start = time.monotonic()
    while True:
        if probe():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.2)


def run_in(session: LabSession, host: str, argv: list[str], stdin: str = ""
           ) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` on a lab host with ``stdin`` (no check)."""
    return subprocess.run(session.lab.ssh_argv(host, argv), input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)


def sql(session: LabSession, host: str, query: str) -> str:
    done = on(session, host, f"runuser -u postgres -- psql -X -tA -d {SUFFIX_DB} -c "
                             f"\"{query}\"")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def media_base(session: LabSession) -> str:
    """Where media requests go on the fallback: the media worker's listener when the
    site runs Synapse's workers (the main process then serves no media), else 8008."""
    found = on(session, "fallback", "f=$(grep -l 'worker_app: synapse.app.media_repository' "
                                    "/etc/synapse/workers/*.yaml 2>/dev/null | head -n 1); "
                                    "[ -n \"$f\" ] && sed -n 's/^    port: //p' \"$f\" | head -n 1")
    port = found.stdout.strip()
    return f"http://127.0.0.1:{port}" if port.isdigit() else "http://127.0.0.1:8008"


def admin_api(session: LabSession, method: str, path: str, body: object = None,
              *, data: bytes | None = None, content_type: str = "application/json",
              base: str = "http://127.0.0.1:8008") -> dict:
    """Synapse's client/admin API on the fallback (loopback) as planb's admin account."""
    token = (session.site.state_dir / "synapse" / "admin-token").read_text().strip()
    payload = data if data is not None else (json.dumps(body).encode() if body is not None
                                             else None)
    script = ("import sys, json, urllib.request as u; r = u.Request(sys.argv[1], "
              "data=(sys.stdin.buffer.read() or None), method=sys.argv[2], headers={"
              "'Authorization': 'Bearer ' + sys.argv[3], 'Content-Type': sys.argv[4]}); "
              "print(u.urlopen(r).read().decode())")
    done = run_in(session, "fallback", ["python3", "-c", script,
                                        f"{base}{path}", method, token,
                                        content_type], (payload or b"").decode("latin-1"))
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout or "{}")


def ldap(session: LabSession, host: str, tool: str, ldif: str = "", *args: str
         ) -> tuple[int, str]:
    done = run_in(session, host, [tool, "-Q", "-Y", "EXTERNAL", "-H", "ldapi:///", *args],
                  ldif)
    return done.returncode, done.stdout + done.stderr


def exists(session: LabSession, host: str, dn: str) -> bool:
    code, _ = ldap(session, host, "ldapsearch", "", "-LLL", "-s", "base", "-b", dn, "1.1")
    return code == 0


@pytest.mark.skipif(bool(KEPT_SITE), reason="a kept HA lab is deployed once per session")
def test_second_deploy_changes_nothing_on_the_ha_lab(ha_lab: LabSession) -> None:
    second = ha_lab.second_deploy
    assert second is not None and second.ok, second
    changed = {name: stats.changed for name, stats in second.hosts.items()}
    assert changed == {"primary": 0, "fallback": 0, "standby": 0}


def test_standby_streams_and_runs_no_service(ha_lab: LabSession) -> None:
    state = replication_state(ha_lab.site)
    assert [s.host for s in state.standbys] == ["standby"]
    standby = state.standbys[0]
    assert standby.streaming, standby.summary()
    assert standby.problems(ha_lab.site.objectives.rpo_seconds) == [], standby.summary()
    assert sql(ha_lab, "standby", "SELECT pg_is_in_recovery()") == "t"
    # Read-only: a write on the standby is refused by PostgreSQL itself.
    refused = on(ha_lab, "standby", "runuser -u postgres -- psql -X -d synapse -c "
                                    "'CREATE TABLE planb_probe (x int)'")
    assert refused.returncode != 0 and "read-only transaction" in refused.stderr
    units = on(ha_lab, "standby", "for u in synapse nginx coturn; do "
                                  "echo $u $(systemctl is-active $u) $(systemctl is-enabled $u); "
                                  "done")
    for line in units.stdout.splitlines():
        name, active, enabled = line.split()[:3]
        assert (active, enabled) == ("inactive", "disabled"), line
    assert "synapse" in units.stdout


def test_the_standby_streams_over_tls_checking_the_fallbacks_certificate(
        ha_lab: LabSession) -> None:
    """The WAL stream is encrypted and the standby verified who sent it: the fallback
    presents its host certificate (its private address among the names), checked against
    the site's CA (verify-full); a server the CA did not vouch for is refused."""
    fallback = ha_lab.topology.host("fallback").address
    # The fallback's side: the standby's walsender connection is TLS.
    rows = sql(ha_lab, "fallback", "SELECT s.ssl, s.version FROM pg_stat_replication r "
               "JOIN pg_stat_ssl s USING (pid)")
    assert rows.startswith("t|TLS"), rows
    # The standby's side: verify-full against the site's CA, in what it runs with.
    conninfo = sql(ha_lab, "standby", "SHOW primary_conninfo")
    assert "sslmode=verify-full" in conninfo and "sslrootcert=/etc/planb/tls/ca.crt" \
        in conninfo, conninfo
    served = on(ha_lab, "standby", f"echo | openssl s_client -starttls postgres -connect "
                                   f"{fallback}:5432 -CAfile /etc/planb/tls/ca.crt "
                                   f"-verify_ip {fallback} -verify_return_error 2>&1")
    assert "Verify return code: 0 (ok)" in served.stdout, served.stdout[-600:]
    # The same connection checked against another CA (the system's) is refused.
    other = on(ha_lab, "standby", "runuser -u postgres -- psql -X -w -c 'SELECT 1' "
               f"'host={fallback} dbname=replication replication=true "
               "user=planb_replicator passfile=/var/lib/postgresql/.pgpass "
               "sslmode=verify-full sslrootcert=/usr/share/ca-certificates/mozilla/"
               "ISRG_Root_X1.crt'")
    assert other.returncode != 0 and "certificate verify failed" in other.stderr, \
        other.stderr


def test_a_room_made_on_the_fallback_is_on_the_standby_within_seconds(
        ha_lab: LabSession) -> None:
    marker = f"planb-ha-{secrets.token_hex(4)}"
    room = admin_api(ha_lab, "POST", "/_matrix/client/v3/createRoom",
                     {"name": marker, "preset": "private_chat"})["room_id"]
    try:
        seconds = wait_for("the room's events on the standby", lambda: sql(
            ha_lab, "standby", f"SELECT count(*) FROM rooms WHERE room_id = '{room}'") == "1",
            timeout=30)
        print(f"room {room} on the standby {seconds:.2f} s after createRoom returned")
        assert seconds < 10
    finally:
        admin_api(ha_lab, "DELETE", f"/_synapse/admin/v2/rooms/{urllib.parse.quote(room)}",
                  {"purge": True})
    wait_for("the purged room gone from the standby", lambda: sql(
        ha_lab, "standby", f"SELECT count(*) FROM rooms WHERE room_id = '{room}'") == "0",
        timeout=120)


def test_ldap_changes_replicate_both_ways(ha_lab: LabSession) -> None:
    suffix = ha_lab.site.fallback.ldap_suffix
    name = f"planb-ha-{secrets.token_hex(4)}"
    dn = f"cn={name},ou=services,{suffix}"
    code, out = ldap(ha_lab, "standby", "ldapadd",
                     f"dn: {dn}\nobjectClass: organizationalRole\ncn: {name}\n")
    assert code == 0, out
    try:
        up = wait_for("an entry added on the standby, on the fallback",
                      lambda: exists(ha_lab, "fallback", dn), timeout=30)
        code, out = ldap(ha_lab, "fallback", "ldapmodify",
                         f"dn: {dn}\nchangetype: modify\nreplace: description\n"
                         "description: changed on the fallback\n")
        assert code == 0, out
        back = wait_for("a change made on the fallback, on the standby", lambda: "changed on "
                        "the fallback" in ldap(ha_lab, "standby", "ldapsearch", "", "-LLL",
                                               "-s", "base", "-b", dn, "description")[1],
                        timeout=30)
        print(f"LDAP: standby -> fallback {up:.2f} s, fallback -> standby {back:.2f} s")
    finally:
        ldap(ha_lab, "fallback", "ldapdelete", "", dn)
    wait_for("the entry deleted on the fallback, gone from the standby",
             lambda: not exists(ha_lab, "standby", dn), timeout=30)
    state = replication_state(ha_lab.site)
    assert state.standbys[0].ldap_in_step, state.standbys[0].summary()


def test_media_and_signing_key_are_copied(ha_lab: LabSession) -> None:
    keys = "sha256sum /etc/synapse/keys/* /etc/synapse/homeserver.yaml"
    assert on(ha_lab, "standby", keys).stdout == on(ha_lab, "fallback", keys).stdout
    body = secrets.token_hex(16).encode()
    media = media_base(ha_lab)
    uri = admin_api(ha_lab, "POST", "/_matrix/media/v3/upload?filename=ha.txt", data=body,
                    content_type="text/plain", base=media)["content_uri"]
    media_id = uri.rsplit("/", 1)[1]
    path = f"{MEDIA}/local_content/{media_id[:2]}/{media_id[2:4]}/{media_id[4:]}"
    try:
        seconds = wait_for("the upload on the standby", lambda: on(
            ha_lab, "standby", f"cat {path}").stdout.encode() == body, timeout=120)
        print(f"media on the standby {seconds:.1f} s after the upload")
    finally:
        server = ha_lab.site.matrix.server_name
        admin_api(ha_lab, "DELETE", f"/_synapse/admin/v1/media/{server}/{media_id}",
                  base=media)
    wait_for("the deleted media gone from the standby", lambda: on(
        ha_lab, "standby", f"test -e {path}").returncode != 0, timeout=120)


def test_lag_is_shown_and_checked(ha_lab: LabSession) -> None:
    code, out = lab_state.planb_cli(ha_lab, "failover", "status", "--json")
    assert code == 0, out
    shown = json.loads(out[out.index("{"):])["replication"]["standbys"][0]
    assert shown["streaming"] and shown["replay_lag_seconds"] is not None
    code, out = lab_state.planb_cli(ha_lab, "failover", "status")
    assert code == 0 and "standby standby: in step" in out and "lag " in out, out
    report = run_checks(ha_lab.site, ["standby.replication"])
    assert [(r.host, r.status) for r in report.results] == [("standby", "pass")], report
    # Real lag: the standby stops replaying while the fallback writes.
    strict = dataclasses.replace(ha_lab.site, objectives=dataclasses.replace(
        ha_lab.site.objectives, rpo_seconds=3))
    sql(ha_lab, "standby", "SELECT pg_wal_replay_pause()")
    room = ""
    try:
        room = admin_api(ha_lab, "POST", "/_matrix/client/v3/createRoom",
                         {"name": "planb-ha-lag", "preset": "private_chat"})["room_id"]
        time.sleep(6)
        failed = run_checks(strict, ["standby.replication"]).results[0]
        assert failed.status == "fail", failed
        assert "replay lag" in failed.message and "> 3 s" in failed.message, failed.message
        print(f"standby.replication with the replay paused: {failed.message}")
    finally:
        sql(ha_lab, "standby", "SELECT pg_wal_replay_resume()")
        if room:
            admin_api(ha_lab, "DELETE", f"/_synapse/admin/v2/rooms/{urllib.parse.quote(room)}",
                      {"purge": True})
    wait_for("the standby replaying again", lambda: run_checks(
        strict, ["standby.replication"]).results[0].status == "pass", timeout=60)
