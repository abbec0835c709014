"""matrix.standby_login's verdicts (planb/verify/standby_check.py) on scripted answers.

The HTTP answers and the hosts' journals are stand-ins here; the check runs against a
real Synapse and slapd in tests/integration/test_verify_lab.py (standby, every check
must pass) and test_login_guard_lab.py shows those answers and logs for real.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from planb.inventory import InventoryHost
from planb.verify import standby_check
from planb.verify.endpoints import HttpAnswer
from planb.verify.model import CheckFailed, CheckSkipped

REFUSED = HttpAnswer(403, {"errcode": "M_FORBIDDEN", "error": "Invalid username or password"},
                     '{"errcode":"M_FORBIDDEN","error":"Invalid username or password"}', 0.01)
HOST = InventoryHost("fallback", "192.0.2.10",
                     ("fallback_directory", "fallback_messaging", "fallback_proxy"))


@dataclass
class Scene:
    """What the fallback answers: the mode, the two logins, the journals' counts."""

    mode: str = "standby"
    answers: list[HttpAnswer] = field(default_factory=lambda: [REFUSED, REFUSED])
    guard_refusals: int = 2
    slapd_canary: int = 0
    slapd_all: int = 0
    sent: list[str] = field(default_factory=list)

    def run(self, command: str) -> Any:
        if command.startswith("cat "):
            out = self.mode
        elif "-u synapse" in command:
            out = str(self.guard_refusals)
        elif "PLANB-PROBE-1" in command:
            out = str(self.slapd_canary)
        else:
            out = str(self.slapd_all)
        return SimpleNamespace(rc=0, stdout=out + "\n")


@pytest.fixture
def scene(monkeypatch: pytest.MonkeyPatch) -> Scene:
    scene = Scene()
    monkeypatch.setattr(standby_check, "load_hosts", lambda site: [HOST])
    monkeypatch.setattr(standby_check.time, "sleep", lambda s: None)

    def https(site: Any, address: str, method: str, path: str, body: Any) -> HttpAnswer:
        scene.sent.append(body["identifier"]["user"])
        return scene.answers[len(scene.sent) - 1]

    monkeypatch.setattr(standby_check, "https_request", https)
    return scene


def run(scene: Scene) -> str:
    ctx = SimpleNamespace(site=None, probe_accounts=[("planb-probe-1", "s3cret-probe")],
                          remote=lambda host: scene)
    return standby_check.standby_refuses_before_directory(ctx, HOST)  # type: ignore[arg-type]


def test_standby_with_one_answer_and_no_directory_passes(scene: Scene) -> None:
    message = run(scene)
    assert scene.sent == ["PLANB-PROBE-1", "PLANB-PROBE-1"]
    assert "403 M_FORBIDDEN" in message and "s3cret" not in message


def test_not_applicable_when_active(scene: Scene) -> None:
    scene.mode = "active"
    with pytest.raises(CheckSkipped, match="not applicable"):
        run(scene)
    assert scene.sent == []


@pytest.mark.parametrize(("change", "why"), [
    ({"answers": [HttpAnswer(200, {}, "{}", 0.1), REFUSED]}, "logged in during standby"),
    ({"answers": [HttpAnswer(403, {"errcode": "M_FORBIDDEN"}, "other", 0.1), REFUSED]},
     "different answers"),
    ({"guard_refusals": 0}, "not refused by the standby switch"),
    ({"slapd_canary": 1, "slapd_all": 5}, "slapd logged 1 operations naming"),
])
def test_an_oracle_or_a_directory_request_fails(scene: Scene, change: dict[str, Any],
                                                why: str) -> None:
    for key, value in change.items():
        setattr(scene, key, value)
    with pytest.raises(CheckFailed, match=why):
        run(scene)
