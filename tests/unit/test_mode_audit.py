"""The failover audit log is tamper-evident: chained lines, a signed head, checked by verify."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.mode import AUDIT_HEAD_NAME, AuditEntry, AuditLog, verify_audit
from planb.reports.anchor import SyslogAnchor
from planb.reports.keys import KeyPaths, Signer, init_keys, load_signer
from planb.reports.store import JournalStore
from tests.unit.test_drills_scenario import make_site
from tests.unit.test_failover_machine import Fallback, machine

runner = CliRunner()


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    paths = KeyPaths(tmp_path / "keys")
    init_keys(paths, None)
    return load_signer(paths)


def _entry(n: int, who: str = "agnès") -> AuditEntry:
    return AuditEntry(at=f"2025-03-01T09:3{n}:00.000Z", who=who, why="exercice",
                      event="activate", result="ok", step=f"step-{n}", incident_id="inc-1")


def _log(state: Path, signer: Signer, count: int = 4) -> AuditLog:
    audit = AuditLog(state, signer=signer, anchor=SyslogAnchor(state / "no-syslog"))
    for n in range(count):
        audit.append(_entry(n))
    return audit


def _keys(signer: Signer) -> dict[str, object]:
    return {signer.fingerprint: signer.public_key}


def test_intact_log_verifies_and_reads_back(tmp_path: Path, signer: Signer) -> None:
    audit = _log(tmp_path, signer)
    verdict = verify_audit(tmp_path, _keys(signer))  # type: ignore[arg-type]
    assert verdict.ok and verdict.entries == 4, verdict.problem
    assert [e.step for e in audit.entries()] == ["step-0", "step-1", "step-2", "step-3"]
    lines = audit.path.read_text().splitlines()
    assert json.loads(lines[0])["prev_sha256"] is None
    assert all(json.loads(line)["prev_sha256"] for line in lines[1:])


@pytest.mark.parametrize("line", [1, 2, 4])
def test_an_edited_line_is_named(tmp_path: Path, signer: Signer, line: int) -> None:
    audit = _log(tmp_path, signer)
    lines = audit.path.read_text().splitlines()
    lines[line - 1] = lines[line - 1].replace("agnès", "mallory")
    audit.path.write_text("\n".join(lines) + "\n")
    verdict = verify_audit(tmp_path, _keys(signer))  # type: ignore[arg-type]
    assert not verdict.ok
    if line < 4:
        assert f"line {line + 1} does not follow line {line}" in str(verdict.problem)
    else:
        assert "a line was altered" in str(verdict.problem)


def test_removed_newest_lines_and_a_removed_head_fail(tmp_path: Path, signer: Signer) -> None:
    audit = _log(tmp_path, signer)
    lines = audit.path.read_text().splitlines()
    audit.path.write_text("\n".join(lines[:2]) + "\n")
    assert "lines 3 to 4 were removed" in str(
        verify_audit(tmp_path, _keys(signer)).problem)  # type: ignore[arg-type]
    audit.head_path.unlink()
    assert f"{AUDIT_HEAD_NAME} is missing" in str(
        verify_audit(tmp_path, _keys(signer)).problem)  # type: ignore[arg-type]


def test_a_line_added_by_hand_with_a_valid_chain_is_caught_by_the_head(
        tmp_path: Path, signer: Signer) -> None:
    _log(tmp_path, signer)
    AuditLog(tmp_path, anchor=SyslogAnchor(tmp_path / "no-syslog")).append(
        _entry(9, "mallory"))  # chained correctly, but without the signing key
    verdict = verify_audit(tmp_path, _keys(signer))  # type: ignore[arg-type]
    assert "lines 5 to 5 come after the signed head" in str(verdict.problem)


def test_a_head_re_signed_with_another_key_fails(tmp_path: Path, signer: Signer) -> None:
    other = KeyPaths(tmp_path / "other")
    init_keys(other, None)
    _log(tmp_path, signer)
    AuditLog(tmp_path, signer=load_signer(other),
             anchor=SyslogAnchor(tmp_path / "no-syslog")).append(_entry(9, "mallory"))
    verdict = verify_audit(tmp_path, _keys(signer))  # type: ignore[arg-type]
    assert "not a trusted key" in str(verdict.problem)


def test_a_failover_signs_its_audit_head_with_the_journals_key(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    paths = KeyPaths.for_state_dir(site.state_dir)
    init_keys(paths, None)
    machine(site, Fallback()).activate("ransomware on the main AD", operator="rssi")
    signer = load_signer(paths)
    verdict = verify_audit(site.state_dir, _keys(signer))  # type: ignore[arg-type]
    # requested, 6 steps (preflight ... public-pages), completed
    assert verdict.ok and verdict.entries == 8, verdict.problem


def test_a_log_written_before_chaining_is_still_read(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path)
    audit.path.parent.mkdir(parents=True)
    old = {"at": "2024-01-01T00:00:00.000Z", "who": "root", "why": "test", "event": "activate",
           "result": "ok", "step": None, "incident_id": None, "detail": ""}
    audit.path.write_text(json.dumps(old) + "\n")
    verdict = verify_audit(tmp_path, None)
    assert verdict.ok and "predates its chain" in verdict.notes[0]
    assert audit.entries()[0].who == "root"


def test_each_audit_head_is_logged_to_syslog(tmp_path: Path, signer: Signer) -> None:
    address = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslog:
        syslog.bind(str(address))
        syslog.settimeout(5)
        AuditLog(tmp_path, signer=signer, anchor=SyslogAnchor(address)).append(_entry(0))
        line = syslog.recv(4096).decode()
    assert "planb audit head: " in line and "entries=1 sha256=" in line


def test_report_verify_says_when_the_audit_log_was_altered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    monkeypatch.delenv("PLANB_KEY_PASSPHRASE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "site"]).exit_code == 0
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    state = tmp_path / "site" / ".planb"
    signer = load_signer(KeyPaths.for_state_dir(state))
    JournalStore.for_state_dir(state, signer).append("drill", {"status": "pass"})
    audit = _log(state, signer)
    ok = runner.invoke(app, ["report", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "audit log: 4 lines, chain and signed head valid" in ok.output
    audit.path.write_text(audit.path.read_text().replace('"step-1"', '"step-X"'))
    bad = runner.invoke(app, ["report", "verify"])
    assert bad.exit_code == 1
    assert "audit log ALTERED" in bad.output and "line 3 does not follow line 2" in bad.output
    status = runner.invoke(app, ["failover", "status"])
    assert status.exit_code == 0, status.output
    assert "audit log ALTERED" in status.output and "line 3" in status.output
    as_json = json.loads(runner.invoke(app, ["failover", "status", "--json"]).stdout)
    assert as_json["audit_log"]["ok"] is False
