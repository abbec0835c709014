"""Issue 13, first steps: the fallback's backups on a lab with a ``backup`` host.

Its own lab (not the session's: the default lab has no backup host), on
$PLANB_TEST_BACKUP_BRIDGE / $PLANB_TEST_BACKUP_SUBNET, with ``backup.enabled`` in its
planb.yml: deployed twice (the second changes nothing), synced, then backed up with
'planb backup now'. The archive must hold what Synapse's backup guide names (the
database dump without e2e_one_time_keys_json's data, local media but not the remote
cache, the signing key) and the directory's slapcat; a backup host that cannot be
reached fails the backup loudly, and the next run catches up; the failover playbook
switches the timer to the active interval and back; no secret shows anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import planb
from planb.config import LabConfig, load_config
from planb.hostkeys import known_hosts_path
from planb.inventory import check_inventory, vault_value
from planb.lab.lab import Lab
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.provisioning import new_run_dir, run_playbook
from planb.provisioning.deploy import deploy_vars, run_deploy
from tests.integration import lab_state
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab

BRIDGE = os.environ.get("PLANB_TEST_BACKUP_BRIDGE", "planb8")
SUBNET = os.environ.get("PLANB_TEST_BACKUP_SUBNET", "10.77.8.0/24")
KEPT_SITE = os.environ.get("PLANB_TEST_BACKUP_SITE")
DUMP = "root/.borgmatic/postgresql_databases/127.0.0.1/synapse"
MEDIA = "var/lib/synapse/media_store"


@pytest.fixture(scope="module")
def backup_lab(tmp_path_factory: pytest.TempPathFactory, offline_bundle: Path
               ) -> Iterator[LabSession]:
    """A lab with a backup host, deployed (then its backup role again) and synced; torn
    down at the end.

    With $PLANB_TEST_BACKUP_SITE (the planb.yml of such a lab, up and deployed), that
    lab is used and kept: deployed once more (which must change nothing), not torn down.
    """
    if KEPT_SITE:
        kept = load_config(Path(KEPT_SITE))
        session = LabSession(site=kept, lab=Lab(kept), topology=Lab(kept).topology())
        session.first_deploy = session.second_deploy = run_deploy(kept, tags=("backup",))
        lab_state.ensure_signing_key(session)
        lab_state.ensure_synced(session)
        _media(session)
        yield session
        return
    site_dir = tmp_path_factory.mktemp("backuplab")
    lab_config = LabConfig(subnet=SUBNET, bridge=BRIDGE, agents=60)
    key = site_dir / ".planb" / "lab" / "id_ed25519"
    path = write_lab_site(site_dir, build_topology(SUBNET, BRIDGE, backup=True), key,
                          lab_config)
    text = path.read_text(encoding="utf-8")
    assert "backup:\n  enabled: false\n" in text
    path.write_text(text.replace("backup:\n  enabled: false\n", "backup:\n  enabled: true\n"),
                    encoding="utf-8")
    site = load_config(path)
    lab = Lab(site)
    session = LabSession(site=site, lab=lab, topology=lab.up())
    try:
        assert [h.name for h in session.topology.hosts] == ["primary", "fallback", "backup"]
        session.first_deploy = run_deploy(site)
        assert session.first_deploy.ok, session.first_deploy.failures
        # Only the backup role: the whole site's second deploy is the session lab's test,
        # and other work in the same tree may change other roles between the two runs.
        session.second_deploy = run_deploy(site, tags=("backup",))
        lab_state.ensure_signing_key(session)
        lab_state.ensure_synced(session)
        _media(session)
        yield session
    finally:
        left = lab_state.down_and_leftovers(session, BRIDGE)
    assert not left, f"'lab down' left something behind: {left}"


def on(session: LabSession, host: str, script: str, timeout: float = 120
       ) -> subprocess.CompletedProcess[str]:
    return session.lab.run_on(host, ["sh", "-c", script], timeout=timeout)


def _media(session: LabSession) -> None:
    """A local upload and a file in the remote cache: a backup keeps the first only."""
    token = (session.site.state_dir / "synapse" / "admin-token").read_text().strip()
    upload = on(session, "fallback", (
        "python3 -c 'import sys, urllib.request as u; r = u.Request("
        "\"http://127.0.0.1:8008/_matrix/media/v3/upload?filename=probe.txt\", "
        "data=b\"planb backup probe\", headers={\"Authorization\": \"Bearer \" + sys.argv[1],"
        " \"Content-Type\": \"text/plain\"}); print(u.urlopen(r).read().decode())' "
        f"{token}"))
    assert upload.returncode == 0, upload.stderr
    on(session, "fallback", f"mkdir -p /{MEDIA}/remote_content/x && "
                            f"echo cache > /{MEDIA}/remote_content/x/cached")


def archives(session: LabSession) -> list[dict[str, object]]:
    code, out = lab_state.planb_cli(session, "backup", "list", "--json")
    assert code == 0, out
    return list(json.loads(out[out.index("["):]))


def secrets(session: LabSession) -> list[str]:
    inventory = session.site.inventory_dir
    return [str(vault_value(inventory, name)) for name in
            ("vault_backup_passphrase", "vault_postgresql_synapse_password")]


def test_second_deploy_changes_nothing(backup_lab: LabSession) -> None:
    """The backup role is idempotent: run again, it changes nothing."""
    assert backup_lab.second_deploy is not None
    assert backup_lab.second_deploy.ok, backup_lab.second_deploy.failures
    assert backup_lab.second_deploy.changed_total == 0, backup_lab.second_deploy.hosts


def test_backup_host_only_runs_borg_serve(backup_lab: LabSession) -> None:
    """The fallback's key on the backup host is a forced 'borg serve' in its own repo."""
    keys = on(backup_lab, "backup", "cat /var/lib/planb-backup/.ssh/authorized_keys")
    lines = [line for line in keys.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, keys.stdout
    assert lines[0].startswith('restrict,command="borg serve --restrict-to-path '
                               '/var/lib/planb-backup/repos/fallback" ssh-ed25519 '), lines
    shell = on(backup_lab, "fallback",
               "ssh -i /root/.ssh/planb_backup_ed25519 -o BatchMode=yes "
               "-o UserKnownHostsFile=/etc/borgmatic/known_hosts "
               f"borg@{backup_lab.topology.host('backup').address} cat /etc/passwd")
    assert "root:" not in shell.stdout, "the fallback's key opened a shell on the backup host"


def test_backup_now_then_list(backup_lab: LabSession) -> None:
    """'planb backup now' makes an archive that 'planb backup list' then shows."""
    before = len(archives(backup_lab))
    code, out = lab_state.planb_cli(backup_lab, "backup", "now")
    assert code == 0, out
    assert "backed up fallback in" in out, out
    after = archives(backup_lab)
    assert len(after) == before + 1, after
    newest = after[-1]
    assert newest["host"] == "fallback"
    assert isinstance(newest["original_size"], int) and newest["original_size"] > 10_000
    assert newest["verified"] is False
    print(f"backup: {out.strip()}; newest archive {newest}")


def _newest(session: LabSession) -> str:
    listed = archives(session)
    if not listed:
        code, out = lab_state.planb_cli(session, "backup", "now")
        assert code == 0, out
        listed = archives(session)
    return str(listed[-1]["name"])


def test_archive_holds_what_synapse_guide_names(backup_lab: LabSession) -> None:
    """The database dump (custom format, no one-time keys' data), local media, not the
    remote cache, the signing key and homeserver secrets, slapd's data and cn=config."""
    name = _newest(backup_lab)
    listing = on(backup_lab, "fallback", f"planb-borg list --short ::{name}")
    assert listing.returncode == 0, listing.stderr
    paths = set(listing.stdout.split())
    for wanted in (DUMP, "etc/synapse/keys/signing.key", "etc/synapse/keys/macaroon_secret_key",
                   "etc/synapse/homeserver.yaml", "var/backups/planb/slapd-data.ldif",
                   "var/backups/planb/slapd-config.ldif", "etc/planb/mode",
                   "etc/nginx/nginx.conf", "etc/turnserver.conf"):
        assert wanted in paths, f"{wanted} missing from {name}"
    assert any(p.startswith(f"{MEDIA}/local_content/") for p in paths), "no local media"
    assert not any(p.startswith(f"{MEDIA}/remote_content") for p in paths), "remote cache kept"
    dump = on(backup_lab, "fallback", (
        f"planb-borg extract --stdout ::{name} {DUMP} > /var/tmp/h.dump && "
        "pg_restore -l /var/tmp/h.dump; rm -f /var/tmp/h.dump"))
    assert dump.returncode == 0, dump.stderr
    assert "TABLE DATA public users " in dump.stdout
    assert "TABLE DATA public e2e_one_time_keys_json " not in dump.stdout
    assert "TABLE public e2e_one_time_keys_json " in dump.stdout  # the table, empty
    data = on(backup_lab, "fallback",
              f"planb-borg extract --stdout ::{name} var/backups/planb/slapd-data.ldif")
    agents = data.stdout.count("\ndn: uid=")
    assert agents >= 50, f"only {agents} agents in the archived slapcat"
    config = on(backup_lab, "fallback",
                f"planb-borg extract --stdout ::{name} var/backups/planb/slapd-config.ldif")
    assert "dn: cn=config" in config.stdout and "olcSuffix: dc=planb,dc=lab" in config.stdout


def test_unreachable_backup_host_fails_loudly_then_catches_up(backup_lab: LabSession) -> None:
    """The backup host cut off: 'backup now' exits 1 naming the host and why; the
    fallback keeps serving; back on the network, the next backup succeeds."""
    veth = backup_lab.topology.host("backup").veth
    before = len(archives(backup_lab))
    subprocess.run(["ip", "link", "set", veth, "down"], check=True, timeout=30)
    try:
        code, out = lab_state.planb_cli(backup_lab, "backup", "now")
        health = on(backup_lab, "fallback", "python3 -c 'import urllib.request as u; "
                    "print(u.urlopen(\"http://127.0.0.1:8008/health\").read().decode())'")
    finally:
        subprocess.run(["ip", "link", "set", veth, "up"], check=True, timeout=30)
    assert code == 1, out
    assert "backup failed on fallback" in out, out
    assert "hint:" in out, out
    assert health.stdout.strip() == "OK", health
    for secret in secrets(backup_lab):
        assert secret not in out
    status = on(backup_lab, "fallback", "systemctl is-failed planb-backup.service")
    assert status.stdout.strip() == "failed", status.stdout
    code, out = lab_state.planb_cli(backup_lab, "backup", "now")
    assert code == 0, out
    assert len(archives(backup_lab)) == before + 1


def test_failover_switches_the_backup_interval(backup_lab: LabSession) -> None:
    """Active: the timer runs every active_interval_minutes (15); standby: back to 360."""
    playbook = planb.PLAYBOOKS_DIR / "failover.yml"

    def switch(mode: str) -> str:
        result = run_playbook(playbook, check_inventory(backup_lab.site),
                              run_dir=new_run_dir(backup_lab.site.state_dir, playbook),
                              extravars=deploy_vars(backup_lab.site)
                              | {"planb_failover_mode": mode},
                              known_hosts=known_hosts_path(backup_lab.site))
        assert result.ok, result.failures
        shown = on(backup_lab, "fallback", "systemctl cat planb-backup.timer; "
                   "systemctl is-active planb-backup.timer")
        return shown.stdout

    try:
        active = switch("active")
        assert "OnUnitInactiveSec=15min" in active and active.rstrip().endswith("active")
    finally:
        standby = switch("standby")
    assert "OnUnitInactiveSec=15min" not in standby, standby
    assert "OnUnitInactiveSec=360min" in standby and standby.rstrip().endswith("active")


def test_verify_restores_an_archive_somewhere_harmless(backup_lab: LabSession) -> None:
    """'planb backup verify' restores the newest archive into a scratch database and a
    scratch slapd.d, marks it verified, and leaves nothing behind."""
    name = _newest(backup_lab)
    code, out = lab_state.planb_cli(backup_lab, "backup", "verify", "--json")
    assert code == 0, out
    [done] = json.loads(out[out.index("["):])
    assert done["archive"] == name, done
    assert "users" in done["report"] and "entries restored" in done["report"], done
    print(f"verify: {done}")
    assert {str(a["name"]): a["verified"] for a in archives(backup_lab)}[name] is True
    left = on(backup_lab, "fallback", "ls /var/tmp; runuser -u postgres -- psql -tAc "
              "'SELECT datname FROM pg_database'")
    assert "planb-verify" not in left.stdout and "planb_verify" not in left.stdout, left.stdout


def test_a_corrupted_archive_is_refused_naming_it(backup_lab: LabSession) -> None:
    """Bytes overwritten in the middle of every segment of the repository: verify exits
    1 naming the archive (the repository is put back after)."""
    name = _newest(backup_lab)
    repo = "/var/lib/planb-backup/repos/fallback"
    broken = on(backup_lab, "backup", (
        f"cp -a {repo} /var/tmp/repo.orig && for f in {repo}/data/*/*; do "
        "printf 'planb-was-here!!' | dd of=$f bs=1 seek=$(( $(stat -c %s $f) / 2 )) "
        "conv=notrunc status=none; done"))
    assert broken.returncode == 0, broken.stderr
    try:
        code, out = lab_state.planb_cli(backup_lab, "backup", "verify", "--archive", name)
    finally:
        put_back = on(backup_lab, "backup", f"rm -rf {repo} && mv /var/tmp/repo.orig {repo}")
    assert put_back.returncode == 0, put_back.stderr
    assert code == 1, out
    assert f"archive {name} of fallback failed verification" in out, out


def test_export_key(backup_lab: LabSession, tmp_path: Path) -> None:
    """'planb backup export-key' writes borg's key file (0600), never printing it."""
    code, out = lab_state.planb_cli(backup_lab, "backup", "export-key", "-o", str(tmp_path))
    assert code == 0, out
    key = tmp_path / "fallback.borg-key"
    assert key.read_text().startswith("BORG_KEY "), key.read_text()[:20]
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.read_text().splitlines()[1] not in out


def test_no_secret_in_logs(backup_lab: LabSession) -> None:
    """Neither the passphrase nor the database password is in the backup journal, the
    deploys' artifacts or 'planb backup list'."""
    journal = on(backup_lab, "fallback", "journalctl -u planb-backup --no-pager -o cat")
    code, listed = lab_state.planb_cli(backup_lab, "backup", "list")
    assert code == 0, listed
    artifacts = "".join(p.read_text(errors="replace")
                        for p in (backup_lab.site.state_dir / "runs").rglob("*")
                        if p.is_file() and p.suffix in ("", ".json", ".txt", ".log"))
    for secret in secrets(backup_lab):
        assert secret not in journal.stdout
        assert secret not in listed
        assert secret not in artifacts
