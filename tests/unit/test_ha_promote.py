"""planb failover promote's pure parts: the lag, the refusals, the inventory record,
and the promoter's refusals and audit lines (its SSH steps run on the HA lab:
tests/integration/test_failover_promote_lab.py)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

from planb.config import SiteConfig
from planb.errors import PlanbError, UsageError
from planb.ha.promote import (
    Lag,
    Plan,
    Promoter,
    answering,
    lag_beyond,
    parse_lag,
    refusals,
    services_script,
)
from planb.inventory import (
    FALLBACK_LOST,
    FALLBACK_PROMOTED,
    PROMOTION_FILE,
    InventoryHost,
    load_hosts,
    playbook_limit,
    record_promotion,
)
from planb.mode import AuditLog
from planb.reports.keys import KeyPaths, init_keys, load_signer
from planb.reports.store import JournalStore
from tests.unit.test_drills_scenario import make_site

HOSTS = """\
all:
  vars:
    ansible_user: root
  hosts:
    primary: {ansible_host: 10.77.4.10}
    fallback: {ansible_host: 10.77.4.11}
    standby: {ansible_host: 10.77.4.12}
  children:
    fallback:
      children:
        fallback_directory: {hosts: {fallback: }}
        fallback_messaging: {hosts: {fallback: }}
        fallback_proxy: {hosts: {fallback: }}
    lab_primary: {hosts: {primary: }}
    fallback_standby: {hosts: {standby: }}
