"""The account sync against the real lab: primary slapd -> fallback slapd, over LDAPS.

Runs on the session's lab (300 agents), synced when the module starts; each test
leaves the fallback directory converged, so they pass in any order. A full sync into
an empty fallback (every active agent, every department group, then an empty plan);
agents bind to the fallback with their primary password; ``planb lab churn --percent
5`` and a plan that lists exactly what churn recorded, then apply converges and the
leavers can no longer bind; the refusals (primary unreachable, too many
deactivations, empty source, failover active) change nothing; an apply killed
with SIGKILL midway converges on the next run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import Connection
from ldap3.core.exceptions import LDAPException
from typer.testing import CliRunner

from planb.cli.main import app
from planb.config import SiteConfig
from planb.directory.fallback_ldap import Layout, read_groups
from planb.directory.ldap_conn import LdapEndpoint
from planb.directory.ldap_source import read_primary
from planb.directory.model import SourceResult
from planb.directory.snapshot import write_snapshot
from planb.directory.sync import Sync
from planb.directory.targets import FallbackState
from planb.errors import EXIT_ERROR, EXIT_USAGE
from planb.lab.agents import agent_password
from planb.lab.fallback_reset import empty_fallback
from planb.mode import freeze_sync, unfreeze_sync
from tests.integration.conftest import LabSession
from tests.integration.lab_state import churned, ldap_only

pytestmark = pytest.mark.lab
runner = CliRunner()



@pytest.fixture(scope="module")
def lab(synced_lab: LabSession) -> LabSession:
    return synced_lab


@pytest.fixture(scope="module")
def site(lab: LabSession) -> SiteConfig:
    return lab.site


def cli(site: SiteConfig, *args: str) -> tuple[int, str, str]:
    done = runner.invoke(app, ["--config", str(site.source), *args])
    return done.exit_code, done.stdout, done.stderr


def fallback_state(site: SiteConfig) -> FallbackState:
    return Sync(site).read_fallback()


def primary(site: SiteConfig) -> SourceResult:
    return read_primary(site)


def fallback_groups(site: SiteConfig) -> dict[str, set[str]]:
    conn = Sync(site).fallback.connect(read_only=True)
    try:
        return {g: {m.casefold() for m in members}
                for g, members in read_groups(conn, Layout(site.fallback.ldap_suffix)).items()}
    finally:
        conn.unbind()


def can_bind(site: SiteConfig, login: str) -> bool:
    """Whether ``login`` binds to the fallback LDAP with their primary password."""
    secret = (site.state_dir / "lab" / "agents-secret").read_bytes().strip()
    endpoint = Sync(site).fallback
    dn = Layout(site.fallback.ldap_suffix).person_dn(login)
    server = endpoint.server()
    conn = Connection(server, user=dn, password=agent_password(secret, login))
    try:
        return bool(conn.bind())
    except LDAPException:
        return False
    finally:
        conn.unbind()


def ldap_plan(site: SiteConfig, path: Path | None = None) -> dict[str, object]:
    args = ["sync", "plan", "--json"] + (["-o", str(path)] if path else [])
    code, out, err = cli(site, *args)
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def ldap_counts(plan: dict[str, object]) -> dict[str, int]:
    summary = plan["summary"]
    assert isinstance(summary, dict)
    return {k: v for k, v in summary.items() if k.startswith("ldap") or k == "department_move"}


def assert_converged(site: SiteConfig) -> None:
    """Every active agent of the primary is in the fallback with the right groups."""
    source = primary(site)
    # Every page of the primary was read (the lab's page size is below its agent count).
    assert site.lab is not None and site.primary.ldap is not None
    assert site.primary.ldap.page_size < site.lab.agents
    assert (len(source.agents) + len(source.rejections)
            == site.lab.agents + churned(site)["hires"])
    state = fallback_state(site)
    active = {a.id: a for a in source.agents if a.enabled}
    assert {i for i, e in state.entries.items() if e.enabled} == set(active)
    layout = Layout(site.fallback.ldap_suffix)
    wanted: dict[str, set[str]] = {}
    for agent in source.agents:
        if agent.id in state.entries:
            for group in agent.groups:
                wanted.setdefault(group, set()).add(layout.person_dn(agent.login).casefold())
    assert fallback_groups(site) == wanted
    assert set(ldap_counts(ldap_plan(site)).values()) == {0}




def test_full_sync_from_empty_creates_every_active_agent(lab: LabSession,
                                                         site: SiteConfig) -> None:
    with ldap_only(site):
        empty_fallback(lab.lab, site)
        assert fallback_state(site).entries == {}
        code, out, err = cli(site, "sync", "apply", "--yes", "--ldap-only")
        assert code == 0, err
        assert "applied and confirmed" in out
        assert "LDAP only (--ldap-only)" in out
        assert_converged(site)


def test_agents_bind_to_the_fallback_with_their_primary_password(site: SiteConfig) -> None:
    agents = [a for a in primary(site).agents if a.enabled]
    assert can_bind(site, agents[0].login)
    assert can_bind(site, agents[-1].login)
    leavers = [a for a in primary(site).agents if not a.enabled]
    assert leavers and not can_bind(site, leavers[0].login)


def test_churn_is_exactly_what_the_plan_lists_and_apply_converges(
        site: SiteConfig, tmp_path: Path) -> None:
    # LDAP only: after another test emptied the fallback LDAP, a reactivated leaver has no
    # entry while Synapse still holds their old account, which the planner rightly
    # refuses to hand over without --adopt (see ldap_only); test_sync_matrix covers Matrix.
    with ldap_only(site):
        _churn_then_plan_and_apply(site, tmp_path)


def _churn_then_plan_and_apply(site: SiteConfig, tmp_path: Path) -> None:
    before = fallback_state(site)
    code, out, err = cli(site, "lab", "churn", "--percent", "5", "--seed", "7", "--json")
    assert code == 0, err
    record = json.loads(out)
    ids = {kind: {x["id"] for x in record[kind]} for kind in
           ("hires", "leavers", "renames", "moves", "reactivations")}
    assert all(ids.values()), record
    leaver = record["leavers"][0]["login"]
    assert can_bind(site, leaver)  # not synced yet: still enabled in the fallback

    plan = ldap_plan(site, tmp_path / "plan.json")
    ldap = plan["ldap"]
    assert isinstance(ldap, dict)
    back = {i for i in ids["reactivations"] if i in before.entries}
    assert {a["id"] for a in ldap["add"]} == ids["hires"] | (ids["reactivations"] - back)
    assert {c["id"] for c in ldap["reactivate"]} == back
    assert {c["id"] for c in ldap["deactivate"]} == ids["leavers"]
    moves = {m["id"]: (m["old"], m["new"]) for m in ldap["move"]}
    assert moves == {x["id"]: (x["old"], x["new"]) for x in record["moves"]}
    updates = {u["id"]: u for u in ldap["update"]}
    assert set(updates) == ids["renames"] | ids["moves"]
    for rename in record["renames"]:
        changes = {c["field"]: c["new"] for c in updates[rename["id"]]["changes"]}
        assert set(changes) == {"surname", "display_name"}
        assert changes["display_name"] == rename["new"]
    for move in record["moves"]:
        changes = {c["field"]: c["new"] for c in updates[move["id"]]["changes"]}
        assert changes == {"groups": [move["new"]]}

    code, out, err = cli(site, "sync", "apply", str(tmp_path / "plan.json"), "--yes",
                         "--ldap-only")
    assert code == 0, err
    assert "applied and confirmed" in out
    assert_converged(site)
    assert not can_bind(site, leaver)
    assert can_bind(site, record["hires"][0]["login"])
    assert can_bind(site, record["reactivations"][0]["login"])


@pytest.fixture
def unchanged(site: SiteConfig) -> Iterator[None]:
    """The fallback must be exactly the same after the test."""
    before = fallback_state(site)
    yield
    assert fallback_state(site) == before


def test_unreachable_primary_refuses(site: SiteConfig, unchanged: None) -> None:
    assert site.primary.ldap is not None
    broken = site.source.with_name("planb-unreachable.yml")
    broken.write_text(site.source.read_text(encoding="utf-8").replace(
        site.primary.ldap.url, "ldaps://127.0.0.1:9"), encoding="utf-8")
    try:
        done = runner.invoke(app, ["--config", str(broken), "sync", "apply", "--yes"])
    finally:
        broken.unlink()
    assert done.exit_code == EXIT_ERROR
    assert "cannot reach the primary directory" in done.stderr


def test_too_many_deactivations_refuse_unless_forced(site: SiteConfig, tmp_path: Path,
                                                     unchanged: None) -> None:
    source = primary(site)
    cut = max(2, len(source.agents) // 10)
    snapshot = tmp_path / "snapshot.json"
    write_snapshot(SourceResult(source.source, source.agents[cut:]), snapshot)
    code, out, err = cli(site, "sync", "apply", "--from-snapshot", str(snapshot), "--yes")
    assert code == EXIT_USAGE
    assert "more than safety.max_deactivate_percent" in err
    assert "--force" in err
    code, out, err = cli(site, "sync", "plan", "--from-snapshot", str(snapshot))
    assert code == 0
    assert "apply would refuse" in err


def test_empty_source_refuses_even_forced(site: SiteConfig, tmp_path: Path,
                                          unchanged: None) -> None:
    snapshot = tmp_path / "empty.json"
    write_snapshot(SourceResult("empty", ()), snapshot)
    code, out, err = cli(site, "sync", "apply", "--from-snapshot", str(snapshot), "--force",
                         "--yes")
    assert code == EXIT_USAGE
    assert "gave no agents" in err


def test_active_failover_refuses_to_read_the_primary(site: SiteConfig,
                                                     unchanged: None) -> None:
    freeze_sync(site.state_dir, by="test", why="lab test", at="2026-01-01T00:00:00Z")
    try:
        code, out, err = cli(site, "sync", "apply", "--yes")
    finally:
        unfreeze_sync(site.state_dir)
    assert code == EXIT_USAGE
    assert "failover is active" in err


def _count(endpoint: LdapEndpoint, base: str) -> int:
    conn = endpoint.connect(read_only=True)
    try:
        found = conn.extend.standard.paged_search(base, "(objectClass=planbAgent)",
                                                  attributes=["1.1"], paged_size=1000,
                                                  generator=False)
        return len([e for e in found if e.get("type") == "searchResEntry"])
    finally:
        conn.unbind()


def test_apply_killed_midway_converges_on_the_next_run(lab: LabSession,
                                                       site: SiteConfig) -> None:
    with ldap_only(site):
        empty_fallback(lab.lab, site)
        total = len([a for a in primary(site).agents if a.enabled])
        endpoint = Sync(site).fallback
        people = Layout(site.fallback.ldap_suffix).people
        proc = subprocess.Popen([sys.executable, "-m", "planb.cli.main", "--config",
                                 str(site.source), "sync", "apply", "--yes", "--ldap-only",
                                 "--workers", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        written = 0
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            written = _count(endpoint, people)
            if written >= 5:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "apply ended before it could be killed"
        assert 0 < written < total
        code, out, err = cli(site, "sync", "apply", "--yes", "--ldap-only")
        assert code == 0, err
        assert "applied and confirmed" in out
        assert_converged(site)
