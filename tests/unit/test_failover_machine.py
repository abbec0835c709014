"""The failover state machine, its audit log, the sync freeze flag and the announcement."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from planb.actions.failover_steps import (
    ChecksArgs,
    SwitchArgs,
    instructions,
    sync_freeze,
    sync_unfreeze,
)
from planb.actions.pages import PagesArgs
from planb.config import SiteConfig
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult, NoArgs, ProbeResult
from planb.errors import ConfigError, Interrupted, PlanbError
from planb.failover.machine import Failover
from planb.messaging.announcement import AnnouncementContext, render_announcement
from planb.mode import AuditLog, StateFile, sync_frozen
from planb.reports.keys import KeyPaths, init_keys, load_signer
from planb.reports.store import JournalStore
from planb.reports.verify import verify_directory
from tests.unit.test_drills_scenario import make_site


@dataclass
class Fallback:
    """What the test's stack actions act on."""

    mode: str = "standby"
    checks_ok: bool = True
    fail: set[str] = field(default_factory=set)
    interrupt: set[str] = field(default_factory=set)
    announced: list[str] = field(default_factory=list)
    #: False: messaging.announce is registered as not built yet.
    announce_built: bool = True
    switch_built: bool = True
    #: What the public pages say (None: the fallback's mode, as a working nginx would).
    pages_say: str | None = None
    pages_asked: list[str] = field(default_factory=list)

    def registry(self) -> ActionRegistry:
        registry = ActionRegistry()
        registry.action("sync.freeze", summary="")(sync_freeze)
        registry.action("sync.unfreeze", summary="")(sync_unfreeze)
        registry.action("failover.instructions", summary="")(instructions)

        @registry.action("verify.checks", summary="", args=ChecksArgs)
        def checks(ctx: ActionContext, args: ChecksArgs) -> ActionResult:
            return ActionResult(self.checks_ok, "slapd: ok\nsynapse: " +
                                ("ok" if self.checks_ok else "inactive (dead)"))

        def switch(ctx: ActionContext, args: SwitchArgs) -> ActionResult:
            if "switch" in self.interrupt:
                raise KeyboardInterrupt
            if f"switch-{args.mode}" in self.fail:
                raise PlanbError("playbook failover.yml failed: fallback: Restart synapse")
            self.mode = args.mode
            return ActionResult(True, f"switched to {args.mode}")

        if self.switch_built:
            registry.action("fallback.switch", summary="", args=SwitchArgs)(switch)
        else:
            registry.unavailable("fallback.switch", summary="", args=SwitchArgs,
                                 needs="playbooks/failover.yml")

        def announce(ctx: ActionContext, args: NoArgs) -> ActionResult:
            if "announce" in self.fail:
                return ActionResult(False, "announcement room not found")
            assert ctx.incident is not None
            self.announced.append(ctx.incident.id)
            return ActionResult(True, "posted")

        @registry.action("pages.check", summary="", args=PagesArgs)
        def pages(ctx: ActionContext, args: PagesArgs) -> ActionResult:
            assert args.mode is not None
            self.pages_asked.append(args.mode)
            said = self.pages_say or self.mode
            return ActionResult(said == args.mode, f"the welcome page says {said}",
                                (ProbeResult("page.welcome", said == args.mode, 0.1,
                                             f"GET / says {said}", "proxy"),))

        if self.announce_built:
            registry.action("messaging.announce", summary="", args=NoArgs)(announce)
        else:
            registry.unavailable("messaging.announce", summary="", needs="planb.messaging")
        return registry


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    site = make_site(tmp_path)
    init_keys(KeyPaths.for_state_dir(site.state_dir), None)
    return site


@pytest.fixture
def fallback() -> Fallback:
    return Fallback()


def machine(site: SiteConfig, fallback: Fallback) -> Failover:
    store = JournalStore.for_state_dir(site.state_dir,
                                       load_signer(KeyPaths.for_state_dir(site.state_dir)))
    return Failover(site, fallback.registry(), store)