"""


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    site = make_site(tmp_path)
    site.inventory_dir.mkdir(parents=True)
    (site.inventory_dir / "hosts.yml").write_text(HOSTS, encoding="utf-8")
    return site


@pytest.fixture
def store(site: SiteConfig) -> JournalStore:
    paths = KeyPaths.for_state_dir(site.state_dir)
    init_keys(paths, None)
    return JournalStore.for_state_dir(site.state_dir, load_signer(paths))


def by_name(site: SiteConfig) -> dict[str, InventoryHost]:
    return {h.name: h for h in load_hosts(site)}


def test_parse_lag_reads_psql_row() -> None:
    assert parse_lag("t|0|0|f\n") == Lag(True, 0.0, 0, False)
    assert parse_lag("t|81920|312.5|t") == Lag(True, 312.5, 81920, True)
    assert parse_lag("t|4096||f").seconds is None  # nothing replayed since it started
    assert parse_lag("f|||") == Lag(False, None, None, False)
    with pytest.raises(PlanbError, match="unexpected answer"):
        parse_lag("ERROR: permission denied")


def test_lag_beyond_the_objective_or_unknown_refuses() -> None:
    assert not lag_beyond(Lag(True, 0.0, 0), 60)
    assert not lag_beyond(Lag(True, 60.0, 10), 60)
    assert lag_beyond(Lag(True, 60.5, 10), 60)
    assert lag_beyond(Lag(True, None, 10), 60)  # not known: refused
    assert not lag_beyond(Lag(False, None, None), 60)  # a primary: no replay to wait for


def test_refusals_name_the_old_primary_and_the_lag(site: SiteConfig) -> None:
    old = by_name(site)["fallback"]
    assert refusals(old, [], Lag(True, 0.5, 0), 60) == []
    [split] = refusals(old, ["ssh:22", "https:443"], Lag(True, 0.0, 0), 60)
    assert "fallback (10.77.4.11) still answers on ssh:22, https:443" in split
    assert "split brain" in split
    [lag] = refusals(old, [], Lag(True, 312.0, 81920, True), 60)
    assert "replay lag 312 s, 81920 bytes" in lag and "(replay paused)" in lag
    assert "objectives.rpo_seconds (60 s)" in lag


def test_answering_sees_a_listening_port_and_not_a_closed_one() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        host = InventoryHost("old", "127.0.0.1", ("fallback_messaging",),
                             {"ansible_port": port})
        assert f"ssh:{port}" in answering(host, timeout=1)
    assert f"ssh:{port}" not in answering(host, timeout=1)


def test_services_script_writes_the_mode_and_starts_the_workers() -> None:
    script = services_script("active", "10.77.4.11", "10.77.4.12")
    assert "grep -rlF 10.77.4.11 /etc/synapse /etc/nginx /etc/turnserver.conf" in script
    assert "printf '%s\\n' active > /etc/planb/mode.new" in script
    assert "synapse-worker@$(basename \"$config\" .yaml).service" in script
    # Restarted, not only started: a unit left running on the standby would keep its old
    # state and the configuration from before the addresses were rewritten.
    for unit in ("redis-server.service", "synapse.service", '"$unit"'):
        assert f"systemctl enable {unit} && systemctl restart {unit};" in script, unit
    assert "systemctl restart nginx.service coturn.service" in script
    assert "--now" not in script
    with pytest.raises(ValueError):
        services_script("maintenance", "10.77.4.11", "10.77.4.12")
    with pytest.raises(ValueError):
        services_script("active", "10.77.4.11'; rm -rf /", "10.77.4.12")


def test_a_recorded_promotion_moves_the_groups_for_planb_and_its_playbooks(
        site: SiteConfig) -> None:
    hosts = by_name(site)
    assert playbook_limit(site, None) is None and playbook_limit(site, "x") == "x"
    path = record_promotion(site, hosts["fallback"], hosts["standby"],
                            at="2026-11-30T12:00:00Z", why="fallback\npowered off")
    assert path == site.inventory_dir / PROMOTION_FILE
    assert "(fallback powered off; its journal" in path.read_text(encoding="utf-8")
    after = by_name(site)
    # Read by the real ansible-inventory: the standby took the fallback's groups and is
    # no longer a standby; the lost host is in none of the fallback's groups.
    assert set(after["standby"].groups) == {
        "fallback", "fallback_directory", "fallback_messaging", "fallback_proxy",
        FALLBACK_PROMOTED}
    assert after["fallback"].groups == (FALLBACK_LOST,)
    assert after["primary"].groups == ("lab_primary",)
    assert not after["fallback"].is_fallback and after["standby"].is_fallback
    assert playbook_limit(site, None) == f"all:!{FALLBACK_LOST}"
    assert playbook_limit(site, "fallback_proxy") == f"fallback_proxy:!{FALLBACK_LOST}"


def planner(answers: tuple[str, ...], lag: Lag) -> object:
    def plan(site: SiteConfig, inventory: Sequence[InventoryHost]) -> Plan:
        hosts = {h.name: h for h in inventory}
        return Plan(hosts["fallback"], hosts["standby"], answers, lag,
                    tuple(refusals(hosts["fallback"], answers, lag,
                                   site.objectives.rpo_seconds)))
    return plan


def audit_results(site: SiteConfig) -> list[tuple[str, str | None, str]]:
    return [(e.event, e.step, e.result) for e in AuditLog(site.state_dir).entries()]


@pytest.mark.parametrize(("answers", "lag", "why"), [
    (("ssh:22", "postgresql:5432"), Lag(True, 0.0, 0), "still answers on ssh:22"),
    ((), Lag(True, 1200.0, 65536, True), "replay lag 1200 s"),
])
def test_refused_promotions_change_nothing_and_are_audited(
        site: SiteConfig, store: JournalStore, answers: tuple[str, ...], lag: Lag,
        why: str) -> None:
    promoter = Promoter(site, store, planner=planner(answers, lag))  # type: ignore[arg-type]
    with pytest.raises(PlanbError, match="promotion refused") as refused:
        promoter.promote("fallback host down", operator="alice")
    assert why in refused.value.message and "--force" in (refused.value.hint or "")
    assert audit_results(site) == [("promote", None, "requested"),
                                   ("promote", None, "refused")]
    assert why in AuditLog(site.state_dir).entries()[-1].detail
    assert not (site.inventory_dir / PROMOTION_FILE).exists()
    assert list(store.directory.glob("*.json")) == []


def test_a_standby_that_is_already_a_primary_is_refused(site: SiteConfig,
                                                        store: JournalStore) -> None:
    promoter = Promoter(site, store, planner=planner((), Lag(False, None, None)))  # type: ignore[arg-type]
    with pytest.raises(PlanbError, match="standby is not a standby"):
        promoter.promote("again", force=True)
    assert audit_results(site)[-1] == ("promote", None, "refused")


def test_a_recorded_promotion_is_not_done_twice(site: SiteConfig,
                                                store: JournalStore) -> None:
    hosts = by_name(site)
    record_promotion(site, hosts["fallback"], hosts["standby"], at="t", why="earlier")

    def never(site: SiteConfig, hosts: Sequence[InventoryHost]) -> Plan:
        raise AssertionError("a recorded promotion must not be planned again")

    done = Promoter(site, store, planner=never).promote("again")
    assert not done.changed and done.message == "standby was already promoted: nothing changed"
    assert audit_results(site)[-1] == ("promote", None, "unchanged")


def test_promotion_needs_a_reason_and_a_signing_key(site: SiteConfig) -> None:
    with pytest.raises(UsageError, match="signing key"):
        Promoter(site, JournalStore.for_state_dir(site.state_dir)).promote("why")
    with pytest.raises(UsageError, match="give a reason"):
        Promoter(site, JournalStore.for_state_dir(site.state_dir)).promote("  ")


def test_no_standby_in_the_inventory_is_a_usage_error(tmp_path: Path) -> None:
    from planb.ha.promote import plan

    site = make_site(tmp_path)
    site.inventory_dir.mkdir(parents=True)
    (site.inventory_dir / "hosts.yml").write_text(
        HOSTS.replace("    fallback_standby: {hosts: {standby: }}\n", ""), encoding="utf-8")
    with pytest.raises(UsageError, match="no standby host"):
        plan(site)
