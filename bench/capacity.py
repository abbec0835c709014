"""Capacity benchmark: what each activation-day operation costs, per service, in
CPU-seconds and MiB, read from the fallback hosts' systemd units; then the model of
docs/capacity.md (bench/capacity_model.py) for N agents and the layouts planb recommends.

    .venv/bin/python bench/capacity.py -c LAB/planb.yml [--clients 200] [--json out.json]

Run on a deployed, synced lab (every agent in Synapse and in the announcement room).
For each phase it reads every running unit of Synapse (and its workers), PostgreSQL,
slapd, nginx and Redis on the fallback hosts (``systemctl show``: CPUUsageNSec,
MemoryCurrent; the cgroup's memory.peak) before and after, and divides by the count:

1. login: ``--clients`` agents log in through nginx (LDAP bind behind Synapse);
2. initial sync: each of them syncs for the first time (lazy-loaded members, as
   Element does);
3. incremental sync: each syncs again three times with nothing new (a long-poll's turn);
4. message: planb-admin posts to the announcement room (every agent a member) with no
   client listening -- the cost of persisting it and evaluating each member's push
   rules -- and to a room of ``--joins`` members, giving a fixed and a per-member part;
5. delivery: ``--listeners`` clients long-poll the announcement room and each message
   reaches all of them (cost per client reached, the send's part taken out);
6. join: ``--joins`` agents force-joined to a new room, as planb's sync joins (the room
   is deleted afterwards).

The fallback is activated (agents may log in) and put back in standby. Exit status:
0 every figure measured and both recommended layouts carry the model's demand; 1 the
lab cannot be benchmarked; 2 a measurement is missing (a unit without accounting, a
phase where no operation succeeded); 3 a recommended layout misses the model's demand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nio import AsyncClient, LoginResponse, SyncResponse

sys.path.insert(0, str(Path(__file__).resolve().parent))
import capacity_model as cm  # noqa: E402

from planb.actions import sampling  # noqa: E402
from planb.cli.wiring import default_registry, site_store  # noqa: E402
from planb.config import SiteConfig, find_config_path, load_config  # noqa: E402
from planb.failover.machine import Failover  # noqa: E402
from planb.inventory import FALLBACK_STANDBY, InventoryHost, load_hosts  # noqa: E402
from planb.lab.agents import agent_password  # noqa: E402
from planb.messaging.announce import active_agents  # noqa: E402
from planb.messaging.sync_target import ANNOUNCEMENT_ROOM, target_for  # noqa: E402
from planb.verify.announcement_probe import client_for  # noqa: E402
from planb.verify.connections import HostConnections  # noqa: E402
from planb.verify.probes import close_client, fallback_address  # noqa: E402

EXIT_LAB, EXIT_MISSING, EXIT_LAYOUT = 1, 2, 3
MIB = 1024 * 1024
#: Units measured, by the start of their name -> the service they count for.
SERVICE_PREFIXES = (("synapse", "synapse"), ("postgresql@", "postgresql"),
                    ("slapd", "slapd"), ("nginx", "nginx"), ("redis", "redis"))
#: Run on each host (python3, as Ansible needs): one JSON line per running unit measured.
#: systemd's CPUUsageNSec / MemoryCurrent when the unit is accounted; else (a container
#: whose cgroup controllers are read-only, as the lab's systemd-nspawn hosts) the unit's
#: processes from its cgroup.procs: CPU = utime+stime+cutime+cstime (reaped children,
#: e.g. PostgreSQL's exited backends, count), memory = their PSS (shared pages split),
#: peak = the sum of their VmHWM (an upper bound).
SAMPLE = r"""
import json, os, re, subprocess
def run(*a):
    return subprocess.run(a, capture_output=True, text=True).stdout
