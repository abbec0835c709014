"""Whether backups are on time (planb.backup.fresh), from the host probe's answers."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from planb.backup.core import BackupError
from planb.backup.fresh import PROBE, assess, limit_for
from planb.config import LabConfig, SiteConfig, load_config
from planb.inventory import BACKUP, InventoryHost
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.mode import FailoverState
from planb.verify.registry import CHECKS, hosts_of

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
STANDBY = FailoverState()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SiteConfig:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    lab = LabConfig(subnet="10.77.7.0/24", bridge="planb7")
    path = write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge, backup=True),
                          tmp_path / "key", lab)
    path.write_text(path.read_text().replace("backup:\n  enabled: false",
                                             "backup:\n  enabled: true"))
    return load_config(path)


def answer(age_s: float | None = 60, *, result: str = "success", timer: str = "standby",
           rc: int = 0, err: str = "", held: str = "yes") -> str:
    """The probe's output for a newest archive ``age_s`` old (None: no archive)."""
    from datetime import UTC, datetime
    archives = [] if age_s is None else [{
        "name": "fallback-20270115T075900Z", "id": "ab",
        "start": datetime.fromtimestamp(NOW - age_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")}]
    lines = [f"Result={result}", "ActiveState=inactive", f"timer={timer}", f"held={held}",
             f"now={NOW}", "offset=+00:00", f"borg_rc={rc}"]
    lines += [f"borg_err={line}" for line in err.splitlines()]
    lines.append("borg_json=" + (json.dumps({"archives": archives}) if rc == 0 else ""))
    return "\n".join(lines) + "\n"


def test_the_probe_is_valid_shell() -> None:
    subprocess.run(["sh", "-n", "-c", PROBE], check=True)


def test_a_recent_archive_is_ok(site: SiteConfig) -> None:
    found = assess("fallback", answer(300), site=site, state=STANDBY)
    assert found.ok and found.state == "ok", found
    assert found.newest == "fallback-20270115T075900Z" and found.age_seconds == 300
    # standby: 360 min and a tenth of it
    assert found.limit_seconds == 360 * 60 + 36 * 60
    assert "5 min old" in found.detail and "in standby" in found.detail


def test_an_archive_older_than_the_interval_and_margin_is_late(site: SiteConfig) -> None:
    limit = 360 * 60 + 36 * 60
    assert assess("fallback", answer(limit - 5), site=site, state=STANDBY).ok
    late = assess("fallback", answer(limit + 5), site=site, state=STANDBY)
    assert late.state == "late", late
    assert "newest archive fallback-20270115T075900Z is 6.6 h old" in late.detail, late.detail


def test_active_mode_uses_the_active_interval(site: SiteConfig) -> None:
    since = "2027-01-15T06:00:00+00:00"  # two hours before NOW
    active = FailoverState(mode="active", since=since)
    assert limit_for(site, active, NOW) == ("active", 15 * 60 + 600)
    late = assess("fallback", answer(30 * 60, timer="active"), site=site, state=active)
    assert late.state == "late" and "in active" in late.detail, late
    assert assess("fallback", answer(20 * 60, timer="active"), site=site, state=active).ok


def test_just_after_activation_the_standby_archive_still_counts(site: SiteConfig) -> None:
    active = FailoverState(mode="active", since="2027-01-15T07:55:00+00:00")  # 5 min ago
    found = assess("fallback", answer(3 * 3600, timer="active"), site=site, state=active)
    assert found.ok, found


def test_the_timer_must_follow_the_mode(site: SiteConfig) -> None:
    active = FailoverState(mode="active", since="2027-01-15T06:00:00+00:00")
    found = assess("fallback", answer(60, timer="standby"), site=site, state=active)
    assert found.state == "failed" and "standby interval while the fallback is active" \
        in found.detail, found


def test_a_failed_last_run_is_red_even_with_a_recent_archive(site: SiteConfig) -> None:
    found = assess("fallback", answer(60, result="exit-code"), site=site, state=STANDBY)
    assert found.state == "failed", found
    assert "last run of planb-backup.service failed (exit-code)" in found.detail


def test_an_unreachable_backup_host_is_named(site: SiteConfig) -> None:
    found = assess("fallback", answer(rc=2, err="Remote: ssh: connect to host 10.0.0.20 "
                                                 "port 22: Connection timed out\n"
                                                 "Connection closed by remote host"),
                   site=site, state=STANDBY, backup_host="backup (10.0.0.20)")
    assert found.state == "unreachable", found
    assert found.detail.startswith("cannot read this host's repository on backup "
                                   "(10.0.0.20): Remote: ssh"), found.detail


def test_no_archive_and_no_backup_role(site: SiteConfig) -> None:
    assert assess("fallback", answer(None), site=site, state=STANDBY).state == "none"
    empty = assess("fallback", answer(None, held="no"), site=site, state=STANDBY)
    assert empty.ok and "holds no data yet" in empty.detail, empty
    missing = assess("fallback", answer(rc=127), site=site, state=STANDBY)
    assert missing.state == "failed" and "planb deploy" in missing.detail
    with pytest.raises(BackupError, match="unexpected answer from fallback"):
        assess("fallback", "sh: 1: systemctl: not found\n", site=site, state=STANDBY)


def test_a_given_margin_replaces_the_usual_one(site: SiteConfig) -> None:
    short = replace(site, backup=replace(site.backup, standby_interval_minutes=1))
    assert assess("fallback", answer(59), site=short, state=STANDBY, margin=0).ok
    assert assess("fallback", answer(61), site=short, state=STANDBY, margin=0).state == "late"


def test_verify_leaves_the_backup_host_out_of_fallback_checks() -> None:
    both = InventoryHost("odd", "10.0.0.9", ("fallback_proxy", BACKUP))
    plain = InventoryHost("fallback", "10.0.0.2", ("fallback_proxy",))
    backup = InventoryHost("backup", "10.0.0.20", (BACKUP,))
    fresh = next(c for c in CHECKS if c.name == "backup.fresh")
    ports = next(c for c in CHECKS if c.name == "ports")
    for check in (fresh, ports):
        assert hosts_of(check, [both, plain, backup]) == [plain]
