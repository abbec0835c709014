"""The controller-lost drill's pieces that need no lab: the break-glass commands are
written in one place, the runbook prints exactly what the drill runs, and the scenario
uses only the break-glass path to switch (the lab test runs it for real)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from planb.actions.breakglass import (
    KEY_ENV,
    breakglass_command,
    breakglass_key,
)
from planb.actions.controller import compare, verified_host_journals
from planb.actions.stack import ProbeArgs
from planb.cli.wiring import default_registry, site_store
from planb.config import load_config
from planb.drills.scenario import load_scenario
from planb.errors import UsageError
from planb.inventory import InventoryHost
from planb.reports.keys import KeyPaths, init_keys, load_signer
from planb.reports.store import JournalStore
from tests.unit.test_runbooks_render import lab_site, render_cli  # noqa: F401

HOST = InventoryHost("fallback", "10.77.9.11", ("fallback_messaging",))
TRICKY = "drill: it's \"the\" $HOME `test` ! (x)"


def remote_words(argv: list[str]) -> list[str]:
    """What planb-breakglass reads: the one string after the destination, split."""
    return shlex.split(argv[-1])


def test_the_drill_runs_the_break_glass_key_only_against_the_recorded_host_keys(
        tmp_path: Path) -> None:
    command = breakglass_command(HOST, "activate", operator="Jeanne Martin", reason=TRICKY)
    argv = command.argv(tmp_path / "bg.key", tmp_path / "known_hosts")
    assert argv[:5] == ["ssh", "-i", str(tmp_path / "bg.key"), "-o", "IdentitiesOnly=yes"]
    joined = " ".join(argv)
    for option in ("-F /dev/null", "IdentityAgent=none", "BatchMode=yes",
                   "StrictHostKeyChecking=yes", f"UserKnownHostsFile={tmp_path}/known_hosts"):
        assert option in joined
    assert argv[-2] == "root@10.77.9.11"
    assert remote_words(argv) == ["activate", "--operator", "Jeanne Martin", "--reason", TRICKY]


@pytest.mark.parametrize("reason", ["main system encrypted", TRICKY, "l'annuaire"])
def test_the_printed_command_gives_the_host_the_same_words(reason: str) -> None:
    command = breakglass_command(HOST, "deactivate", operator="J. M.", reason=reason)
    printed = shlex.split(command.printable("~/planb-breakglass"))
    # What a shell makes of the printed line: the same ssh call and the same remote words.
    assert printed[:5] == ["ssh", "-i", "~/planb-breakglass", "-o", "IdentitiesOnly=yes"]
    assert printed[-2] == "root@10.77.9.11"
    assert shlex.split(printed[-1]) == list(command.words)
    assert command.printable("/a b/key").startswith("ssh -i '/a b/key' ")


def test_activate_and_deactivate_need_an_operator_and_a_reason() -> None:
    with pytest.raises(UsageError, match="operator and a reason"):
        breakglass_command(HOST, "activate", operator="x", reason=" ")
    assert breakglass_command(HOST, "status").words == ("status", "--json")


def test_the_drill_refuses_clearly_without_the_key(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(UsageError) as caught:
        breakglass_key()
    assert KEY_ENV in (caught.value.hint or "")
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="no such file"):
        breakglass_key()
    (tmp_path / "k").write_text("key")
    assert breakglass_key(str(tmp_path / "k")) == tmp_path / "k"


def test_the_scenario_switches_only_through_break_glass(lab_site: Path) -> None:  # noqa: F811
    site = load_config(lab_site)
    registry = default_registry(site, site_store(site, signing=False))
    scenario = load_scenario("controller-lost", None, registry)
    actions = {s.phase: [x.action for x in scenario.phase(s.phase)] for s in scenario.steps}
    assert actions["activate"] == ["breakglass.activate"]
    assert actions["restore"] == ["lab.reconnect_host", "breakglass.deactivate"]
    assert not {a for a in scenario.actions if a.startswith(("failover.activate",
                                                             "failover.deactivate",
                                                             "fallback.switch"))}
    probes = scenario.phase("verify")[0]
    assert probes.args == ProbeArgs(sample=20, mode_from="breakglass")
    assert actions["steady_state_after"][-1] == "controller.restore"
    assert not registry.missing(scenario.actions)


def test_the_rebuilt_controller_must_match_this_one(tmp_path: Path) -> None:
    here, rebuilt = tmp_path / "here", tmp_path / "rebuilt"
    keys = KeyPaths.for_state_dir(here)
    init_keys(keys, None)
    store = JournalStore.for_state_dir(here, load_signer(keys))
    store.append("drill", {"n": 1})
    (here / "failover").mkdir()
    (here / "failover" / "audit.log").write_text('{"a": 1}\n')
    shutil.copytree(here, rebuilt)
    assert compare(here, rebuilt) == []
    store.append("drill", {"n": 2})  # written after the copy was pushed
    (rebuilt / "failover" / "audit.log").write_text("")
    problems = compare(here, rebuilt)
    assert len(problems) == 2, problems
    assert "behind" in problems[0] and "audit log" in problems[1]


def test_only_valid_chained_journals_of_verified_host_chains_count() -> None:
    good = {"signature": "valid", "chain": "ok"}
    report = {"hosts": [{"host": "a", "ok": True, "journals": [good, good]},
                        {"host": "b", "ok": False, "journals": [good]},
                        {"host": "c", "ok": True, "journals": [
                            {"signature": "altered", "chain": "ok"}]}]}
    assert verified_host_journals(report) == 2
    assert verified_host_journals({}) == 0
