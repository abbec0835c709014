"""``Sync.apply`` refuses a mass deactivation, mass password-hash changes or mass
reactivations before anything is written; one apply at a time; a failover activated
while it ran stops it before it writes.

The real planner and the real safety check run; the source is a real snapshot file
and only the fallback read is replaced (by the entries a directory would return), so
the refusal is caught here and not only by the lab. ``confirm`` stands for the
moment just before the first write: it must never be reached by a refused plan.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from planb.config import SiteConfig, load_config
from planb.directory.ldap_conn import LdapEndpoint
from planb.directory.model import Agent, SourceResult, password_fingerprint
from planb.directory.safety import UnsafePlan, check_plan_safety
from planb.directory.snapshot import write_snapshot
from planb.directory.sync import Sync, SyncPlan
from planb.directory.sync_lock import SyncLocked
from planb.directory.targets import FallbackState, entry_for
from planb.errors import UsageError
from planb.mode import freeze_sync
from planb.schema import Secret

SITE = """\
site: lyon
organisation: "Métropole de Lyon"
matrix:
  server_name: lyon.example
  public_hostname: matrix.lyon.example
primary:
  kind: ldap
  ldap:
    url: ldaps://ad.lyon.example
    base_dn: ou=agents,dc=lyon,dc=example
    bind_dn: cn=reader,dc=lyon,dc=example
    bind_password: s3cret-value
safety:
  max_deactivate_percent: 5