tck, out = os.sysconf("SC_CLK_TCK"), []
for line in run("systemctl", "list-units", "--type=service", "--state=running",
                "--no-legend", "--plain").splitlines():
    unit = line.split()[0] if line.split() else ""
    if not re.match(r"(synapse|postgresql@|slapd|nginx|redis)", unit):
        continue
    p = dict(l.split("=", 1) for l in run("systemctl", "show", "-p", "CPUUsageNSec", "-p",
             "MemoryCurrent", "-p", "MemoryPeak", "-p", "ControlGroup", unit).splitlines())
    num = lambda k: int(p[k]) if p.get(k, "").isdigit() and int(p[k]) < 2**63 else None
    cpu, mem, peak, src = num("CPUUsageNSec"), num("MemoryCurrent"), num("MemoryPeak"), "systemd"
    if cpu is None or mem is None:
        pids, src = set(), "proc"
        for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"):
            for d, _, files in os.walk(base + p.get("ControlGroup", "/none")):
                if "cgroup.procs" in files:
                    pids |= set(open(d + "/cgroup.procs").read().split())
            if pids:
                break
        cpu, mem, peak = (0, 0, 0) if pids else (None, None, None)
        for pid in pids:
            try:
                f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                cpu += sum(int(x) for x in f[11:15]) * 10**9 // tck
                for l in open(f"/proc/{pid}/smaps_rollup"):
                    if l.startswith("Pss:"):
                        mem += int(l.split()[1]) * 1024
                for l in open(f"/proc/{pid}/status"):
                    if l.startswith("VmHWM:"):
                        peak += int(l.split()[1]) * 1024
            except (OSError, IndexError, ValueError):
                pass
    out.append({"unit": unit, "cpu": cpu, "mem": mem, "peak": peak, "src": src})
