"""The capacity model of docs/capacity.md: measured costs per operation -> cores and MiB
per service for N agents, at the activation rush and in steady use.

Pure arithmetic (no lab): bench/capacity.py measures the per-operation costs and calls
:func:`rush`, :func:`steady`, :func:`memory` and :func:`layout_misses`.

Costs are CPU-seconds per operation per service (``synapse`` is the sum of Synapse's
main process and its workers). A message's cost is split in two: what sending it costs
per member of the room (Synapse evaluates every member's push rules when it persists the
event) and what delivering it costs per connected member (the incremental sync that
returns it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

SERVICES = ("synapse", "postgresql", "slapd", "nginx", "redis")
#: The operations bench/capacity.py measures, per unit of what the model counts.
OPS = ("login", "initial_sync", "incremental_sync", "send", "send_per_member", "delivery",
       "join")
#: Share of a core a service may use at the peak (the rest is headroom).
UTILISATION = 0.7
#: One Python process (Synapse's main process, or one worker) uses at most one core.
CORES_PER_PROCESS = 1.0

Costs = Mapping[str, Mapping[str, float]]  # op -> service -> CPU-seconds per op


@dataclass(frozen=True)
class Workload:
    """What N agents do; the defaults are planb's assumptions (docs/capacity.md)."""

    agents: int
    #: Activation rush: every agent logs in and makes its first sync within this window.
    rush_seconds: float = 15 * 60
    #: Share of agents who mistype their password once first (a failed login costs a login).
    typos: float = 0.05
    #: Announcements to every agent during the rush, and per hour afterwards.
    rush_announcements: int = 3
    announcements_per_hour: float = 1.0
    #: Messages each agent sends to its department room: in the rush, and per hour after.
    rush_messages_per_agent: float = 2.0
    messages_per_agent_hour: float = 6.0
    #: A connected client's long-poll returns (empty) every this many seconds.
    long_poll_seconds: float = 30.0
    #: The department room a random agent writes to: mean members (lab's Zipf law).
    department_members: float = 0.0


@dataclass
class Demand:
    """Cores per service, and what counted."""

    cores: dict[str, float] = field(default_factory=dict)
    per_op: dict[str, float] = field(default_factory=dict)  # op -> CPU-s (all services)

    def total(self) -> float:
        return sum(self.cores.values())


def department_members(agents: int) -> float:
    """Mean size of the department room a random agent is in (sum s^2 / sum s), from the
    lab's own generator (departments follow a Zipf law, at most 150 of them)."""
    from planb.lab.agents import generate

    sizes = Counter(a.department.code for a in generate(agents)).values()
    return sum(s * s for s in sizes) / sum(sizes)


def _demand(costs: Costs, counts: Mapping[str, float], seconds: float) -> Demand:
    demand = Demand()
    for op, count in counts.items():
        for service, cpu in costs.get(op, {}).items():
            demand.cores[service] = demand.cores.get(service, 0.0) + cpu * count / seconds
            demand.per_op[op] = demand.per_op.get(op, 0.0) + cpu * count
    demand.cores = {s: c / UTILISATION for s, c in demand.cores.items()}
    return demand


def rush_counts(w: Workload) -> dict[str, float]:
    """How many of each operation the activation rush makes."""
    n, d = w.agents, w.department_members
    messages = n * w.rush_messages_per_agent
    connected = n / 2  # on average over the window: agents arrive through it
    return {
        "login": n * (1 + w.typos),
        "initial_sync": n,
        "incremental_sync": connected * w.rush_seconds / w.long_poll_seconds,
        "send": w.rush_announcements + messages,
        "send_per_member": w.rush_announcements * n + messages * d,
        "delivery": w.rush_announcements * connected + messages * d,
        "join": 0.0,
    }


def steady_counts(w: Workload, seconds: float = 3600.0) -> dict[str, float]:
    """Operations of ``seconds`` of steady use (every agent connected)."""
    n, d, hours = w.agents, w.department_members, seconds / 3600
    messages = n * w.messages_per_agent_hour * hours
    return {
        "login": 0.0,
        "initial_sync": 0.0,
        "incremental_sync": n * seconds / w.long_poll_seconds,
        "send": w.announcements_per_hour * hours + messages,
        "send_per_member": w.announcements_per_hour * hours * n + messages * d,
        "delivery": w.announcements_per_hour * hours * n + messages * d,
        "join": 0.0,
    }


def rush(costs: Costs, w: Workload) -> Demand:
    return _demand(costs, rush_counts(w), w.rush_seconds)


def steady(costs: Costs, w: Workload) -> Demand:
    return _demand(costs, steady_counts(w), 3600.0)


