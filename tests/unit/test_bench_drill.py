"""bench/drill.py fails (exit 4) when a drill misses its RTO objective."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "drill.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_drill", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_drill"] = module
    spec.loader.exec_module(module)
    return module


def result(outcome: str, rto: float | None, objective: int = 60) -> SimpleNamespace:
    return SimpleNamespace(outcome=outcome, rto_seconds=rto, objective_seconds=objective)


def test_drills_within_their_objective_are_no_miss(bench: ModuleType) -> None:
    assert bench.rto_misses([("a", result("pass", 12.5)), ("b", result("pass", 60.0))]) == []


def test_a_slow_failed_or_unmeasured_drill_is_a_miss(bench: ModuleType) -> None:
    misses = bench.rto_misses([("slow", result("deviated", 75.2)),
                               ("broken", result("failed", None)),
                               ("odd", result("deviated", 10.0)),
                               ("fine", result("pass", 5.0))])
    assert misses == ["slow: RTO 75.2 s exceeds the objective 60 s",
                      "broken: failed, no RTO measured", "odd: deviated"]
    assert bench.EXIT_RTO_MISSED == 4


@pytest.mark.parametrize(("rto", "code"), [(90.0, 4), (30.0, 0)])
def test_main_exits_4_when_a_drill_misses_its_objective(
        bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        rto: float, code: int) -> None:
    """main's exit status follows the drills' RTOs (the drills themselves need the lab)."""
    monkeypatch.setattr(bench, "load_config", lambda path: SimpleNamespace(lab=None))
    monkeypatch.setattr(bench, "find_config_path", lambda given: tmp_path / "planb.yml")
    monkeypatch.setattr(bench, "run_drills", lambda site, names: bench.rto_misses(
        [(name, result("pass" if rto <= 60 else "deviated", rto)) for name in names]))
    assert bench.main(["--drills-only", "--scenario", "primary-outage"]) == code
