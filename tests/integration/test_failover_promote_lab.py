"""``planb failover promote``'s refusals and a forced promotion, on the HA lab.

On the HA lab shared by the issue-14 modules (tests/integration/ha_lab.py):

- with the fallback host up, promote is refused (exit 1): the old primary answers on
  SSH and HTTPS; nothing changes (the standby stays a replica, its Synapse stopped,
  no inventory record, no journal) and the audit log gets exactly one ``refused``;
- with real lag (the standby's WAL replay paused while the fallback writes) beyond
  ``objectives.rpo_seconds`` (set to 5 s for the module) and the fallback cut off the
  network, promote is refused for the lag alone; ``--force`` promotes, and its signed
  journal records the lag accepted; the standby then serves: PostgreSQL out of
  recovery, Synapse active, the service address moved to it by keepalived, the
  promotion recorded in the inventory (the lost host in ``fallback_lost``).

The lab is put back as found: the fallback reconnected, the record removed, the
standby seeded again from the fallback by a deploy limited to it, the service
address back on the fallback.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from planb.config import load_config
from planb.inventory import FALLBACK_LOST, FALLBACK_PROMOTED, PROMOTION_FILE, load_hosts
from planb.mode import AuditLog
from planb.provisioning.deploy import run_deploy
from planb.reports.store import journals_dir
from tests.integration import lab_state
from tests.integration.conftest import LabSession
from tests.integration.lab_state import on


def address(session: LabSession) -> str:
    """The site's service address (the HA lab's .30)."""
    found = session.site.fallback.standby.service_address
    assert found, "the HA lab has a service address"
    return found


pytestmark = pytest.mark.lab
PSQL = "runuser -u postgres -- psql -XAtq -c"
RPO = 5


def promote(session: LabSession, *extra: str) -> tuple[int, str]:
    return lab_state.planb_cli(session, "failover", "promote", "--reason", "lab test",
                               "--yes", *extra)


def sql(session: LabSession, host: str, query: str) -> str:
    done = on(session, host, f"{PSQL} \"{query}\"", timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def audit_results(session: LabSession) -> list[tuple[str, str | None, str]]:
    return [(e.event, e.step, e.result) for e in AuditLog(session.site.state_dir).entries()]


def journals(session: LabSession) -> set[Path]:
    return set(journals_dir(session.site.state_dir).glob("*-promotion-*.json"))


def holds(session: LabSession, host: str, address: str) -> bool:
    done = on(session, host, "ip -o -4 addr show", timeout=30)
    return done.returncode == 0 and f" {address}/" in done.stdout


def unit_active(session: LabSession, host: str, unit: str) -> bool:
    return on(session, host, f"systemctl is-active --quiet {unit}").returncode == 0


def wait_for(what: str, check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(1)


def set_link(session: LabSession, host: str, state: str) -> None:
    veth = session.topology.host(host).veth
    subprocess.run(["ip", "link", "set", veth, state], check=True, timeout=30)


def test_refused_while_the_old_primary_answers(ha_lab: LabSession) -> None:
    session = ha_lab
    before, stored = len(audit_results(session)), journals(session)
    code, out = promote(session)
    assert code == 1, out
    flat = " ".join(out.split())
    assert "promotion refused" in flat and "fallback" in flat
    assert re.search(r"still answers on ssh:22\b.*https:443", flat), flat
    assert "split brain" in flat and "--force" in flat
    assert "replay lag" not in flat, "the standby is in step: only the old primary refuses"
    # Nothing changed, and the refusal is on the audit log once.
    assert audit_results(session)[before:] == [("promote", None, "requested"),
                                               ("promote", None, "refused")]
    assert journals(session) == stored
    assert not (session.site.inventory_dir / PROMOTION_FILE).exists()
    assert sql(session, "standby", "SELECT pg_is_in_recovery()") == "t"
    assert not unit_active(session, "standby", "synapse")
    assert holds(session, "fallback", address(session))


@pytest.fixture
def low_rpo(ha_lab: LabSession) -> Iterator[LabSession]:
    """objectives.rpo_seconds at 5 s; afterwards the lab put back (see the module)."""
    config = ha_lab.site.source
    text = config.read_text(encoding="utf-8")
    assert "  rpo_seconds: 900\n" in text
    config.write_text(text.replace("  rpo_seconds: 900\n", f"  rpo_seconds: {RPO}\n"),
                      encoding="utf-8")
    assert load_config(config).objectives.rpo_seconds == RPO
    try:
        yield ha_lab
    finally:
        config.write_text(text, encoding="utf-8")
        set_link(ha_lab, "fallback", "up")
        put_back(ha_lab)


def put_back(session: LabSession) -> None:
    """The promotion undone: record removed, the standby seeded again, address home."""
    record = session.site.inventory_dir / PROMOTION_FILE
    if record.exists():
        record.unlink()
    if sql(session, "standby", "SELECT pg_is_in_recovery()") == "t":
        on(session, "standby", f"{PSQL} 'SELECT pg_wal_replay_resume()'")
        return
    result = run_deploy(session.site, limit="standby")
    assert result.ok, result.failures
    assert sql(session, "standby", "SELECT pg_is_in_recovery()") == "t"
    assert not unit_active(session, "standby", "synapse")
    wait_for("the service address back on the fallback",
             lambda: holds(session, "fallback", address(session))
             and not holds(session, "standby", address(session)))
    assert lab_state.planb_cli(session, "verify")[0] == 0


def test_lag_beyond_the_objective_is_refused_and_force_records_it(low_rpo: LabSession
                                                                  ) -> None:
    session = low_rpo
    # Real lag: the standby receives the fallback's WAL but replays none of it.
    sql(session, "standby", "SELECT pg_wal_replay_pause()")
    sql(session, "fallback", "CREATE TABLE planb_lag_probe (at timestamptz); "
        "INSERT INTO planb_lag_probe VALUES (now()); DROP TABLE planb_lag_probe")
    time.sleep(RPO + 2)
    # The old primary cut off: only the lag stands in the way.
    set_link(session, "fallback", "down")
    before, stored = len(audit_results(session)), journals(session)
    code, out = promote(session)
    flat = " ".join(out.split())
    assert code == 1, out
    assert "replay lag" in flat and "(replay paused)" in flat, flat
    assert f"objectives.rpo_seconds ({RPO} s)" in flat and "still answers" not in flat
    assert audit_results(session)[before:] == [("promote", None, "requested"),
                                               ("promote", None, "refused")]
    assert journals(session) == stored
    assert sql(session, "standby", "SELECT pg_is_in_recovery()") == "t"

    code, out = promote(session, "--force", "--json")
    assert code == 0, out
    done = json.loads(out[out.index("{"):])
    assert done["changed"] and done["promoted"] == "standby" and done["lost"] == "fallback"
    [journal] = journals(session) - stored
    payload = json.loads(journal.read_bytes())["payload"]
    assert payload["result"] == "completed", payload["steps"]
    accepted = payload["lag_accepted"]
    assert accepted is not None and accepted["paused"] is True, payload
    assert accepted["seconds"] > RPO and accepted["bytes"] > 0, accepted
    assert payload["rpo_objective_seconds"] == RPO
    assert any("replay lag" in f for f in payload["forced"]), payload["forced"]
    assert payload["old_primary_answering"] == []
    steps = {s["name"]: s["status"] for s in payload["steps"]}
    assert steps == {"check": "ok", "promote-postgresql": "ok", "record": "ok",
                     "start-services": "ok", "service-address": "ok"}, steps
    assert "fence" not in steps  # the old primary did not answer: nothing to fence
    results = [r for _, _, r in audit_results(session)[before + 2:]]
    assert results[0] == "requested" and results[-1] == "completed", results
    assert ("promote", None, "requested") in audit_results(session)[before + 2:]
    assert AuditLog(session.site.state_dir).entries()[before + 2].detail == "forced"
    # The standby serves, and planb now targets it.
    assert sql(session, "standby", "SELECT pg_is_in_recovery()") == "f"
    assert unit_active(session, "standby", "synapse")
    assert holds(session, "standby", address(session))
    hosts = {h.name: h for h in load_hosts(session.site)}
    assert {"fallback_messaging", "fallback_proxy", FALLBACK_PROMOTED} <= set(
        hosts["standby"].groups)
    assert hosts["fallback"].groups == (FALLBACK_LOST,)
    # Asked again: already done, nothing changes.
    code, out = promote(session, "--force")
    assert code == 0 and "already promoted" in out, out
