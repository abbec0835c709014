"""Issue 13, faults: backups that are late, failed or cannot reach the backup host show
red in 'planb verify' (backup.fresh) and 'planb failover status'; a run missed while
the host was off is caught up after boot; a backup taken while the account sync writes
to slapd and Synapse restores whole.

On the shared backup lab (tests/integration/backup_lab.py); each test puts back what
it changed (the backup host's link, the catch-up stamp), so modules after it find the
lab as it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from planb.backup.fresh import freshness
from planb.directory.lab_churn import Churn
from tests.integration import lab_state
from tests.integration.backup_lab import CATCH_UP_MINUTES
from tests.integration.conftest import LabSession
from tests.integration.lab_state import on

pytestmark = pytest.mark.lab

STAMP = "/var/lib/planb/backup/last-success"


def archives(session: LabSession) -> list[str]:
    code, out = lab_state.planb_cli(session, "backup", "list", "--json")
    assert code == 0, out
    return [str(a["name"]) for a in json.loads(out[out.index("["):])]


def backup_now(session: LabSession) -> None:
    code, out = lab_state.planb_cli(session, "backup", "now")
    assert code == 0, out


def fresh_check(session: LabSession) -> dict[str, object]:
    """'planb verify --only backup.fresh' on the fallback: its one result."""
    code, out = lab_state.planb_cli(session, "verify", "--only", "backup.fresh", "--json")
    report, _ = json.JSONDecoder().raw_decode(out[out.index("{"):])
    [result] = [r for r in report["results"] if r["name"] == "backup.fresh"]
    assert (code == 0) == (result["status"] == "pass"), (code, out)
    return dict(result)


def status_json(session: LabSession) -> list[dict[str, object]]:
    code, out = lab_state.planb_cli(session, "failover", "status", "--json")
    assert code == 0, out
    return list(json.loads(out[out.index("{"):])["backups"])


@contextmanager
def backup_host_cut_off(session: LabSession) -> Iterator[None]:
    veth = session.topology.host("backup").veth
    subprocess.run(["ip", "link", "set", veth, "down"], check=True, timeout=30)
    try:
        yield
    finally:
        subprocess.run(["ip", "link", "set", veth, "up"], check=True, timeout=30)


def test_backups_on_time_failed_or_unreachable_show_in_verify_and_status(
        backup_lab: LabSession) -> None:
    """Green after a backup; red naming the backup host while it is cut off; red
    saying the last run failed once it is back, until the next backup passes; late
    when the newest archive is older than the interval (a 1-minute one here)."""
    backup_now(backup_lab)
    green = fresh_check(backup_lab)
    assert green["status"] == "pass" and "newest archive fallback-" in str(green["message"])
    [ok] = status_json(backup_lab)
    assert ok["state"] == "ok" and ok["host"] == "fallback", ok
    code, shown = lab_state.planb_cli(backup_lab, "failover", "status")
    assert "backup of fallback: ok newest archive" in shown, shown

    backup = backup_lab.topology.host("backup")
    with backup_host_cut_off(backup_lab):
        cut = fresh_check(backup_lab)
        [unreachable] = status_json(backup_lab)
        code, out = lab_state.planb_cli(backup_lab, "backup", "now")
        assert code == 1, out
    assert cut["status"] == "fail", cut
    assert f"cannot read this host's repository on backup ({backup.address})" \
        in str(cut["message"]), cut
    assert unreachable["state"] == "unreachable", unreachable

    failed = fresh_check(backup_lab)
    assert failed["status"] == "fail", failed
    assert "last run of planb-backup.service failed (exit-code)" in str(failed["message"])
    assert status_json(backup_lab)[0]["state"] == "failed"
    backup_now(backup_lab)
    assert fresh_check(backup_lab)["status"] == "pass"

    # Late: the same archive judged against a 1-minute interval less 55 s of margin (5 s
    # allowed: no minute to wait in CI).
    site = backup_lab.site
    short = replace(site, backup=replace(site.backup, standby_interval_minutes=1))
    [now] = freshness(short, margin=-55)
    assert now.state in ("ok", "late"), now
    if now.state == "ok":
        assert now.age_seconds is not None and now.age_seconds <= 5
        time.sleep(max(0.0, 7 - now.age_seconds))
    [late] = freshness(short, margin=-55)
    assert late.state == "late", late
    assert "over the 5 s allowed in standby" in late.detail, late.detail


def _said(session: LabSession, since: str) -> str:
    return on(session, "fallback", "journalctl -u planb-backup-catchup -o cat --no-pager "
              f"--since {since}").stdout


def _wait_idle(session: LabSession, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        state = on(session, "fallback", "systemctl show -p ActiveState --value "
                   "planb-backup.service").stdout.strip()
        if state in ("inactive", "failed"):
            return
        time.sleep(2)
    raise AssertionError(f"planb-backup.service still {state} after {timeout} s")


def _healthy(session: LabSession, timeout: float = 180) -> None:
    """Synapse answers again on the fallback (after its host booted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = on(session, "fallback", "python3 -c 'import urllib.request as u; print("
                    "u.urlopen(\"http://127.0.0.1:8008/health\").read().decode())'")
        if health.stdout.strip() == "OK":
            return
        time.sleep(3)
    raise AssertionError("Synapse did not come back after the fallback host booted")


def test_a_run_missed_while_the_host_was_off_is_caught_up(backup_lab: LabSession) -> None:
    """A recent backup: the catch-up starts nothing. The host powered off past its
    interval (the last backup that passed made older than it): a few minutes after it
    boots again, the catch-up timer starts a backup by the host alone, instead of a
    whole interval after boot."""
    backup_now(backup_lab)
    before = archives(backup_lab)
    stamp = on(backup_lab, "fallback", f"stat -c %Y {STAMP}")
    assert stamp.returncode == 0, f"a passing run did not touch {STAMP}: {stamp.stderr}"
    assert abs(int(stamp.stdout) - time.time()) < 600, stamp.stdout
    since = f"@{int(time.time()) - 1}"
    on(backup_lab, "fallback", "systemctl start planb-backup-catchup.service")
    assert "nothing to catch up" in _said(backup_lab, since)
    time.sleep(3)
    _wait_idle(backup_lab)
    assert archives(backup_lab) == before, "a backup started though the last one is recent"

    interval = backup_lab.site.backup.standby_interval_minutes * 60
    old = int(time.time()) - interval - 120
    on(backup_lab, "fallback", f"touch -d @{old} {STAMP}")
    lab = backup_lab.lab
    assert lab.stop_host("fallback")
    booted = time.time()
    lab.start_host("fallback")
    try:
        deadline = time.monotonic() + 330  # the timer fires 1 min after boot here
        said = ""
        while time.monotonic() < deadline and "catching up now" not in said:
            time.sleep(10)
            said = _said(backup_lab, f"@{int(booted)}")
        assert "catching up now" in said, f"no catch-up within 5.5 min of boot: {said!r}"
        timer = on(backup_lab, "fallback", "systemctl cat planb-backup-catchup.timer")
        assert f"OnBootSec={CATCH_UP_MINUTES}min" in timer.stdout, timer.stdout
        time.sleep(3)
        _wait_idle(backup_lab)
        after = archives(backup_lab)
        assert len(after) == len(before) + 1, (before, after)
        newer = int(on(backup_lab, "fallback", f"stat -c %Y {STAMP}").stdout)
        assert newer > booted, "the caught-up backup did not record that it passed"
        print(f"catch-up: {said.strip()}; {after[-1]} made "
              f"{newer - booted:.0f} s after the host booted")
    finally:
        _healthy(backup_lab)


def test_a_backup_taken_while_the_sync_writes_restores_whole(backup_lab: LabSession) -> None:
    """The account sync applies a churn (hires, leavers, renames, moves: slapd and
    Synapse both written) while 'planb backup now' runs; the archive made then
    restores (into a fresh database and slapd.d) and a sync after it completes."""
    # Enough changes to keep the sync writing through the dumps: more leavers than
    # safety.max_deactivate_percent allows, hence --force below.
    record, _ = Churn(backup_lab.site).run(25.0)
    assert sum(record.counts().values()) >= 10, record.counts()
    before = set(archives(backup_lab))
    count = ("ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b "
             f"ou=people,{backup_lab.site.fallback.ldap_suffix} '(uid=*)' dn | grep -c '^dn:'")
    agents = on(backup_lab, "fallback", count).stdout.strip()
    # The sync in its own process (the CLI runner in a thread would share sys.stdout).
    writer = subprocess.Popen(
        [sys.executable, "-m", "planb.cli.main", "--config", str(backup_lab.site.source),
         "sync", "apply", "--yes", "--adopt", "--force"], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        # The backup starts once the sync has written its first entry, while it runs.
        deadline = time.monotonic() + 180
        while writer.poll() is None and time.monotonic() < deadline \
                and on(backup_lab, "fallback", count).stdout.strip() == agents:
            time.sleep(0.2)
        assert writer.poll() is None, "the sync ended before it could be caught writing"
        code, out = lab_state.planb_cli(backup_lab, "backup", "now")
        still = writer.poll() is None
    finally:
        synced, _ = writer.communicate(timeout=900)
    assert code == 0, out
    assert writer.returncode == 0 and "applied" in synced, synced
    window = f"sync still running when the backup ended: {still}"
    [made] = sorted(set(archives(backup_lab)) - before)
    code, out = lab_state.planb_cli(backup_lab, "backup", "verify", "--archive", made, "--json")
    assert code == 0, out
    [done] = json.loads(out[out.index("["):])
    assert "users" in done["report"] and "entries restored" in done["report"], done
    print(f"backup during sync: {window}; verify: {done['report']}")
    # What the sync had not written when the dumps were taken, it writes next time.
    lab_state.ensure_synced(backup_lab)
