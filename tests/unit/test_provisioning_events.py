"""Folding real ansible-runner events into progress and results (no Ansible run here).

The fixtures are events captured from real runs; tests/unit/fixtures/ansible_events/
README.md has the playbooks and inventories that produced them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from planb.errors import EXIT_INTERRUPTED, EXIT_PLAYBOOK_FAILED, Interrupted, PlaybookFailed
from planb.provisioning import HostStats, PlaybookResult, parse_events
from planb.provisioning.results import EventTally, result_message

FIXTURES = Path(__file__).parent / "fixtures" / "ansible_events"
ARTIFACTS = Path("/state/runs/x/artifacts/ansible")


def events(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def parse(name: str, *, status: str = "failed", rc: int = 2) -> PlaybookResult:
    return parse_events(events(name), playbook=Path("/p/site.yml"), status=status,  # type: ignore[arg-type]
                        rc=rc, duration_s=1.5, artifacts_dir=ARTIFACTS)


def recap_from_stdout(evs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Ansible's own PLAY RECAP text, parsed: what a person reads in the terminal."""
    stats = next(e for e in evs if e["event"] == "playbook_on_stats")
    recap: dict[str, dict[str, int]] = {}
    for line in stats["stdout"].splitlines():
        if " : ok=" in line:
            host, counts = line.split(" : ")
            recap[host.strip()] = {k: int(v) for k, v in
                                   (kv.split("=") for kv in counts.split())}
    return recap


def test_host_stats_match_ansibles_recap() -> None:
    evs = events("mixed_outcomes.json")
    result = parse("mixed_outcomes.json")
    recap = recap_from_stdout(evs)
    assert set(result.hosts) == set(recap) == {"local1", "local2", "dead"}
    for host, counts in recap.items():
        stats = result.hosts[host]
        assert (stats.ok, stats.changed, stats.failed, stats.unreachable, stats.skipped,
                stats.rescued, stats.ignored) == (
            counts["ok"], counts["changed"], counts["failed"], counts["unreachable"],
            counts["skipped"], counts["rescued"], counts["ignored"])


def test_failures_skip_ignored_and_rescued_tasks() -> None:
    result = parse("mixed_outcomes.json")
    # "Fail but ignored" (ignore_errors) and "Fail in block" (rescued) also sent
    # runner_on_failed events; only the real failure and the unreachable host count.
    assert [(f.host, f.task, f.unreachable) for f in result.failures] == [
        ("dead", "Make a change", True),
        ("local1", "Really fail", False),
    ]
    assert result.failures[1].message == "boom on local1"
    assert result.failures[1].play == "Capture play"
    assert "Connection refused" in result.failures[0].message


def test_failed_run_raises_playbook_failed_naming_host_task_and_artifacts() -> None:
    result = parse("mixed_outcomes.json", rc=4)
    assert not result.ok
    with pytest.raises(PlaybookFailed) as caught:
        result.raise_for_status()
    assert caught.value.exit_code == EXIT_PLAYBOOK_FAILED
    message = str(caught.value)
    assert "local1" in message and "Really fail" in message and "boom on local1" in message
    assert "dead" in message and "unreachable" in message
    assert "Fail in block" not in message and "Fail but ignored" not in message
    assert caught.value.hint is not None and str(ARTIFACTS) in caught.value.hint


def test_loop_failure_names_the_failed_item() -> None:
    result = parse("loop_nolog_two_plays.json")
    loop = next(f for f in result.failures if f.host == "local1")
    assert loop.task == "Loop with a failing item"
    assert "One or more items failed" in loop.message
    assert "item /bin/false" in loop.message


def test_no_log_failure_keeps_ansibles_censored_text_only() -> None:
    result = parse("loop_nolog_two_plays.json")
    secret = next(f for f in result.failures if f.host == "local2")
    assert secret.task == "Secret failure"
    assert "hunter2" not in secret.message
    assert "no_log" in secret.message
    assert "hunter2" not in json.dumps(result.as_dict())


def test_failure_message_adds_stderr_and_the_play_it_happened_in() -> None:
    result = parse("loop_nolog_two_plays.json")
    shell = next(f for f in result.failures if f.host == "local3")
    assert shell.play == "Second play"
    assert shell.message == "non-zero return code: oops"


def test_syntax_error_is_reported_with_ansibles_error_text() -> None:
    result = parse("syntax_error.json", rc=4)
    assert result.hosts == {} and result.failures == ()
    assert result.error is not None
    assert result.error.startswith("ERROR! couldn't resolve module/action")
    assert "pb4.yml': line 4" in result.error
    with pytest.raises(PlaybookFailed, match="nonexistent_module_xyz"):
        result.raise_for_status()


def test_canceled_run_counts_what_ran_and_raises_interrupted() -> None:
    result = parse("canceled.json", status="canceled", rc=254)
    # No playbook_on_stats: counts come from the events seen before the cancel.
    assert result.hosts == {h: HostStats(ok=1) for h in ("local1", "local2", "local3")}
    assert not result.ok and result.failures == ()
    with pytest.raises(Interrupted) as caught:
        result.raise_for_status()
    assert caught.value.exit_code == EXIT_INTERRUPTED


def test_progress_follows_play_task_and_counts() -> None:
    tally = EventTally()
    snapshots = [tally.add(e) for e in events("mixed_outcomes.json")]
    change = [s for s in snapshots if s.event == "runner_on_ok" and s.task == "Make a change"]
    assert change and all(s.play == "Capture play" for s in change)
    assert change[-1].hosts["local1"].changed == 1
    assert change[-1].hosts["dead"].unreachable == 1
    # Counts never go backwards while the run goes on.
    ok_counts = [s.hosts.get("local2", HostStats()).ok for s in snapshots]
    assert ok_counts == sorted(ok_counts)
    assert snapshots[-1].event == "playbook_on_stats"
    assert snapshots[-1].hosts == parse("mixed_outcomes.json").hosts


def test_result_properties_and_json() -> None:
    ok = PlaybookResult(playbook=Path("/p/site.yml"), status="successful", rc=0, duration_s=2.0,
                        hosts={"a": HostStats(ok=5, changed=2), "b": HostStats(ok=5, changed=1)},
                        failures=(), artifacts_dir=ARTIFACTS)
    assert ok.ok and ok.changed_total == 3
    ok.raise_for_status()
    data = json.loads(json.dumps(ok.as_dict()))
    assert data["ok"] is True and data["changed_total"] == 3
    assert data["hosts"]["a"]["changed"] == 2
    unreachable = PlaybookResult(playbook=Path("/p/site.yml"), status="successful", rc=0,
                                 duration_s=2.0, hosts={"a": HostStats(unreachable=1)},
                                 failures=(), artifacts_dir=ARTIFACTS)
    assert not unreachable.ok


def test_long_messages_are_clipped_to_one_line() -> None:
    message = result_message({"msg": "line one\nline two " + "x" * 1000})
    assert "\n" not in message
    assert message.startswith("line one line two") and len(message) <= 400
