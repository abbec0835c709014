"""Issue 13, first steps: the fallback's backups on a lab with a ``backup`` host.

On the backup lab (tests/integration/backup_lab.py: the session's second lab, with a
backup host, shared with test_fallback_lost_lab.py): deployed, its backup role run again
(which changes nothing), synced, then backed up with 'planb backup now'. The archive
must hold what Synapse's backup guide names (the database dump without
e2e_one_time_keys_json's data, local media but not the remote cache, the signing key)
and the directory's slapcat; a backup host that cannot be reached fails the backup
loudly, and the next run catches up; the failover playbook switches the timer to the
active interval and back; no secret shows anywhere.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import planb
from planb.hostkeys import known_hosts_path
from planb.inventory import check_inventory, vault_value
from planb.provisioning import new_run_dir, run_playbook
from planb.provisioning.deploy import deploy_vars
from tests.integration import backup_lab as backup_lab_module
from tests.integration import lab_state
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab

DUMP = "root/.borgmatic/postgresql_databases/127.0.0.1/synapse"
MEDIA = backup_lab_module.MEDIA
on = backup_lab_module.on


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
    assert lines[0].startswith('restrict,command="borg serve --append-only --restrict-to-path '
                               '/var/lib/planb-backup/repos/fallback" ssh-ed25519 '), lines
    shell = on(backup_lab, "fallback",
               "ssh -i /root/.ssh/planb_backup_ed25519 -o BatchMode=yes "
               "-o UserKnownHostsFile=/etc/borgmatic/known_hosts "
               f"borg@{backup_lab.topology.host('backup').address} cat /etc/passwd")
    assert "root:" not in shell.stdout, "the fallback's key opened a shell on the backup host"


def test_the_fallbacks_key_cannot_erase_its_backups(backup_lab: LabSession) -> None:
    """Append-only: the repository deleted with the fallback's own key (what an intruder
    on the fallback holds) is refused, and its archives are all still there (the
    repository is copied aside first and put back after, whatever happens)."""
    before = [a["name"] for a in archives(backup_lab)]
    assert before or lab_state.planb_cli(backup_lab, "backup", "now")[0] == 0
    before = [a["name"] for a in archives(backup_lab)]
    repo = "/var/lib/planb-backup/repos/fallback"
    saved = on(backup_lab, "backup", f"rm -rf /var/tmp/repo.saved && cp -a {repo} "
                                     "/var/tmp/repo.saved")
    assert saved.returncode == 0, saved.stderr
    try:
        erase = on(backup_lab, "fallback", "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=YES "
                   "planb-borg delete --force 2>&1")
        after = [a["name"] for a in archives(backup_lab)]
    finally:
        # Put back only if it was destroyed: an older copy is a rollback borg refuses.
        put_back = on(backup_lab, "backup", f"if [ ! -e {repo}/config ]; then rm -rf {repo} "
                      f"&& mv /var/tmp/repo.saved {repo}; fi; rm -rf /var/tmp/repo.saved")
    assert put_back.returncode == 0, put_back.stderr
    assert erase.returncode != 0 and "append-only" in erase.stdout, erase.stdout
    assert after == before, (before, after)


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
    """Neither the passphrase, the database password nor the repository key is in the
    fallback's or the backup host's whole journal, the deploys' artifacts, planb's
    signed journals and reports, or what 'backup list', 'verify' and 'failover
    status' print."""
    journal = "".join(on(backup_lab, host, "journalctl --no-pager -o cat", timeout=300).stdout
                      for host in ("fallback", "backup"))
    assert "planb-backup" in journal, "no backup in the journal: nothing was checked"
    printed = ""
    for command in (("backup", "list"), ("verify", "--only", "backup"),
                    ("failover", "status", "--json")):
        code, out = lab_state.planb_cli(backup_lab, *command)
        printed += out
    # The state dir, but not lab/ (the lab hosts' own disks) nor keys/.
    top = backup_lab.site.state_dir
    state = "".join(p.read_text(errors="replace") for p in top.rglob("*")
                    if p.is_file() and p.suffix in ("", ".json", ".jsonl", ".txt", ".log",
                                                    ".md", ".html")
                    and p.relative_to(top).parts[0] not in ("lab", "keys")
                    and p.stat().st_size < 50_000_000)
    key = on(backup_lab, "fallback", "planb-borg key export").stdout.splitlines()
    assert key and key[0].startswith("BORG_KEY "), key[:1]
    for secret in [*secrets(backup_lab), max(key[1:], key=len)]:
        assert len(secret) >= 20
        assert secret not in journal
        assert secret not in printed
        assert secret not in state