def journals(site: SiteConfig) -> list[dict]:  # type: ignore[type-arg]
    folder = site.state_dir / "journals"
    keys = [load_signer(KeyPaths.for_state_dir(site.state_dir)).public_key]
    if folder.exists():
        assert verify_directory(folder, keys).ok
    return [json.loads(p.read_bytes())["payload"] for p in sorted(folder.glob("0*.json"))]


def test_activate_then_deactivate(site: SiteConfig, fallback: Fallback) -> None:
    failover = machine(site, fallback)
    done = failover.activate("ransomware on the main AD", operator="rssi")
    assert done.changed and fallback.mode == "active"
    assert [s.name for s in done.steps] == ["preflight", "freeze-sync", "flip", "announce",
                                            "instructions", "public-pages"]
    assert {s.status for s in done.steps} == {"ok"}
    assert sync_frozen(site.state_dir)
    state = StateFile(site.state_dir).load()
    assert (state.mode, state.operator, state.reason) == ("active", "rssi",
                                                          "ransomware on the main AD")
    assert fallback.announced == [state.incident_id]
    text = done.output_of("instructions")
    assert "Messagerie de secours activée" in text and "https://matrix.planb.test/" in text
    assert "Métropole de test" in text and state.incident_id in text  # type: ignore[operator]

    back = failover.deactivate("AD restored", operator="rssi")
    assert back.changed and fallback.mode == "standby" and not sync_frozen(site.state_dir)
    assert back.incident_duration_seconds is not None and back.incident_duration_seconds >= 0
    assert StateFile(site.state_dir).load().mode == "standby"

    first, second = journals(site)
    assert (first["event"], first["result"], first["to_mode"]) == ("activate", "completed",
                                                                   "active")
    assert second["event"] == "deactivate" and second["incident_id"] == first["incident_id"]
    assert second["incident_duration_seconds"] == pytest.approx(
        back.incident_duration_seconds, abs=0.001)
    audit = AuditLog(site.state_dir).entries()
    assert {(e.who, e.why) for e in audit if e.event == "activate"} == {
        ("rssi", "ransomware on the main AD")}
    assert [(e.step, e.result) for e in audit if e.event == "activate"] == [
        (None, "requested"), ("preflight", "ok"), ("freeze-sync", "ok"), ("flip", "ok"),
        ("announce", "ok"), ("instructions", "ok"), ("public-pages", "ok"), (None, "completed")]
    assert fallback.pages_asked == ["active", "standby"]


def test_pages_that_do_not_say_active_are_a_recorded_warning(site: SiteConfig,
                                                            fallback: Fallback) -> None:
    fallback.pages_say = "standby"
    done = machine(site, fallback).activate("incident")
    assert done.changed and fallback.mode == "active"
    assert done.warnings == ("public-pages failed: the welcome page says standby",)
    step = [s for s in journals(site)[-1]["steps"] if s["name"] == "public-pages"][0]
    assert step["status"] == "failed"
    assert [(p["name"], p["ok"]) for p in step["probes"]] == [("page.welcome", False)]


def test_activating_an_active_fallback_changes_nothing(site: SiteConfig,
                                                       fallback: Fallback) -> None:
    failover = machine(site, fallback)
    first = failover.activate("incident", operator="a")
    again = failover.activate("incident, again", operator="b")
    assert not again.changed and "already active" in again.message
    assert again.state == first.state
    assert len(journals(site)) == 1
    assert AuditLog(site.state_dir).entries()[-1].result == "unchanged"
    assert failover.deactivate("over").changed
    repeated = failover.deactivate("over, again")
    assert not repeated.changed and "already standby" in repeated.message


def test_failed_preflight_changes_nothing_unless_forced(site: SiteConfig,
                                                        fallback: Fallback) -> None:
    fallback.checks_ok = False
    failover = machine(site, fallback)
    with pytest.raises(PlanbError, match="(?s)preflight .* failed: .*synapse: inactive"):
        failover.activate("incident")
    assert fallback.mode == "standby" and not sync_frozen(site.state_dir)
    assert StateFile(site.state_dir).load().mode == "standby"
    assert journals(site)[-1]["result"] == "failed"
    forced = failover.activate("incident", force=True)
    assert forced.changed and fallback.mode == "active"
    assert forced.steps[0].status == "forced" and "preflight" in forced.warnings[0]