def first_sync_seconds(costs: Costs, joins: float, synapse_processes: int = 1) -> float:
    """Lower bound of the first full sync's joins: Synapse's CPU for them spread over the
    processes that persist events (one core each)."""
    cpu = costs.get("join", {}).get("synapse", 0.0) * joins
    return cpu / (CORES_PER_PROCESS * max(1, synapse_processes))


def memory(base_mib: Mapping[str, float], per_agent_mib: Mapping[str, float],
           agents: int) -> dict[str, float]:
    """MiB per service: the idle service measured, plus a connected agent's share."""
    return {s: base_mib.get(s, 0.0) + max(0.0, per_agent_mib.get(s, 0.0)) * agents
            for s in set(base_mib) | set(per_agent_mib)}


@dataclass(frozen=True)
class Layout:
    """A host layout planb recommends: cores and MiB per service, Synapse processes."""

    name: str
    cores: Mapping[str, float]
    mib: Mapping[str, float]
    synapse_processes: int

    def host_cores(self) -> float:
        return sum(self.cores.values())


def layout_misses(layout: Layout, demand: Demand, mib: Mapping[str, float]) -> list[str]:
    """Why ``layout`` does not carry ``demand`` and ``mib``; empty when it does."""
    misses = []
    for service, need in sorted(demand.cores.items()):
        have = layout.cores.get(service, 0.0)
        if need > have:
            misses.append(f"{layout.name}: {service} needs {need:.2f} cores, the layout "
                          f"gives {have:g}")
    synapse = demand.cores.get("synapse", 0.0)
    if synapse > layout.synapse_processes * CORES_PER_PROCESS:
        misses.append(f"{layout.name}: Synapse needs {synapse:.2f} cores but "
                      f"{layout.synapse_processes} Python process(es) use at most "
                      f"{layout.synapse_processes * CORES_PER_PROCESS:g}")
    for service, need in sorted(mib.items()):
        have = layout.mib.get(service, 0.0)
        if need > have:
            misses.append(f"{layout.name}: {service} needs {need:.0f} MiB, the layout "
                          f"gives {have:g}")
    return misses


#: Recommended layouts (docs/capacity.md): cores and MiB per service, Synapse processes.
LAYOUTS = {
    9000: Layout("9,000 agents: one fallback host, 12 cores, 16 GiB, workers 'activation'",
                    cores={"synapse": 7, "postgresql": 3, "slapd": 1, "nginx": 0.5,
                           "redis": 0.5},
                    mib={"synapse": 6144, "postgresql": 4096, "slapd": 512, "nginx": 256,
                         "redis": 256},
                    synapse_processes=7),
    50000: Layout("50,000 agents: a messaging host (12 cores) + a workers host "
                     "(24 cores) + a directory host (4 cores)",
                     cores={"synapse": 24, "postgresql": 8, "slapd": 3, "nginx": 2,
                            "redis": 1},
                     mib={"synapse": 24576, "postgresql": 16384, "slapd": 2048,
                          "nginx": 1024, "redis": 1024},
                     synapse_processes=24),
}


def report(costs: dict[str, dict[str, float]], base: dict[str, float],
           per_agent: dict[str, float], sizes: list[int]) -> tuple[dict, list[str]]:
    """Print the model for each size; (figures, misses of the recommended layouts)."""
    services = [s for s in SERVICES if any(s in c for c in costs.values())]
    print("\nCPU-ms per operation (measured):")
    print(f"  {'operation':<18}" + "".join(f"{s:>12}" for s in services))
    for op, by in costs.items():
        print(f"  {op:<18}" + "".join(f"{by.get(s, 0) * 1000:>12.3f}" for s in services))
    figures: dict = {}
    misses: list[str] = []
    for n in sizes:
        w = Workload(agents=n, department_members=department_members(n))
        r, st = rush(costs, w), steady(costs, w)
        mib = memory(base, per_agent, n)
        figures[n] = {"department_members": w.department_members, "rush_cores": r.cores,
                      "steady_cores": st.cores, "mib": mib}
        print(f"\n{n} agents (department room a sender writes to: "
              f"{w.department_members:.0f} members on average):")
        print(f"  {'service':<12}{'rush cores':>12}{'steady cores':>14}{'MiB':>10}")
        for s in services:
            print(f"  {s:<12}{r.cores.get(s, 0):>12.2f}{st.cores.get(s, 0):>14.2f}"
                  f"{mib.get(s, 0):>10.0f}")
        print(f"  {'total':<12}{r.total():>12.2f}{st.total():>14.2f}"
              f"{sum(mib.values()):>10.0f}")
        if n in LAYOUTS:
            found = layout_misses(LAYOUTS[n], r, mib)
            print(f"  layout {LAYOUTS[n].name}: "
                  + ("carries it" if not found else "MISSES: " + "; ".join(found)))
            misses += found
    return figures, misses
