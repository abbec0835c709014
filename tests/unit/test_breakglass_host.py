"""planb-breakglass on a host folder: the switch, its refusals, the lock, the signed record."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from planb.breakglass import host, lock
from planb.breakglass.cli import arguments, main
from planb.breakglass.paths import HostPaths
from planb.errors import PlanbError, UsageError
from planb.mode import verify_audit
from planb.reports.keys import load_public_key
from planb.reports.verify import verify_directory


@pytest.fixture
def paths(tmp_path: Path) -> HostPaths:
    paths = HostPaths(tmp_path)
    paths.mode_file.parent.mkdir(parents=True)
    paths.mode_file.write_text("standby\n")
    host.init_host_key(paths)
    return paths


def _audit_results(paths: HostPaths) -> list[tuple[str | None, str]]:
    return [(e.step, e.result) for e in host._audit(paths).entries()]


def test_activate_then_deactivate_switch_the_host_and_sign_the_record(paths: HostPaths
                                                                      ) -> None:
    posted = []
    done = host.activate(paths, operator="agnès", reason="AD chiffré", public_message="Bonjour",
                         announcer=lambda i: posted.append(i) or f"posted {i.id}")
    assert done.mode == "active" and paths.mode_file.read_text() == "active\n"
    assert paths.public_message.read_text() == "Bonjour\n"
    assert [s.name for s in done.steps] == ["public-message", "flip", "backup-schedule",
                                            "announce"]
    assert all(s.status == "ok" for s in done.steps) and posted[0].id == done.incident_id
    assert host.status(paths).recorded.operator == "agnès"  # type: ignore[union-attr]
    back = host.deactivate(paths, operator="agnès", reason="fin")
    assert back.mode == "standby" and paths.mode_file.read_text() == "standby\n"
    assert not paths.public_message.exists() and back.incident_id == done.incident_id
    key = load_public_key(paths.public_key)
    verdict = verify_directory(paths.journals, [key])
    assert verdict.ok and len(verdict.journals) == 2, verdict.failure
    payloads = [json.loads(p.read_text())["payload"]
                for p in sorted(paths.journals.glob("0*.json"))]
    assert [(p["event"], p["via"], p["to_mode"]) for p in payloads] == [
        ("activate", "breakglass", "active"), ("deactivate", "breakglass", "standby")]
    assert payloads[1]["incident_duration_seconds"] is not None
    audit = verify_audit(paths.state_dir, {host.fingerprint(key): key}, path=paths.audit_log)
    assert audit.ok and audit.entries == 11, audit.problem  # 1 + 4 + 1, 1 + 3 + 1
    assert ("flip", "ok") in _audit_results(paths)


def test_activating_an_active_host_is_refused_and_changes_nothing(paths: HostPaths) -> None:
    host.activate(paths, operator="a", reason="r")
    journals = sorted(paths.journals.glob("*.json"))
    with pytest.raises(UsageError, match="already active since .* \\(a, through break-glass"):
        host.activate(paths, operator="b", reason="again")
    assert sorted(paths.journals.glob("*.json")) == journals
    assert _audit_results(paths)[-2:] == [(None, "requested"), (None, "refused")]
    paths.mode_file.write_text("standby\n")
    with pytest.raises(UsageError, match="already standby"):
        host.deactivate(paths, operator="b", reason="nothing to do")


def test_a_held_lock_refuses_and_names_its_holder(paths: HostPaths) -> None:
    with lock.held(paths.lock, "planb controller (ops)", "failover activate"):
        assert lock.holder(paths.lock).who == "planb controller (ops)"  # type: ignore[union-attr]
        with pytest.raises(lock.LockHeld, match="held by planb controller \\(ops\\) "
                           "\\(failover activate\\) since"):
            host.activate(paths, operator="a", reason="r")
    assert paths.mode_file.read_text() == "standby\n"
    assert _audit_results(paths)[-1] == (None, "refused")
    assert lock.holder(paths.lock) is None
    host.activate(paths, operator="a", reason="r")  # free again


def test_the_lock_is_released_by_an_error_and_a_stale_record_is_ignored(paths: HostPaths
                                                                        ) -> None:
    with pytest.raises(RuntimeError), lock.held(paths.lock, "x", "y"):
        raise RuntimeError
    paths.lock.write_text(json.dumps({"who": "crashed", "what": "w", "since": "s", "pid": 1}))
    assert lock.holder(paths.lock) is None
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock.held(paths.lock, "other", "thread"):
            ready.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    ready.wait(10)
    try:
        assert lock.holder(paths.lock).who == "other"  # type: ignore[union-attr]
    finally:
        release.set()
        worker.join()


def test_a_failed_announcement_is_a_warning_and_the_host_is_active(paths: HostPaths) -> None:
    def fails(_: host.Incident) -> str:
        raise PlanbError("Synapse does not answer")

    done = host.activate(paths, operator="a", reason="r", announcer=fails)
    assert done.mode == "active" and done.warnings == ("announce failed: Synapse does not answer",)


def test_a_failed_switch_is_undone_and_recorded(paths: HostPaths) -> None:
    # The message is written, then the switch cannot be (its temporary file is in the way).
    paths.mode_file.with_name(".mode.tmp").mkdir()
    with pytest.raises(PlanbError, match="activate failed; the fallback stays standby"):
        host.activate(paths, operator="a", reason="r", public_message="hello")
    assert paths.mode_file.read_text() == "standby\n"
    assert not paths.public_message.exists()  # undone
    payload = json.loads(next(paths.journals.glob("0*.json")).read_text())["payload"]
    assert payload["result"] == "failed" and payload["to_mode"] == "standby"
    assert [(s["name"], s["status"]) for s in payload["steps"]] == [
        ("public-message", "ok"), ("flip", "failed")]
    assert ("public-message", "undone") in _audit_results(paths)


def test_no_signing_key_no_switch(tmp_path: Path) -> None:
    paths = HostPaths(tmp_path)
    with pytest.raises(PlanbError, match="no signing key"):
        host.activate(paths, operator="a", reason="r")
    assert not paths.mode_file.exists()


def test_the_forced_command_takes_only_the_break_glass_verbs() -> None:
    env = {"SSH_ORIGINAL_COMMAND": "activate --operator 'Agnès B' --reason \"AD down\""}
    assert arguments(["ignored"], env) == ["activate", "--operator", "Agnès B", "--reason",
                                           "AD down"]
    assert arguments([], {"SSH_ORIGINAL_COMMAND": "/opt/planb/bin/planb-breakglass status"}
                     ) == ["status"]
    for refused in ("lock --operator x --what y", "init-key", "bash -i", "cat /etc/shadow"):
        with pytest.raises(UsageError, match="is not a break-glass command"):
            arguments([], {"SSH_ORIGINAL_COMMAND": refused})
    with pytest.raises(UsageError, match="cannot read the command"):
        arguments([], {"SSH_ORIGINAL_COMMAND": "activate --reason 'unclosed"})
    assert arguments(["lock", "--operator", "o", "--what", "w"], {}) == [
        "lock", "--operator", "o", "--what", "w"]


def test_exit_codes_and_messages(paths: HostPaths, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["activate", "--operator", "a"], paths) == 2
    assert "--reason" in capsys.readouterr().err
    assert main(["activate", "--operator", "a", "--reason", "r", "--no-announce"], paths) == 0
    out = capsys.readouterr().out
    assert "the fallback is now active" in out and "not posted" in out
    assert main(["activate", "--operator", "b", "--reason", "r"], paths) == 2
    assert "already active" in capsys.readouterr().err
    assert main(["status", "--json"], paths) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["mode"] == "active" and status["journals"] == 1 and status["lock"] is None


def test_rotate_key_retires_the_old_key_on_record(paths: HostPaths,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    host.activate(paths, operator="a", reason="r")
    old = load_public_key(paths.public_key)
    env = {"SSH_ORIGINAL_COMMAND": "rotate-key --operator a --reason 'yearly rotation'"}
    assert main(arguments([], env), paths) == 0
    assert "retired " + host.fingerprint(old) in capsys.readouterr().out
    new = load_public_key(paths.public_key)
    assert host.fingerprint(new) != host.fingerprint(old)
    host.deactivate(paths, operator="a", reason="r")
    verdict = verify_directory(paths.journals, [new])  # the new key alone: chain verifies
    assert verdict.ok and len(verdict.journals) == 3, verdict.failure
    assert [c.signed_by for c in verdict.journals][0] == host.fingerprint(old)
    assert not verify_directory(paths.journals, [old]).ok
    audit = verify_audit(paths.state_dir, {host.fingerprint(new): new}, path=paths.audit_log)
    assert audit.ok, audit.problem