print(json.dumps(out))
"""
#: Element's sync filter in spirit: members lazily, a short timeline.
SYNC_FILTER = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 20}}}
@dataclass
class Phase:
    """One measured phase: what ran, how many succeeded, CPU-s and MiB per unit."""

    name: str
    count: int
    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)       # unit -> CPU-seconds
    mib_after: dict[str, float] = field(default_factory=dict)  # unit -> MemoryCurrent

    def per_op(self) -> dict[str, float]:
        """CPU-seconds per operation per service."""
        out: dict[str, float] = {}
        for unit, cpu in self.cpu.items():
            service = service_of(unit)
            out[service] = out.get(service, 0.0) + cpu / max(1, self.count)
        return out


def service_of(unit: str) -> str:
    name = unit.split("/", 1)[-1]
    return next((s for prefix, s in SERVICE_PREFIXES if name.startswith(prefix)), name)


def fallback_hosts(site: SiteConfig) -> list[InventoryHost]:
    return [h for h in load_hosts(site)
            if any(g.startswith("fallback_") and g != FALLBACK_STANDBY for g in h.groups)]


def sample(conns: HostConnections, hosts: list[InventoryHost]
           ) -> dict[str, tuple[int | None, int | None, int | None]]:
    """host/unit -> (CPU ns, memory bytes, peak bytes); None when not measurable."""
    out = {}
    for host in hosts:
        answer = conns.get(host).check_output(f"python3 -c {shlex.quote(SAMPLE)}")
        for row in json.loads(answer):
            out[f"{host.name}/{row['unit']}"] = (row["cpu"], row["mem"], row["peak"])
            SOURCES[f"{host.name}/{row['unit']}"] = row["src"]
    return out


#: host/unit -> where its figures came from ("systemd" or "proc"), as last sampled.
SOURCES: dict[str, str] = {}


class Meter:
    """Samples the units around each phase and keeps the phases."""

    def __init__(self, site: SiteConfig) -> None:
        self.conns = HostConnections()
        self.hosts = fallback_hosts(site)
        self.first = sample(self.conns, self.hosts)
        self.phases: dict[str, Phase] = {}
        self.missing: list[str] = [f"{u}: no CPU or memory accounting"
                                   for u, (c, m, _) in self.first.items()
                                   if c is None or m is None]

    def begin(self) -> tuple[dict[str, tuple[int | None, int | None, int | None]], float]:
        return sample(self.conns, self.hosts), time.monotonic()

    def end(self, name: str, count: int,
            begun: tuple[dict[str, tuple[int | None, int | None, int | None]], float]
            ) -> Phase:
        """Close a phase begun with :meth:`begin` after ``count`` operations."""
        before, t0 = begun
        seconds = time.monotonic() - t0
        after = sample(self.conns, self.hosts)
        phase = Phase(name, count, seconds)
        for unit, (cpu, mem, _) in after.items():
            old = before.get(unit, (None, None, None))[0]
            if cpu is not None and old is not None:
                phase.cpu[unit] = (cpu - old) / 1e9
            if mem is not None:
                phase.mib_after[unit] = mem / MIB
        if count == 0:
            self.missing.append(f"{name}: no operation succeeded")
        self.phases[name] = phase
        line = ", ".join(f"{s} {c * 1000:.1f}" for s, c in sorted(phase.per_op().items()))
        print(f"  {name:<18} {count:>5} ops in {seconds:6.1f} s; CPU-ms per op: {line}",
              flush=True)
        workers = {u.split("/")[-1].removeprefix("synapse-worker@").removesuffix(".service"):
                   c for u, c in phase.cpu.items() if service_of(u) == "synapse"}
        if len(workers) > 1:
            print("  " + " " * 18 + "  Synapse's processes: " + ", ".join(
                f"{w} {c * 1000 / max(1, count):.1f}" for w, c in sorted(workers.items())))
        return phase

    def measure(self, name: str, run):  # type: ignore[no-untyped-def]
        """Run ``run()`` (returns the count of operations done) between two samples."""
        begun = self.begin()
        return self.end(name, run(), begun)

    def close(self) -> None:
        self.conns.close()


async def _bounded(coros, in_flight: int) -> list:  # type: ignore[no-untyped-def]
    gate = asyncio.Semaphore(in_flight)

    async def one(coro):  # type: ignore[no-untyped-def]
        async with gate:
            return await coro
    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)


async def _login(client: AsyncClient, password: str) -> bool:
    return isinstance(await client.login(password, device_name="planb capacity"),
                      LoginResponse)


async def _sync(client: AsyncClient, timeout: int = 0) -> SyncResponse | None:
    if not client.access_token:
        return None
    answer = await client.sync(timeout=timeout, sync_filter=SYNC_FILTER)
    return answer if isinstance(answer, SyncResponse) else None


async def client_phases(meter: Meter, site: SiteConfig, address: str,
                        accounts: list[tuple[str, str]], in_flight: int) -> None:
    """Login, initial sync and incremental syncs for ``accounts``, each phase measured."""
    clients = [client_for(site, login, address, 300) for login, _ in accounts]

    async def phase(name: str, make, rounds: int = 1) -> None:  # type: ignore[no-untyped-def]
        begun = await asyncio.to_thread(meter.begin)
        count = 0
        for _ in range(rounds):
            done = await _bounded(make(), in_flight)
            count += sum(1 for d in done if d is True or isinstance(d, SyncResponse))
        await asyncio.to_thread(meter.end, name, count, begun)

    await phase("login", lambda: (_login(c, p) for c, (_, p)
                                  in zip(clients, accounts, strict=True)))
    await phase("initial_sync", lambda: (_sync(c) for c in clients))
    await phase("incremental_sync", lambda: (_sync(c) for c in clients), rounds=3)
    await asyncio.gather(*(close_client(c) for c in clients), return_exceptions=True)


async def _deliveries(meter: Meter, site: SiteConfig, address: str,
                      accounts: list[tuple[str, str]], send, messages: int
                      ) -> None:  # type: ignore[no-untyped-def]
    """Listeners log in and sync (not measured); then, measured: each of ``messages``
    posts (``send(marker)``) reaches the long-polling listeners."""
    clients = [client_for(site, login, address, 300) for login, _ in accounts]
    await _bounded((_login(c, p) for c, (_, p) in zip(clients, accounts, strict=True)), 16)
    ready = [c for c in clients if c.access_token]
    await _bounded((_sync(c) for c in ready), 16)
    delivered = 0
    begun = await asyncio.to_thread(meter.begin)
    for _ in range(messages):
        marker = f"planb capacity {uuid.uuid4()}"

        async def listen(client: AsyncClient, marker: str = marker) -> bool:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                answer = await _sync(client, timeout=20000)
                if answer and any(marker in (getattr(e, "body", None) or "")
                                  for r in answer.rooms.join.values()
                                  for e in r.timeline.events):
                    return True
            return False

        tasks = [asyncio.create_task(listen(c)) for c in ready]
        await asyncio.sleep(2)
        await asyncio.to_thread(send, marker)
        delivered += sum(await asyncio.gather(*tasks))
    await asyncio.to_thread(meter.end, "delivery", delivered, begun)
    await asyncio.gather(*(close_client(c) for c in clients), return_exceptions=True)


def message_phases(meter: Meter, site: SiteConfig, address: str,
                   listeners: list[tuple[str, str]], joins: int,
                   messages: int) -> dict[str, float]:
    """Sends to the big room and a small one, deliveries, joins; room sizes."""
    target = target_for(site)
    assert target is not None
    with target.api() as api:
        big = api.resolve_alias(target.names.announcement or ANNOUNCEMENT_ROOM)
        if big is None:
            raise SystemExit("no announcement room: run 'planb sync apply' first")
        big_members = len(api.members(big))

        def send_big(marker: str = "") -> None:
            api.send_text(big, marker or f"planb capacity {uuid.uuid4()}")

        meter.measure("send_big_room", lambda: [send_big() for _ in range(messages)]
                      and messages)
        joiners = sorted(active_agents(api, "planb-admin"))[:joins]
        small = api.create_room({"preset": "public_chat", "name": "planb capacity bench"},
                                f"planb-capacity-{uuid.uuid4().hex[:8]}")
        try:
            def joins() -> int:
                with ThreadPoolExecutor(max_workers=target.workers) as pool:
                    return sum(1 for _ in pool.map(lambda lp: api.join(small, lp), joiners))
            meter.measure("join", joins)
            small_members = len(api.members(small))
            meter.measure("send_small_room", lambda: [api.send_text(small, "planb capacity")
                                                      for _ in range(messages)] and messages)
        finally:
            api.delete_room(small)
        asyncio.run(_deliveries(meter, site, address, listeners, send_big, messages))
    return {"big_room_members": big_members, "small_room_members": small_members,
            "messages": messages}


def costs_from(phases: dict[str, Phase], rooms: dict[str, float]) -> dict[str, dict[str, float]]:
    """The model's per-op costs (service -> CPU-s) from the measured phases."""
    big, small = rooms["big_room_members"], rooms["small_room_members"]
    send_big, send_small = phases["send_big_room"].per_op(), phases["send_small_room"].per_op()
    services = set(send_big) | set(send_small)
    slope = {s: max(0.0, (send_big.get(s, 0) - send_small.get(s, 0)) / max(1, big - small))
             for s in services}
    fixed = {s: max(0.0, send_small.get(s, 0) - slope[s] * small) for s in services}
    # The delivery phase also posted its messages: take their send out, per delivery.
    delivery = phases["delivery"]
    messages_per_delivery = rooms["messages"] / max(1, delivery.count)
    per_delivery = {s: max(0.0, cpu - send_big.get(s, 0.0) * messages_per_delivery)
                    for s, cpu in delivery.per_op().items()}
    return {"login": phases["login"].per_op(),
            "initial_sync": phases["initial_sync"].per_op(),
            "incremental_sync": phases["incremental_sync"].per_op(),
            "send": fixed, "send_per_member": slope, "delivery": per_delivery,
            "join": phases["join"].per_op()}


