"""The exercise report view of drill and failover journals (and the journals other tests use).

The journals are built with the drills' own :class:`DrillJournal` and written through
the real store with a real key, so a change in what drills record shows up here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planb.config import SiteConfig
from planb.drills.records import DrillJournal, Footprint, VerifyRound
from planb.drills.scenario import Scenario
from planb.engine.actions import NoArgs, ProbeResult
from planb.engine.records import StepRecord
from planb.reports.journal import StoredJournal
from planb.reports.keys import KeyPaths, init_keys, load_signer
from planb.reports.render.load import load_docs
from planb.reports.render.model import JournalDoc, Verification, build_view
from planb.reports.store import JournalStore
from tests.unit.test_drills_scenario import make_site

SUBJECTS = ("agent-0123456789ab", "agent-ba9876543210")
SCENARIO = Scenario(name="primary-outage", description="The primary loses its network.",
                    source="planb/data/scenarios/primary-outage.yml", sha256="ab" * 32,
                    rto_seconds=None, verify_timeout=300, verify_interval=2, steps=())


def _at(day: str, second: int) -> str:
    return f"{day}T09:{second // 60:02d}:{second % 60:02d}.000Z"


def _step(name: str, action: str, phase: str, status: str, day: str, start: int,
          seconds: float, **extra: object) -> StepRecord:
    return StepRecord(name=name, action=action, phase=phase, args=NoArgs(),  # type: ignore[arg-type]
                      status=status, started_at=_at(day, start),  # type: ignore[arg-type]
                      ended_at=_at(day, start + int(seconds)), duration_seconds=seconds,
                      **extra)  # type: ignore[arg-type]


def drill_payload(site: SiteConfig, *, outcome: str = "pass", rto: float | None = 25.0,
                  day: str = "2025-03-01", objective: int = 60, output: str = "ok",
                  subjects: tuple[str, ...] = SUBJECTS) -> dict[str, object]:
    """A drill journal payload as DrillJournal writes it: a pass, a deviation or a failure."""
    journal = DrillJournal(drill_id="d-" + day, scenario=SCENARIO, site=site, operator="agnès",
                           started_at=_at(day, 0), objective_seconds=objective,
                           objective_source="site", ended_at=_at(day, 90))
    journal.steady_before.append(_step("services up", "verify.checks", "steady_state", "ok",
                                       day, 0, 1.5, output="all checks ok"))
    journal.run.append(_step("cut the primary", "lab.isolate", "fault", "ok", day, 2, 3.0))
    verify_ok = outcome != "failed"
    probes = tuple(ProbeResult("matrix.exchange", verify_ok, 1.25,
                               "sent and received" if verify_ok else "HTTP 502", s)
                   for s in subjects)
    journal.run.append(_step("activate", "fallback.switch", "activate", "ok", day, 5, 2.0,
                             output=output))
    journal.run.append(_step("probes", "probes.run", "verify",
                             "ok" if verify_ok else "failed", day, 8, 4.0, probes=probes,
                             round=2, output="2/2 logged in, sent and received"))
    journal.verify_rounds += [VerifyRound(1, _at(day, 7), 1.0, False, ("probes",)),
                              VerifyRound(2, _at(day, 8), 4.0, verify_ok)]
    journal.rollbacks.append(_step("repair", "lab.reconnect", "restore", "ok", day, 20, 2.0))
    journal.steady_after.append(_step("services up", "verify.checks", "steady_state_after",
                                      "error" if outcome == "failed" else "ok", day, 25, 1.0,
                                      error="timed out" if outcome == "failed" else None))
    if rto is not None:
        journal.rto_seconds = rto
        journal.fault_started_at, journal.recovered_at = _at(day, 2), _at(day, 12)
    if outcome == "deviated":
        journal.add("deviated", f"RTO {rto} s exceeds the objective of {objective} s")
    if outcome == "failed":
        journal.add("failed", "steady state not back after restore: timed out")
    journal.duration_seconds = 90.0
    journal.versions = {"planb": "0.1.0", "playbooks_commit": None, "synapse": "1.120.0",
                        "slapd": "2.5.13"}
    journal.footprint.append(Footprint("fallback", "synapse", 250_000_000, 1_500_000_000))
    return journal.payload()


def signed_store(site: SiteConfig) -> JournalStore:
    paths = KeyPaths.for_state_dir(site.state_dir)
    if not paths.private.exists():
        init_keys(paths, None)
    return JournalStore.for_state_dir(site.state_dir, load_signer(paths))


def write_drills(site: SiteConfig) -> list[StoredJournal]:
    """Three drills (pass, deviated, failed) on three days, through the real signed store."""
    store = signed_store(site)
    return [store.append("drill", drill_payload(site, outcome="pass", rto=25.0,
                                                day="2025-03-01")),
            store.append("drill", drill_payload(site, outcome="deviated", rto=75.5,
                                                day="2025-03-15")),
            store.append("drill", drill_payload(site, outcome="failed", rto=None,
                                                day="2025-04-02"))]


def doc_of(journal: StoredJournal, state: str = "valid") -> JournalDoc:
    return JournalDoc(json.loads(journal.path.read_bytes()), journal.path.name, journal.sha256,
                      Verification(state, "SHA256:" + "0" * 64 if state == "valid" else None))


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return make_site(tmp_path)


def test_drill_view_has_the_exercise_report_sections(site: SiteConfig) -> None:
    passed, deviated, _ = write_drills(site)
    view = build_view(doc_of(deviated))
    assert view.title == "Drill report: primary-outage"
    assert view.status.word == "DEVIATED" and view.status.symbol == "⚠"
    assert view.rto is not None and view.rto.outcome.word == "NOT MET"
    assert view.rto.measured == "75.5 s" and view.rto.objective == "60.0 s"
    assert dict(view.scope)["scenario"] == "primary-outage"
    names = [o.name for o in view.objectives]
    assert names[0] == "Recovery time" and "Restore" in names
    assert {p.role.split(" (")[0] for p in view.participants} >= {"operator"}
    assert [s.phase for s in view.timeline] == [
        "steady state (before)", "fault", "activate", "verify", "restore",
        "steady state (after)"]
    assert [p.subject for p in view.probes] == list(SUBJECTS)
    assert "RTO 75.5 s exceeds" in view.observations[0].text
    assert dict(view.versions)["playbooks_commit"] == "not known"
    assert view.footprint[0].memory == "238.4 MiB"
    assert view.signature.sha256 == deviated.sha256
    assert view.signature.key_fingerprint == deviated.envelope.key_fingerprint
    assert view.recommendations == ()  # nothing recorded until someone annotates
    assert build_view(doc_of(passed)).objectives[0].outcome.word == "MET"


def test_failed_drill_without_rto_says_not_measured(site: SiteConfig) -> None:
    failed = write_drills(site)[2]
    view = build_view(doc_of(failed))
    assert view.status.word == "FAILED" and view.rto is not None
    assert view.rto.outcome.word == "NOT MEASURED"
    assert view.timeline[-1].status.word == "ERROR" and view.timeline[-1].detail == "timed out"


def test_failover_journal_view(site: SiteConfig) -> None:
    store = signed_store(site)
    stored = store.append("failover", {
        "format": "planb-failover/1", "event": "activate", "result": "completed",
        "operator": "agnès", "site": "test", "from_mode": "standby", "to_mode": "active",
        "started_at": "2025-03-01T10:00:00.000Z", "ended_at": "2025-03-01T10:00:20.000Z",
        "duration_seconds": 20.0, "warnings": ["preflight failed and was forced"],
        "steps": [{"name": "preflight", "action": "verify.checks", "status": "forced",
                   "started_at": "2025-03-01T10:00:00.000Z", "duration_seconds": 5.0,
                   "output": "", "error": "slapd down"},
                  {"name": "flip", "action": "fallback.switch", "status": "ok",
                   "started_at": "2025-03-01T10:00:05.000Z", "duration_seconds": 1.0,
                   "output": "active", "error": None}]})
    view = build_view(doc_of(stored))
    assert view.title == "Failover report: activate" and view.status.word == "COMPLETED"
    assert [s.status.word for s in view.timeline] == ["FORCED", "OK"]
    assert view.objectives[0].outcome.word == "MET"
    assert view.observations[0].text == "preflight failed and was forced"


def test_signature_state_comes_from_verification(site: SiteConfig) -> None:
    journals = write_drills(site)
    public = load_signer(KeyPaths.for_state_dir(site.state_dir)).public_key
    docs = load_docs(site.state_dir / "journals", [public])
    assert [d.verification.state for d in docs] == ["valid"] * 3
    assert [d.verification.state for d in load_docs(site.state_dir / "journals", [])] == [
        "not checked"] * 3
    data = bytearray(journals[1].path.read_bytes())
    data[data.index(b"primary-outage")] ^= 0x20
    journals[1].path.write_bytes(bytes(data))
    altered = load_docs(site.state_dir / "journals", [public])[1]
    view = build_view(altered)
    assert view.signature.status.word == "ALTERED" and view.signature.status.tone == "fail"
    assert view.signature.problem


def test_logins_in_a_journal_are_pseudonymised_at_render_time(site: SiteConfig) -> None:
    """A journal written by an older producer with real logins: the report hides them."""
    store = signed_store(site)
    payload = drill_payload(site, subjects=("jdupont", "agent-0123456789ab"),
                            output="jdupont logged in as @jdupont:planb.test "
                            "(mail jean.dupont@example.org)")
    view = build_view(doc_of(store.append("drill", payload)))
    rendered = json.dumps([view.probes, view.timeline, view.participants], default=str)
    assert "jdupont" not in rendered and "jean.dupont" not in rendered
    assert [p.subject for p in view.probes] == ["agent-hidden-1", "agent-0123456789ab"]
    assert "@agent-hidden-1:planb.test" in view.timeline[2].output
    assert view.hidden_subjects == 2
    # Real pseudonyms stay as they are.
    clean = build_view(doc_of(store.append("drill", drill_payload(site))))
    assert clean.hidden_subjects == 0 and clean.probes[0].subject == SUBJECTS[0]


def test_journals_written_by_drills_hold_no_login(site: SiteConfig) -> None:
    """What the drills write: probe subjects are pseudonyms, and the operator is named."""
    doc = doc_of(write_drills(site)[0])
    view = build_view(doc)
    assert view.hidden_subjects == 0
    assert all(p.subject.startswith("agent-") and len(p.subject) == 18 for p in view.probes)


def test_unknown_kind_shows_its_payload_as_details(site: SiteConfig) -> None:
    stored = signed_store(site).append("custom", {"note": "<b>hi</b>", "n": 3})
    view = build_view(doc_of(stored))
    assert dict(view.details) == {"note": "<b>hi</b>", "n": "3"}
    assert view.objectives == () and view.status.word == "RECORDED"