def test_failed_flip_undoes_the_freeze(site: SiteConfig, fallback: Fallback) -> None:
    fallback.fail.add("switch-active")
    failover = machine(site, fallback)
    with pytest.raises(PlanbError, match="activate stopped at flip.*stays standby"):
        failover.activate("incident")
    assert not sync_frozen(site.state_dir)
    steps = journals(site)[-1]["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [
        ("preflight", "ok"), ("freeze-sync", "ok"), ("flip", "error"),
        ("undo freeze-sync", "ok")]


def test_failed_announcement_is_a_warning(site: SiteConfig, fallback: Fallback) -> None:
    fallback.fail.add("announce")
    done = machine(site, fallback).activate("incident")
    assert done.changed and fallback.mode == "active"
    assert done.warnings == ("announce failed: announcement room not found",)


def test_ctrl_c_before_the_switch_leaves_standby(site: SiteConfig, fallback: Fallback) -> None:
    fallback.interrupt.add("switch")
    with pytest.raises(Interrupted):
        machine(site, fallback).activate("incident")
    assert StateFile(site.state_dir).load().mode == "standby"
    assert not sync_frozen(site.state_dir)
    assert journals(site)[-1]["result"] == "interrupted"


def test_unavailable_steps_refuse_before_changing_anything(site: SiteConfig,
                                                          fallback: Fallback) -> None:
    fallback.switch_built = False
    with pytest.raises(PlanbError, match="fallback.switch \\(needs playbooks/failover.yml"):
        machine(site, fallback).activate("incident")
    assert not sync_frozen(site.state_dir) and journals(site) == []
    assert AuditLog(site.state_dir).entries()[-1].result == "refused"
    assert StateFile(site.state_dir).load().mode == "standby"


def test_an_announcement_not_built_yet_is_reported_not_pretended(site: SiteConfig,
                                                                 fallback: Fallback) -> None:
    fallback.announce_built = False
    failover = machine(site, fallback)
    assert failover.unavailable("activate") == ["announce: messaging.announce (needs "
                                                "planb.messaging)"]
    done = failover.activate("incident")
    assert done.changed and done.state.mode == "active"
    announce = next(s for s in done.steps if s.name == "announce")
    assert announce.status == "unavailable" and "needs planb.messaging" in (announce.error or "")
    assert done.warnings == ("announce unavailable: not available yet: needs planb.messaging",)
    assert fallback.announced == []
    recorded = journals(site)[-1]
    assert [s["status"] for s in recorded["steps"] if s["name"] == "announce"] == ["unavailable"]
    assert ("announce", "unavailable") in [(e.step, e.result)
                                           for e in AuditLog(site.state_dir).entries()]


def test_site_announcement_template_wins_and_errors_name_the_line(site: SiteConfig) -> None:
    context = AnnouncementContext("01/03/2025 à 09 h 30", "abc", drill=True)
    shipped = render_announcement(site, context)
    assert shipped.startswith("# Exercice — Messagerie de secours activée")
    folder = site.state_dir / "templates"
    folder.mkdir(parents=True)
    (folder / "announcement.fr.md.j2").write_text(
        "Bonjour {{ organisation }} : {{ url }}\n", "utf-8")
    assert render_announcement(site, context) == \
        "Bonjour Métropole de test : https://matrix.planb.test/\n"
    (folder / "announcement.fr.md.j2").write_text("ligne\n{{ url }\n", "utf-8")
    with pytest.raises(ConfigError, match=r"announcement.fr.md.j2:2: template error"):
        render_announcement(site, context)
    (folder / "announcement.fr.md.j2").write_text("{{ adresse }}\n", "utf-8")
    with pytest.raises(ConfigError, match="unknown variable: 'adresse' is undefined"):
        render_announcement(site, context)
