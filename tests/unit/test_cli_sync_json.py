"""``planb sync apply --json``: the result alone on stdout, the plan and errors on stderr.

A real apply needs both directories (the lab tests run it); here the CLI's own part runs
on real plan and result objects: what is printed, where, and the exit.
"""

from __future__ import annotations

import json

import pytest

from planb.cli.context import err_console
from planb.cli.sync_cmd import _Confirm, _report
from planb.directory.fallback_apply import ApplyReport, Failure
from planb.directory.model import SourceResult
from planb.directory.plan import Plan, StatusChange
from planb.directory.sync import SyncPlan, SyncResult
from planb.directory.targets import FallbackState, MatrixState
from planb.errors import PlanbError


def _planned(plan: Plan, *, matrix: bool = False) -> SyncPlan:
    return SyncPlan(plan, SourceResult("snapshot", ()), FallbackState.build(()),
                    MatrixState.build(()) if matrix else None)


def _result(remaining: Plan, failures: list[Failure], *, matrix: bool = False) -> SyncResult:
    report = ApplyReport("fallback LDAP", done={"ldap_add": 3, "ldap_deactivate": 1},
                         failures=failures)
    return SyncResult(_planned(Plan("snapshot", 4, 1), matrix=matrix), (report,), remaining,
                      seconds=1.25)


def test_a_confirmed_apply_prints_only_its_json(capsys: pytest.CaptureFixture[str]) -> None:
    _report(_result(Plan("snapshot", 4, 3), []), json_output=True)
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["applied"] and data["confirmed"] and data["remaining"] == {}
    assert data["targets"] == [{"target": "fallback LDAP", "failures": [],
                                "done": {"ldap_add": 3, "ldap_deactivate": 1}}]
    assert data["matrix_configured"] is False


def test_failed_writes_are_in_the_json_and_still_exit_1(
        capsys: pytest.CaptureFixture[str]) -> None:
    left = Plan("snapshot", 4, 3, ldap_deactivations=(StatusChange("id-1", "bob", "gone"),))
    failure = Failure("ldap_deactivate", "bob", "insufficientAccessRights")
    with pytest.raises(PlanbError, match="1 failed write"):
        _report(_result(left, [failure]), json_output=True)
    data = json.loads(capsys.readouterr().out)
    assert not data["confirmed"] and data["remaining"] == {"ldap_deactivate": 1}
    assert data["targets"][0]["failures"] == [
        {"kind": "ldap_deactivate", "who": "bob", "reason": "insufficientAccessRights"}]


def test_with_json_the_plan_to_confirm_goes_to_stderr(
        capsys: pytest.CaptureFixture[str]) -> None:
    plan = Plan("snapshot", 4, 3, ldap_deactivations=(StatusChange("id-1", "bob", "gone"),))
    assert _Confirm(yes=True, out=err_console)(_planned(plan)) is True
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "agents deactivated" in captured.err and "bob: gone" in captured.err
