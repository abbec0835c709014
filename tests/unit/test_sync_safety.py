"""``Sync.apply`` refuses a mass deactivation before anything is written.

The real planner and the real safety check run; the source is a real snapshot file
and only the fallback read is replaced (by the entries a directory would return), so
the refusal is caught here and not only by the lab. ``confirm`` stands for the
moment just before the first write: it must never be reached by a refused plan.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from planb.config import SiteConfig, load_config
from planb.directory.ldap_conn import LdapEndpoint
from planb.directory.model import Agent, SourceResult
from planb.directory.safety import UnsafePlan, check_plan_safety
from planb.directory.snapshot import write_snapshot
from planb.directory.sync import Sync, SyncPlan
from planb.directory.targets import FallbackState, entry_for
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