def service_mib(values: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for unit, mib in values.items():
        out[service_of(unit)] = out.get(service_of(unit), 0.0) + mib
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", type=Path)
    parser.add_argument("--clients", type=int, default=200,
                        help="agents that log in and sync (default 200)")
    parser.add_argument("--listeners", type=int, default=100,
                        help="long-polling agents a message reaches (default 100)")
    parser.add_argument("--joins", type=int, default=200, help="force-joins (default 200)")
    parser.add_argument("--messages", type=int, default=5, help="messages per send phase")
    parser.add_argument("--in-flight", type=int, default=16,
                        help="concurrent client requests (default 16)")
    parser.add_argument("--json", type=Path, help="write the figures there too")
    parser.add_argument("--model-only", type=Path, metavar="JSON",
                        help="no lab: the model again from a run's --json figures")
    args = parser.parse_args(argv)
    if args.model_only:
        saved = json.loads(args.model_only.read_text(encoding="utf-8"))
        _, misses = cm.report(saved["costs"], saved["mib_idle"], saved["mib_per_agent"],
                              sorted({saved["agents"], 9000, 50000}))
        return verdict([], misses)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("nio").setLevel(logging.ERROR)
    site = load_config(find_config_path(args.config))
    secret = sampling.lab_secret(site)
    if secret is None or target_for(site) is None:
        print("need a deployed, synced lab (its agents' passwords, Synapse's admin token)")
        return EXIT_LAB
    agents = sorted(sampling.active_agents(site))
    need = args.clients + args.listeners
    if len(agents) < need:
        print(f"only {len(agents)} active agents in the fallback LDAP, {need} needed")
        return EXIT_LAB
    chosen = sampling.draw(agents, need, int(time.time()))
    accounts = [(login, agent_password(secret, login)) for login in chosen]
    load_before = os.getloadavg()
    store = site_store(site)
    failover = Failover(site, default_registry(site, store), store)
    address = fallback_address(site)
    failover.activate("bench/capacity.py", operator="bench", drill=True)
    meter = Meter(site)
    try:
        units = sorted(meter.first)
        print(f"lab: {len(agents)} agents; units: "
              + ", ".join(f"{u} ({SOURCES.get(u)})" for u in units))
        print(f"machine: {os.cpu_count()} cores, load {load_before[0]:.1f} at start")
        base = service_mib({u: m / MIB for u, (_, m, _) in meter.first.items() if m})
        asyncio.run(client_phases(meter, site, address, accounts[:args.clients],
                                  args.in_flight))
        synced = service_mib(meter.phases["initial_sync"].mib_after)
        rooms = message_phases(meter, site, address, accounts[args.clients:], args.joins,
                               args.messages)
        peaks = service_mib({u: p / MIB for u, (_, _, p) in sample(meter.conns, meter.hosts)
                             .items() if p})
    finally:
        meter.close()
        failover.deactivate("bench/capacity.py done", operator="bench")
    load_after = os.getloadavg()
    print(f"machine load {load_before[0]:.1f} -> {load_after[0]:.1f} (1 min average)")
    clients = max(1, meter.phases["initial_sync"].count)
    per_agent = {s: (synced.get(s, 0.0) - base.get(s, 0.0)) / clients for s in synced}
    print("MiB per service: idle " + ", ".join(f"{s} {m:.0f}" for s, m in sorted(base.items()))
          + "; per synced client " + ", ".join(f"{s} {m:.2f}" for s, m in
                                                sorted(per_agent.items()))
          + "; peak " + ", ".join(f"{s} {m:.0f}" for s, m in sorted(peaks.items())))
    print(f"rooms: announcement {rooms['big_room_members']:.0f} members, small room "
          f"{rooms['small_room_members']:.0f}")
    costs = costs_from(meter.phases, rooms)
    figures, misses = cm.report(costs, base, per_agent, sorted({len(agents), 9000, 50000}))
    if args.json:
        args.json.write_text(json.dumps({
            "agents": len(agents), "cores": os.cpu_count(), "load": [load_before[0],
                                                                       load_after[0]],
            "phases": {k: asdict(v) for k, v in meter.phases.items()}, "rooms": rooms,
            "costs": costs, "mib_idle": base, "mib_per_agent": per_agent, "mib_peak": peaks,
            "model": figures}, indent=1), encoding="utf-8")
    return verdict(meter.missing, misses)


def verdict(missing: list[str], misses: list[str]) -> int:
    """The exit status: a missing measurement first, then a layout's miss, else 0."""
    if missing:
        print("measurement missing (exit 2):\n  " + "\n  ".join(missing))
        return EXIT_MISSING
    if misses:
        print("a recommended layout misses the model's demand (exit 3):\n  "
              + "\n  ".join(misses))
        return EXIT_LAYOUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
