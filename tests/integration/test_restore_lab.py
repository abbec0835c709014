"""Issue 13: 'planb restore' on the backup lab (tests/integration/backup_lab.py).

- the fallback is active, an agent logs in, posts m1, a backup, m2, a backup, m3;
  the fallback is wiped (database, directory, Synapse's keys, media, mode) and
  deployed again: an empty fallback with a NEW signing key, whose own backup makes no
  archive (it never held data); 'planb restore' puts the newest archive back: the
  agent's session works, m1 and m2 are there and m3 is not, the directory's agents and
  enrolments, the signing key and the active mode are back, and 'planb verify' (run by
  restore) is green; 'planb restore --previous' then takes the archive before (m2 gone);
- a fallback that holds data is refused without --force, saying how much, unchanged;
- a corrupted and a truncated repository are refused naming the archive, nothing
  changed on the fallback.

A module of its own (test_backup_lab.py is near its size limit), on the same session
backup lab; it leaves the fallback in standby with the agents it found.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from planb.config import SiteConfig
from planb.directory.identifiers import room_aliases
from planb.directory.ldap_source import read_primary
from planb.directory.sync import Sync
from planb.messaging.sync_target import target_for
from planb.provisioning.deploy import run_deploy
from tests.integration import lab_state
from tests.integration.conftest import LabSession
from tests.integration.lab_state import on
from tests.integration.test_active_fallback_lab import https, login, password_of

pytestmark = pytest.mark.lab
REPO = "/var/lib/planb-backup/repos/fallback"
#: What the fallback holds, read on the host: counts and fingerprints, no data.
STATE = ("planb-backup-counts; sha256sum /etc/synapse/keys/signing.key | cut -c1-64; "
         "cat /etc/planb/mode; slapcat -b dc=planb,dc=lab | grep -c '^dn: .*ou=people'; "
         "slapcat -b dc=planb,dc=lab | grep -c '^planbEnrol'; "
         "runuser -u postgres -- psql -tAc \"SELECT datname FROM pg_database "
         "WHERE datname LIKE 'synapse_%'\"; ls /var/tmp | grep -c planb-restore; true")


def state(session: LabSession) -> list[str]:
    done = on(session, "fallback", STATE)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")


def archive_names(session: LabSession) -> list[str]:
    code, out = lab_state.planb_cli(session, "backup", "list", "--json")
    assert code == 0, out
    return [str(a["name"]) for a in json.loads(out[out.index("["):])]


def restore(session: LabSession, *args: str) -> tuple[int, str, dict[str, object]]:
    started = time.monotonic()
    code, out = lab_state.planb_cli(session, "restore", "--json", *args)
    print(f"planb restore {' '.join(args)}: exit {code} in {time.monotonic() - started:.1f} s")
    found = json.loads(out[out.index("{"):]) if code == 0 else {}
    return code, out, found


@pytest.fixture
def active(backup_lab: LabSession) -> Iterator[LabSession]:
    """The fallback active, its backup timer stopped (backups only when the test asks);
    back in standby after, the timer running."""
    lab_state.ensure_standby(backup_lab)
    code, out = lab_state.planb_cli(backup_lab, "failover", "activate", "--reason",
                                    "integration tests: restore", "--yes")
    assert code == 0, out
    on(backup_lab, "fallback", "systemctl stop planb-backup.timer")
    try:
        yield backup_lab
    finally:
        code, out = lab_state.planb_cli(backup_lab, "failover", "deactivate", "--reason",
                                        "integration tests: restore done", "--yes")
        assert code == 0, out
        on(backup_lab, "fallback", "systemctl start planb-backup.timer")


class Agent:
    """A synced agent posting in their department room through nginx."""

    def __init__(self, session: LabSession) -> None:
        site: SiteConfig = session.site
        self.site = site
        self.address = session.topology.host("fallback").address
        target = target_for(site)
        assert target is not None
        entries = Sync(site).read_fallback().entries
        agent = next(a for a in read_primary(site).agents
                     if a.enabled and a.id in entries and entries[a.id].localpart)
        status, answer = login(site, self.address, agent.login,
                               password_of(site, agent.login))
        assert status == 200, answer.get("errcode")
        self.token = str(answer["access_token"])
        alias = room_aliases({agent.department}, target.names.prefix)[agent.department]
        full = urllib.parse.quote(f"#{alias}:{site.matrix.server_name}", safe="")
        status, answer = self.call("GET", f"/_matrix/client/v3/directory/room/{full}")
        assert status == 200, answer
        self.room = urllib.parse.quote(str(answer["room_id"]), safe="")
        self.nonce = f"{time.time_ns()}"

    def call(self, method: str, path: str, body: object = None,
             ) -> tuple[int, dict[str, object]]:
        return https(self.site, self.address, method, path, body, token=self.token)

    def post(self, label: str) -> None:
        status, answer = self.call(
            "PUT", f"/_matrix/client/v3/rooms/{self.room}/send/m.room.message/"
                   f"{label}-{self.nonce}",
            {"msgtype": "m.text", "body": f"restore test {label} {self.nonce}"})
        assert status == 200, answer

    def seen(self) -> set[str]:
        """Which of this run's messages the room holds, read with the agent's token."""
        status, answer = self.call("GET", f"/_matrix/client/v3/rooms/{self.room}/messages"
                                          "?dir=b&limit=100")
        assert status == 200, answer
        bodies = [str(e.get("content", {}).get("body", ""))  # type: ignore[union-attr]
                  for e in answer["chunk"]]  # type: ignore[union-attr]
        return {b.split()[2] for b in bodies if b.endswith(self.nonce)}


def backup_now(session: LabSession) -> None:
    code, out = lab_state.planb_cli(session, "backup", "now")
    assert code == 0, out


def wipe_and_redeploy(session: LabSession) -> None:
    """What a lost fallback leaves: a host deployed from nothing (database, directory,
    Synapse's keys, media, planb's mode and backup marker gone, then site.yml)."""
    wiped = on(session, "fallback", (
        "set -e; systemctl stop synapse slapd; runuser -u postgres -- dropdb synapse; "
        "runuser -u postgres -- dropdb --if-exists synapse_before_restore; "
        "rm -rf /etc/synapse/keys /var/lib/synapse/media_store/* /etc/ldap/slapd.d "
        "/var/lib/ldap/* /etc/planb/mode /var/lib/planb/backup/held-data "
        "/var/backups/planb/*"), timeout=300)
    assert wiped.returncode == 0, wiped.stderr
    result = run_deploy(session.site, limit="fallback")
    assert result.ok, result.failures


def test_restore_onto_a_wiped_fallback_then_previous(active: LabSession) -> None:
    agent = Agent(active)
    agent.post("m1")
    backup_now(active)
    agent.post("m2")
    backup_now(active)
    agent.post("m3")
    names = archive_names(active)
    first, second = names[-2], names[-1]
    before = state(active)
    wipe_and_redeploy(active)
    empty = state(active)
    assert empty[0].startswith("users=0 ") and empty[0].endswith(" agents=0"), empty
    assert empty[1] != before[1], "the redeployed fallback kept its signing key"
    # The empty fallback's own backup makes no archive in front of the real ones.
    backup_now(active)
    assert archive_names(active) == names

    code, out, found = restore(active)
    assert code == 0, out
    [done] = found["restored"]  # type: ignore[misc]
    print(f"restored: {done}")
    assert done["archive"] == second, done
    assert found["verify"]["ok"] is True, out  # type: ignore[index]
    after = state(active)
    assert after[0].split()[0] == before[0].split()[0], (before, after)  # users
    assert after[1] == before[1], "the signing key changed"
    assert after[2:5] == before[2:5], (before, after)  # mode, agents, enrolments
    assert after[5:] == ["synapse_before_restore", "0", ""], after
    assert agent.seen() == {"m1", "m2"}, "the session or messages up to the archive"
    status, whoami = agent.call("GET", "/_matrix/client/v3/account/whoami")
    assert status == 200, whoami

    # A backup the restored host's timer made meanwhile is dropped: 'previous' then
    # means the archive before 'second'.
    on(active, "fallback", "systemctl stop planb-backup.timer")
    for extra in archive_names(active)[len(names):]:
        on(active, "fallback", f"planb-borg delete ::{extra}")
    code, out, found = restore(active, "--previous", "--force")
    assert code == 0, out
    [done] = found["restored"]  # type: ignore[misc]
    assert done["archive"] == first, done
    assert agent.seen() == {"m1"}
    on(active, "fallback", "systemctl stop planb-backup.timer")


def test_refused_over_a_fallback_that_holds_data(backup_lab: LabSession) -> None:
    """Without --force: exit 1, how much would be lost, nothing changed."""
    lab_state.ensure_standby(backup_lab)
    if not archive_names(backup_lab):
        backup_now(backup_lab)
    before = state(backup_lab)
    code, out, _ = restore(backup_lab)
    assert code == 1, out
    assert "refusing to restore over a fallback that holds data: fallback holds " in out, out
    assert " users, " in out and " agents that restoring fallback-" in out, out
    assert "--force" in out, out
    assert state(backup_lab) == before


@pytest.mark.parametrize("damage", ["corrupt", "truncate"])
def test_a_damaged_archive_is_refused_naming_it_and_nothing_changes(
        backup_lab: LabSession, damage: str) -> None:
    """Bytes overwritten in the middle of each segment, or each segment cut short:
    restore (even forced) exits 1 naming the archive; the fallback is as it was."""
    lab_state.ensure_standby(backup_lab)
    names = archive_names(backup_lab)
    if not names:
        backup_now(backup_lab)
        names = archive_names(backup_lab)
    name = names[-1]
    before = state(backup_lab)
    harm = ("printf 'planb-was-here!!' | dd of=$f bs=1 seek=$(( $(stat -c %s $f) / 2 )) "
            "conv=notrunc status=none" if damage == "corrupt"
            else "truncate -s $(( $(stat -c %s $f) / 2 )) $f")
    broken = on(backup_lab, "backup", f"cp -a {REPO} /var/tmp/repo.orig && "
                                      f"for f in {REPO}/data/*/*; do {harm}; done")
    assert broken.returncode == 0, broken.stderr
    try:
        code, out, _ = restore(backup_lab, "--archive", name, "--force")
    finally:
        put_back = on(backup_lab, "backup", f"rm -rf {REPO} && mv /var/tmp/repo.orig {REPO}")
    assert put_back.returncode == 0, put_back.stderr
    assert code == 1, out
    assert f"archive {name} of fallback failed its check; nothing was changed" in out, out
    assert state(backup_lab) == before
    services = on(backup_lab, "fallback", "systemctl is-active synapse slapd nginx "
                                          "planb-backup.timer")
    assert services.stdout.split() == ["active"] * 4, services.stdout
