"""Scenarios as data: strict loading, file:line errors, typed action arguments."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from planb.actions.lab import KillArgs
from planb.cli.wiring import default_registry
from planb.config import CsvSourceConfig, LabConfig, MatrixConfig, PrimaryConfig, SiteConfig
from planb.drills.scenario import (
    load_all,
    load_scenario,
    parse_scenario,
    scenario_files,
)
from planb.errors import ConfigError, UsageError
from planb.reports.store import JournalStore


def make_site(base: Path, *, lab: bool = True) -> SiteConfig:
    site = SiteConfig(site="test", organisation="Métropole de test",
                      matrix=MatrixConfig("planb.test", "matrix.planb.test"),
                      primary=PrimaryConfig(kind="csv", csv=CsvSourceConfig(Path("agents.csv"))),
                      lab=LabConfig() if lab else None)
    return dataclasses.replace(site, source=base / "planb.yml")


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return make_site(tmp_path)


@pytest.fixture
def registry(site: SiteConfig):  # type: ignore[no-untyped-def]
    return default_registry(site, JournalStore.for_state_dir(site.state_dir))


GOOD = """\
name: small
description: a small scenario
objectives: {rto_seconds: 30}
steady_state:
  - action: service.is_active
    with: {host: fallback, unit: synapse}
fault:
  - name: kill it
    action: service.kill
    with:
      host: fallback_messaging
      unit: synapse
    timeout: 5
verify:
  - {action: service.wait_active, with: {host: fallback, unit: synapse}}
restore:
  - action: sync.unfreeze
"""


def test_shipped_scenarios_load_with_their_actions(registry) -> None:  # type: ignore[no-untyped-def]
    scenarios = {s.name: s for s in load_all(None, registry)}
    assert set(scenarios) >= {"primary-outage", "primary-stopped", "messaging-crash",
                              "directory-crash"}
    crash = scenarios["messaging-crash"]
    kill = crash.phase("fault")[0]
    assert kill.action == "service.kill"
    assert kill.args == KillArgs(host="fallback_messaging", unit="synapse", signal="SIGKILL")
    assert [s.action for s in crash.phase("verify")] == ["service.wait_active", "probes.run"]
    outage = scenarios["primary-outage"]
    assert [s.action for s in outage.phase("fault")] == ["lab.isolate_host"]
    assert [s.action for s in outage.phase("restore")] == ["lab.reconnect_host",
                                                           "failover.deactivate"]
    stopped = scenarios["primary-stopped"]
    assert [s.action for s in stopped.phase("fault")] == ["lab.stop_host"]
    assert [s.action for s in stopped.phase("restore")] == ["lab.start_host",
                                                            "failover.deactivate"]
    for scenario in scenarios.values():
        assert scenario.phase("restore") and scenario.phase("steady_state_after")


def test_good_scenario_is_typed_and_located(registry) -> None:  # type: ignore[no-untyped-def]
    scenario = parse_scenario(GOOD, "small.yml", registry)
    assert scenario.rto_seconds == 30
    kill = scenario.phase("fault")[0]
    assert (kill.name, kill.timeout, kill.line) == ("kill it", 5, 9)
    assert kill.args == KillArgs(host="fallback_messaging", unit="synapse")
    verify = scenario.phase("verify")[0]
    assert verify.name == "service.wait_active" and verify.args.unit == "synapse"
    assert verify.timeout == registry.get("service.wait_active").default_timeout


@pytest.mark.parametrize(("text", "where", "what"), [
    (GOOD.replace("objectives:", "objectifs:"), "small.yml:3: objectifs", "unknown key"),
    (GOOD.replace("    timeout: 5", "    timout: 5"), "small.yml:13: fault.[0].timout",
     "known keys here: action, name, timeout, with"),
    (GOOD.replace("      unit: synapse\n    timeout",
                  "      unit: synapse\n      signl: SIGTERM\n    timeout"),
     "small.yml:13: fault.[0].with.signl",
     "unknown key (known keys here: host, signal, unit, whom)"),
    (GOOD.replace("host: fallback_messaging", "host: Fallback Messaging"),
     "small.yml:11: fault.[0].with", "is not a lab host or group name"),
    (GOOD.replace("      host: fallback_messaging\n", ""), "small.yml:11: fault.[0].with.host",
     "required key is missing"),
    (GOOD.replace("action: service.kill", "action: service.kil"), "small.yml:9: fault.[0].action",
     "unknown action 'service.kil'"),
    (GOOD.replace("  - action: sync.unfreeze", "  - action: sync.unfreeze\n    with: {x: 1}"),
     "small.yml:18: restore.[0].with.x", "unknown key"),
    (GOOD.replace("    timeout: 5", "    timeout: soon"), "small.yml:13: fault.[0].timeout",
     "must be a number, got str 'soon'"),
    (GOOD.replace("verify:\n  - {action: service.wait_active, with: {host: fallback, "
                  "unit: synapse}}\n", ""), "small.yml:1: verify", "required key is missing"),
])
def test_bad_scenarios_name_file_line_and_key(registry, text: str, where: str,  # type: ignore[no-untyped-def]
                                              what: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, "small.yml", registry)
    assert str(caught.value).startswith(where), str(caught.value)
    assert what in str(caught.value)


def test_kill_signal_is_checked(registry) -> None:  # type: ignore[no-untyped-def]
    text = GOOD.replace("      unit: synapse\n    timeout",
                        "      unit: synapse\n      signal: SIGKIL\n    timeout")
    with pytest.raises(ConfigError, match="signal 'SIGKIL' is not a signal name"):
        parse_scenario(text, "small.yml", registry)


def test_site_scenarios_are_added_and_win(site: SiteConfig, registry) -> None:  # type: ignore[no-untyped-def]
    folder = site.state_dir / "scenarios"
    folder.mkdir(parents=True)
    (folder / "small.yml").write_text(GOOD.replace("name: small", "name: small"), "utf-8")
    (folder / "primary-outage.yml").write_text(GOOD.replace("name: small",
                                                            "name: primary-outage"), "utf-8")
    files = scenario_files(site.state_dir)
    assert files["small"] == folder / "small.yml"
    assert files["primary-outage"] == folder / "primary-outage.yml"
    assert load_scenario("small", site.state_dir, registry).rto_seconds == 30
    (folder / "other.yml").write_text(GOOD, "utf-8")
    with pytest.raises(ConfigError, match="differs from the file name 'other.yml'"):
        load_scenario("other", site.state_dir, registry)
    with pytest.raises(UsageError, match="no scenario named 'nope'.*primary-outage"):
        load_scenario("nope", site.state_dir, registry)


def test_unavailable_actions_load_but_say_what_they_need(tmp_path: Path) -> None:
    site = make_site(tmp_path, lab=False)
    registry = default_registry(site, JournalStore.for_state_dir(site.state_dir))
    scenario = load_scenario("primary-outage", None, registry)
    missing = {spec.name: spec.needs for spec in registry.missing(scenario.actions)}
    assert "lab.isolate_host" in missing and "probes.run" not in missing
    assert "lab site" in (missing["lab.isolate_host"] or "")
    assert registry.get("sync.freeze").available