"""
AGENTS = 40


def agent(n: int) -> Agent:
    return Agent(id=f"id-{n}", login=f"agent{n}", given_name="Élodie", surname=f"Nom{n}",
                 display_name=f"Élodie Nom{n}", department="Finances",
                 groups=frozenset({"Finances"}))


class FallbackHolding(Sync):
    """A Sync whose fallback directory holds ``entries`` (everything else is real)."""

    def __init__(self, site: SiteConfig, state: FallbackState) -> None:
        # A closed port: any write that got past the checks would fail loudly.
        super().__init__(site, fallback=LdapEndpoint(
            "ldaps://127.0.0.1:9", "cn=sync", Secret("x"), label="the fallback"))
        self.state = state

    def read_fallback(self) -> FallbackState:
        return self.state


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    path = tmp_path / "planb.yml"
    path.write_text(SITE, encoding="utf-8")
    return load_config(path)


def fallback_with_everyone() -> FallbackState:
    return FallbackState.build(entry_for(agent(n), f"agent{n}") for n in range(AGENTS))


def snapshot_of(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "snapshot.json"
    write_snapshot(SourceResult("snapshot", tuple(agent(n) for n in range(count))), path)
    return path


def test_apply_refuses_deactivations_above_the_limit_before_any_write(
        site: SiteConfig, tmp_path: Path) -> None:
    sync = FallbackHolding(site, fallback_with_everyone())
    reached: list[SyncPlan] = []
    snapshot = snapshot_of(tmp_path, AGENTS - 4)  # 4 of 40 leave: 10 % > 5 %

    def confirm(planned: SyncPlan) -> bool:
        reached.append(planned)
        return False

    with pytest.raises(UnsafePlan, match=r"deactivates 4 of 40 active agents \(10.0 %\)"):
        sync.apply(from_snapshot=snapshot, confirm=confirm)
    assert reached == []


def test_apply_within_the_limit_or_forced_goes_on_to_confirm(
        site: SiteConfig, tmp_path: Path) -> None:
    sync = FallbackHolding(site, fallback_with_everyone())
    reached: list[int] = []

    def confirm(planned: SyncPlan) -> bool:
        reached.append(len(planned.plan.deactivated_ids()))
        return False

    assert sync.apply(from_snapshot=snapshot_of(tmp_path, AGENTS - 2), confirm=confirm) is None
    assert sync.apply(from_snapshot=snapshot_of(tmp_path, AGENTS - 4), confirm=confirm,
                      force=True) is None
    assert reached == [2, 4]


def test_an_empty_source_is_refused_even_forced() -> None:
    from planb.directory.plan import compute_plan
    from planb.directory.targets import MatrixState

    plan = compute_plan(SourceResult("primary", ()), fallback_with_everyone(), MatrixState())
    with pytest.raises(UnsafePlan, match="gave no agents"):
        check_plan_safety(plan, force=True)


class PrimaryHolding(FallbackHolding):
    """A Sync that reads ``agents`` from its primary (not a snapshot), everything else real."""

    def __init__(self, site: SiteConfig, state: FallbackState, agents: tuple[Agent, ...]
                 ) -> None:
        super().__init__(site, state)
        self.agents = agents

    def read_primary(self, *, strict: bool = False) -> SourceResult:
        return SourceResult("ldaps://ad.lyon.example", self.agents)


def test_mass_password_hash_changes_refuse_unless_forced(site: SiteConfig) -> None:
    """A compromised primary pushing its own hashes for many agents is stopped."""
    state = FallbackState.build(
        dataclasses.replace(entry_for(agent(n), f"agent{n}"),
                            password_fingerprint=password_fingerprint("{SSHA}old"))
        for n in range(AGENTS))
    taken = tuple(dataclasses.replace(agent(n), password_hash=Secret("{SSHA}attacker") if n < 5
                                      else Secret("{SSHA}old")) for n in range(AGENTS))
    reached: list[int] = []

    def confirm(planned: SyncPlan) -> bool:
        reached.append(sum(u.password_changed for u in planned.plan.ldap_updates))
        return False

    with pytest.raises(UnsafePlan, match=r"changes the password hash of 5 of 40 active agents "
                                         r"\(12.5 %\), more than safety"
                                         r".max_password_change_percent \(10 %\)"):
        PrimaryHolding(site, state, taken).apply(confirm=confirm)
    assert reached == []
    assert PrimaryHolding(site, state, taken).apply(confirm=confirm, force=True) is None
    assert reached == [5]


def test_mass_reactivations_refuse_unless_forced(site: SiteConfig) -> None:
    """Leavers brought back en masse (LDAP and Matrix, once per agent) are stopped."""
    state = FallbackState.build(
        dataclasses.replace(entry_for(agent(n), f"agent{n}"), enabled=n < AGENTS - 3)
        for n in range(AGENTS))
    sync = PrimaryHolding(site, state, tuple(agent(n) for n in range(AGENTS)))
    with pytest.raises(UnsafePlan, match=r"reactivates 3 of 37 active agents \(8.1 %\), more "
                                         r"than safety.max_reactivate_percent \(5 %\)"):
        sync.apply(confirm=lambda planned: False)
    assert sync.apply(confirm=lambda planned: False, force=True) is None


def test_the_limits_are_read_from_planb_yml(tmp_path: Path) -> None:
    path = tmp_path / "planb.yml"
    path.write_text(SITE + "  max_password_change_percent: 20\n  max_reactivate_percent: 10\n",
                    encoding="utf-8")
    state = FallbackState.build(
        dataclasses.replace(entry_for(agent(n), f"agent{n}"), enabled=n < AGENTS - 3)
        for n in range(AGENTS))
    sync = PrimaryHolding(load_config(path), state, tuple(agent(n) for n in range(AGENTS)))
    assert sync.apply(confirm=lambda planned: False) is None  # 8.1 % <= 10 %


def test_a_second_apply_is_refused_while_one_runs_naming_it(site: SiteConfig,
                                                            tmp_path: Path) -> None:
    """Two applies never run at once: the second fails at once and names the first."""
    first = FallbackHolding(site, fallback_with_everyone())
    second = FallbackHolding(site, fallback_with_everyone())
    snapshot = snapshot_of(tmp_path, AGENTS)
    refusals: list[str] = []

    def confirm(planned: SyncPlan) -> bool:  # the first apply waits here for a person
        with pytest.raises(SyncLocked) as refused:
            second.apply(from_snapshot=snapshot, confirm=lambda p: False)
        refusals.append(refused.value.message)
        return False

    first.apply(from_snapshot=snapshot, confirm=confirm)
    [message] = refusals
    assert f"another sync apply of this site is running: pid {os.getpid()} (" in message
    assert "nothing was changed" in message
    assert second.apply(from_snapshot=snapshot, confirm=lambda p: False) is None  # released


def test_the_lock_is_held_across_processes(site: SiteConfig, tmp_path: Path) -> None:
    """Another process holding the lock (a nightly job) makes this apply refuse."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from planb.directory.sync_lock import sync_lock\n"
         "with sync_lock(Path(sys.argv[1]), command='nightly job'):\n"
         "    print('held', flush=True); sys.stdin.read()", str(site.state_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(SyncLocked, match=rf"pid {holder.pid} \(.*: nightly job\)"):
            FallbackHolding(site, fallback_with_everyone()).apply(
                from_snapshot=snapshot_of(tmp_path, AGENTS), confirm=lambda p: False)
    finally:
        holder.kill()
        holder.wait()
    # killed, not cleaned up: the kernel released its lock
    assert FallbackHolding(site, fallback_with_everyone()).apply(
        from_snapshot=snapshot_of(tmp_path, AGENTS), confirm=lambda p: False) is None


def test_failover_activated_during_confirmation_stops_the_write(site: SiteConfig) -> None:
    """The freeze flag is asked again right before writing, not only when reading."""
    sync = PrimaryHolding(site, fallback_with_everyone(),
                          tuple(agent(n) for n in range(AGENTS + 1)))  # one hire to write

    def confirm(planned: SyncPlan) -> bool:
        assert len(planned.plan.ldap_adds) == 1
        freeze_sync(site.state_dir, by="operator", why="incident", at="2026-11-29T23:00:00Z")
        return True

    with pytest.raises(UsageError, match="failover is active: the sync will not write what "
                                         "it read from the primary directory"):
        sync.apply(confirm=confirm)
