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

#: Which Synapse process of the 'activation' preset does an operation's work: logins stay
#: on the main process (planb's LDAP guard keeps its journal there); a message's push
#: rules are evaluated where it is created, the main process, and it is persisted by an
#: event persister: one role for both.
ROLE_OF_OP = {"login": "main+persisters", "initial_sync": "sync_initial",
              "incremental_sync": "sync_incremental", "delivery": "sync_incremental",
              "send": "main+persisters", "send_per_member": "main+persisters",
              "join": "main+persisters"}

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
    #: Messages in each department room: during the rush, and per hour afterwards.
    rush_room_messages: float = 30.0
    room_messages_per_hour: float = 20.0
    #: Direct messages (a room of two) each agent sends: in the rush, and per hour after.
    rush_direct_messages: float = 1.0
    direct_messages_per_hour: float = 4.0
    #: A connected client's long-poll returns (empty) every this many seconds.
    long_poll_seconds: float = 30.0
    #: Department rooms (the lab's generator: one per 10 agents, at most 150).
    departments: int = 0


@dataclass
class Demand:
    """Cores per service, and what counted."""

    cores: dict[str, float] = field(default_factory=dict)
    per_op: dict[str, float] = field(default_factory=dict)  # op -> CPU-s (all services)
    roles: dict[str, float] = field(default_factory=dict)   # Synapse process role -> cores

    def total(self) -> float:
        return sum(self.cores.values())


