"""bench/capacity.py and its model: per-op costs by service, the rush/steady arithmetic,
a layout that cannot carry the demand named, and the exit status."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model() -> ModuleType:
    return load("capacity_model")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("capacity")


def test_workers_count_for_synapse_and_cpu_is_per_operation(bench: ModuleType) -> None:
    phase = bench.Phase("login", 4, 1.0, cpu={
        "fallback/synapse.service": 0.4, "fallback/synapse-worker@client1.service": 0.4,
        "fallback/postgresql@15-main.service": 0.2, "fallback/slapd.service": 0.08,
        "fallback/nginx.service": 0.04})
    assert phase.per_op() == pytest.approx({"synapse": 0.2, "postgresql": 0.05,
                                            "slapd": 0.02, "nginx": 0.01})


def test_the_rush_spreads_each_agents_login_and_first_sync_over_the_window(
        model: ModuleType) -> None:
    costs = {"login": {"synapse": 0.05, "slapd": 0.01}, "initial_sync": {"synapse": 0.2}}
    w = model.Workload(agents=900, rush_seconds=900, typos=0.0, rush_announcements=0,
                       rush_room_messages=0, rush_direct_messages=0, long_poll_seconds=1e12)
    demand = model.rush(costs, w)
    assert demand.cores["synapse"] == pytest.approx((0.05 + 0.2) / model.UTILISATION)
    assert demand.cores["slapd"] == pytest.approx(0.01 / model.UTILISATION)


def test_a_message_costs_per_member_and_per_delivery(model: ModuleType) -> None:
    costs = {"send": {"synapse": 0.01}, "send_per_member": {"synapse": 0.001},
             "delivery": {"synapse": 0.002}}
    w = model.Workload(agents=3600, room_messages_per_hour=0, direct_messages_per_hour=0,
                       announcements_per_hour=1, long_poll_seconds=1e12)
    # one announcement an hour to 3,600 agents: 0.01 + 3600 * (0.001 + 0.002) CPU-s
    demand = model.steady(costs, w)
    assert demand.cores["synapse"] == pytest.approx(
        (0.01 + 3600 * 0.003) / 3600 / model.UTILISATION)
    # its delivery is the incremental sync workers' part, the rest the main process's
    assert demand.roles["sync_incremental"] == pytest.approx(
        3600 * 0.002 / 3600 / model.UTILISATION)
    # room messages reach every agent once per room message (each is in one department)
    w = model.Workload(agents=3600, room_messages_per_hour=10, direct_messages_per_hour=0,
                       announcements_per_hour=0, long_poll_seconds=1e12, departments=100)
    assert model.steady_counts(w)["delivery"] == 36_000
    assert model.steady_counts(w)["send"] == 1_000


def test_a_layout_short_of_cores_processes_or_memory_is_named(model: ModuleType) -> None:
    layout = model.Layout("small", cores={"synapse": 4, "slapd": 1},
                          mib={"synapse": 1000},
                          processes={"main+persisters": 2, "sync_incremental": 1})
    demand = model.Demand(cores={"synapse": 3.0, "slapd": 0.5},
                          roles={"main+persisters": 1.5, "sync_incremental": 1.5})
    misses = model.layout_misses(layout, demand, {"synapse": 1200})
    assert misses == [
        "small: Synapse's sync_incremental needs 1.50 cores but 1 Python process(es) use "
        "at most 1",
        "small: synapse needs 1200 MiB, the layout gives 1000"]
    assert model.layout_misses(layout, model.Demand(cores={"synapse": 2.0}, roles={
        "sync_incremental": 0.9}), {"synapse": 900}) == []
    monolith = model.Layout("mono", cores={"synapse": 4}, mib={},
                            processes={"main+persisters": 1})
    assert model.layout_misses(monolith, model.Demand(cores={"synapse": 1.2}, roles={
        "sync_incremental": 0.6, "main+persisters": 0.6}), {}) == [
        "mono: Synapse's main+persisters needs 1.20 cores but 1 Python process(es) use at "
        "most 1"]


def test_department_rooms_follow_the_labs_generator(model: ModuleType) -> None:
    assert [model.departments(n) for n in (60, 2000, 50_000)] == [6, 150, 150]


def test_the_recommended_layouts_carry_the_model_of_the_measured_costs(
        model: ModuleType) -> None:
    """The monolith's costs measured on the lab (docs/capacity.md): 9,000 agents need more
    than one incremental sync worker, and the recommended layouts carry the demand."""
    costs = {"login": {"synapse": 0.0167, "postgresql": 0.00495, "slapd": 0.00185},
             "initial_sync": {"synapse": 0.0383, "postgresql": 0.0269},
             "incremental_sync": {"synapse": 0.00188, "postgresql": 0.0001},
             "send": {"synapse": 0.0372, "postgresql": 0.0194},
             "send_per_member": {"synapse": 0.000024, "postgresql": 0.000023},
             "delivery": {"synapse": 0.00768, "postgresql": 0.00442}}
    preset = {"login": {"synapse": 0.0372, "postgresql": 0.01045, "slapd": 0.00225},
              "initial_sync": {"synapse": 0.07845, "postgresql": 0.06645},
              "incremental_sync": {"synapse": 0.00593, "postgresql": 0.00152},
              "send": {"synapse": 0.0484, "postgresql": 0.0261},
              "send_per_member": {"synapse": 0.000048, "postgresql": 0.00003},
              "delivery": {"synapse": 0.00916, "postgresql": 0.00474}}
    for measured in (costs, preset):
        for n, layout in model.LAYOUTS.items():
            w = model.Workload(agents=n, departments=model.departments(n))
            demand = model.rush(measured, w)
            assert model.layout_misses(layout, demand, model.memory({}, {}, n)) == []
    rush_9000 = model.rush(costs, model.Workload(agents=9000, departments=150))
    assert 1 < rush_9000.roles["sync_incremental"] < 3


def test_exit_status_names_a_missing_measurement_before_a_layout_miss(
        bench: ModuleType) -> None:
    assert bench.verdict([], []) == 0
    assert bench.verdict(["login: no operation succeeded"], ["x"]) == bench.EXIT_MISSING == 2
    assert bench.verdict([], ["9,000: synapse needs 9 cores"]) == bench.EXIT_LAYOUT == 3


def test_the_workers_preset_is_set_in_planb_yml_keeping_its_comments() -> None:
    workers = load("workers")
    text = ("fallback:\n  ldap_suffix: dc=x\n  # the processes\n  synapse:\n"
            "    # none or activation\n    workers: none\n\nprimary:\n  workers: none\n")
    done = workers.set_preset_text(text, "activation")
    assert done == text.replace("    workers: none", "    workers: activation", 1)
    assert workers.set_preset_text(done, "none") == text
    assert workers.set_preset_text("fallback:\n  ldap_suffix: dc=x\n", "activation") == (
        "fallback:\n  synapse:\n    workers: activation\n  ldap_suffix: dc=x\n")
    with pytest.raises(ValueError, match="unknown workers preset"):
        workers.set_preset_text(text, "many")