def departments(agents: int) -> int:
    """Department rooms for ``agents``, as the lab's generator makes them."""
    from planb.lab.agents import MAX_DEPARTMENTS

    return min(MAX_DEPARTMENTS, max(1, agents // 10))


def _demand(costs: Costs, counts: Mapping[str, float], seconds: float) -> Demand:
    demand = Demand()
    for op, count in counts.items():
        for service, cpu in costs.get(op, {}).items():
            demand.cores[service] = demand.cores.get(service, 0.0) + cpu * count / seconds
            demand.per_op[op] = demand.per_op.get(op, 0.0) + cpu * count
            if service == "synapse":
                role = ROLE_OF_OP.get(op, "main")
                demand.roles[role] = demand.roles.get(role, 0.0) + cpu * count / seconds
    demand.cores = {s: c / UTILISATION for s, c in demand.cores.items()}
    demand.roles = {r: c / UTILISATION for r, c in demand.roles.items()}
    return demand


def rush_counts(w: Workload) -> dict[str, float]:
    """How many of each operation the activation rush makes.

    Agents arrive through the window: on average half of them are connected, and only
    they get a message by an incremental sync (the others see it in their first sync).
    A department room's message reaches its members: over all rooms, every agent.
    """
    n, connected = w.agents, w.agents / 2
    room, direct = w.rush_room_messages, w.rush_direct_messages * n
    return {
        "login": n * (1 + w.typos),
        "initial_sync": n,
        "incremental_sync": connected * w.rush_seconds / w.long_poll_seconds,
        "send": w.rush_announcements + room * w.departments + direct,
        "send_per_member": (w.rush_announcements + room) * n + 2 * direct,
        "delivery": (w.rush_announcements + room) * connected + direct / 2,
        "join": 0.0,
    }


def steady_counts(w: Workload, seconds: float = 3600.0) -> dict[str, float]:
    """Operations of ``seconds`` of steady use (every agent connected)."""
    n, hours = w.agents, seconds / 3600
    room = (w.announcements_per_hour + w.room_messages_per_hour) * hours
    direct = w.direct_messages_per_hour * hours * n
    return {
        "login": 0.0,
        "initial_sync": 0.0,
        "incremental_sync": n * seconds / w.long_poll_seconds,
        "send": w.announcements_per_hour * hours
        + w.room_messages_per_hour * hours * w.departments + direct,
        "send_per_member": room * n + 2 * direct,
        "delivery": room * n + direct,
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
    #: Synapse's processes by role (ROLE_OF_OP); {"main+persisters": 1} is the monolith.
    processes: Mapping[str, int]

    @property
    def synapse_processes(self) -> int:
        return sum(self.processes.values())

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
    monolith = set(layout.processes) == {"main+persisters"}
    roles = ({"main+persisters": demand.cores.get("synapse", 0.0)} if monolith
             else demand.roles)
    for role, need in sorted(roles.items()):
        count = layout.processes.get(role, 0)
        if need > count * CORES_PER_PROCESS:
            misses.append(f"{layout.name}: Synapse's {role} needs {need:.2f} cores but "
                          f"{count} Python process(es) use at most "
                          f"{count * CORES_PER_PROCESS:g}")
    for service, need in sorted(mib.items()):
        have = layout.mib.get(service, 0.0)
        if need > have:
            misses.append(f"{layout.name}: {service} needs {need:.0f} MiB, the layout "
                          f"gives {have:g}")
    return misses


#: Recommended layouts (docs/capacity.md): cores and MiB per service, Synapse processes.
LAYOUTS = {
    9000: Layout("9,000 agents: one fallback host, 16 cores, 16 GiB, Synapse's 'activation' "
                 "workers with 4 incremental and 2 initial sync workers",
                 cores={"synapse": 8, "postgresql": 4, "slapd": 0.5, "nginx": 0.5,
                        "redis": 0.5},
                 mib={"synapse": 6144, "postgresql": 6144, "slapd": 512, "nginx": 256,
                      "redis": 256},
                 processes={"main+persisters": 3, "sync_initial": 2,
                            "sync_incremental": 4, "client_reader": 1, "media": 1}),
    50000: Layout("50,000 agents: a messaging host (main, 7 persisters, PostgreSQL, Redis, "
                  "nginx: 32 cores, 64 GiB) + a Synapse workers host (32 cores, 32 GiB) + "
                  "a directory host (2 cores, 4 GiB)",
                  cores={"synapse": 36, "postgresql": 18, "slapd": 1, "nginx": 2,
                         "redis": 1},
                  mib={"synapse": 16384, "postgresql": 32768, "slapd": 2048,
                       "nginx": 1024, "redis": 1024},
                  processes={"main+persisters": 8, "sync_initial": 7,
                             "sync_incremental": 20, "client_reader": 2, "media": 2}),
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
        w = Workload(agents=n, departments=departments(n))
        r, st = rush(costs, w), steady(costs, w)
        mib = memory(base, per_agent, n)
        figures[n] = {"departments": w.departments, "rush_cores": r.cores,
                      "steady_cores": st.cores, "mib": mib}
        print(f"\n{n} agents ({w.departments} department rooms):")
        print(f"  {'service':<12}{'rush cores':>12}{'steady cores':>14}{'MiB':>10}")
        for s in services:
            print(f"  {s:<12}{r.cores.get(s, 0):>12.2f}{st.cores.get(s, 0):>14.2f}"
                  f"{mib.get(s, 0):>10.0f}")
        print(f"  {'total':<12}{r.total():>12.2f}{st.total():>14.2f}"
              f"{sum(mib.values()):>10.0f}")
        print("  Synapse by process role, rush cores: " + ", ".join(
            f"{role} {c:.2f}" for role, c in sorted(r.roles.items())))
        single = r.cores.get("synapse", 0.0) * UTILISATION / CORES_PER_PROCESS
        print(f"  one Synapse process (the monolith) at 100 %: the rush takes "
              f"{w.rush_seconds * max(1.0, single) / 60:.0f} min, not "
              f"{w.rush_seconds / 60:.0f}")
        figures[n]["rush_roles"] = r.roles
        if n in LAYOUTS:
            found = layout_misses(LAYOUTS[n], r, mib)
            print(f"  layout {LAYOUTS[n].name}: "
                  + ("carries it" if not found else "MISSES: " + "; ".join(found)))
            misses += found
    return figures, misses
