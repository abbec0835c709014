"""Benchmark drills on a deployed, synced lab: RTO and duration per scenario, announcement
delivery latency, and a login storm next to a plain concurrent login loop.

    cd <lab site> && /work/main/.venv/bin/python /work/main/bench/drill.py [--storm 200]

- each scenario (default: the five shipped ones) runs as ``planb drill run`` would,
  with its signed journal; ``controller-lost`` (activation through planb-breakglass on
  the fallback host, with the break-glass key from ``--breakglass-key`` or
  ``$PLANB_BREAKGLASS_KEY``; the controller it rebuilds needs the crisis cell's
  passphrase file in ``$PLANB_CONTROLLER_PASSPHRASE_FILE``) is then compared with the
  ordinary activation from the controller (``primary-outage``: the same fault) of the
  same run: both RTOs, the difference and the ratio;
- announcement latency: LISTENERS agents (default 100) log in and long-poll /sync;
  then planb.messaging's ``announce`` posts a message; each agent's delay from the
  post to seeing it (p50, p95). Prints "not available yet" without planb.messaging;
- login storm: N agents (default 200) log in at once through nginx (LDAP bind behind
  Synapse; 5 % of them mistype their password first, so the guard's failed-login limits
  are crossed as on activation day), then another N log in through a plain loop with 4
  in flight; logins/s and p95 of each, and the storm's rate as a multiple of the loop's
  (aim: >= 0.8x). Any HTTP 429 (Synapse rc_login) is counted and shown; exit status 6
  when an agent of the storm did not get in (the failed-login limits are too tight);
- switch: the time from ``failover activate`` to an agent's first login, next to what
  the old switch added to it (a Synapse restart until a login works again), measured in
  the same run; Synapse's MainPID must not change across activate and deactivate (the
  guard reads the mode at each login). Exit status 5 when it did.

- ``--workers-compare``: the latency and the login storm on the lab's Synapse preset, then
  on the other one (monolith ``none`` / ``activation``: planb.yml edited and ``planb
  deploy``, by bench/workers.py; other agents each time), side by side. The lab is left
  on the other preset.

Exit status 4 when a drill did not pass or its RTO missed ``objectives.rto_seconds``
(the other parts still run and print), 1 when the lab cannot be benchmarked.

The fallback is activated for the latency and storm parts and put back in standby.
Agents are drawn from the fallback LDAP (each agent logs in once per part, so the
per-account limit never applies).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid
from pathlib import Path

from nio import AsyncClient, LoginResponse, SyncResponse

from planb.actions import sampling
from planb.actions.breakglass import KEY_ENV
from planb.cli.wiring import default_registry, site_store
from planb.config import SiteConfig, find_config_path, load_config
from planb.drills.collectors import site_collectors
from planb.drills.runner import DrillResult, DrillRunner
from planb.drills.scenario import load_scenario
from planb.failover.machine import Failover
from planb.inventory import FALLBACK_MESSAGING, first_host
from planb.lab.agents import agent_password
from planb.messaging.sync_target import ANNOUNCEMENT_ROOM
from planb.statecopy.push import push as push_copy
from planb.verify.announcement_probe import client_for
from planb.verify.connections import HostConnections
from planb.verify.probes import close_client, fallback_address

SCENARIOS = ("primary-outage", "primary-stopped", "messaging-crash", "directory-crash",
             "controller-lost")
#: The break-glass drill and the ordinary activation it is compared with (same fault).
BREAKGLASS_DRILL, ORDINARY_DRILL = "controller-lost", "primary-outage"
#: The exit status when a drill missed its RTO objective (or did not pass): a drill's
#: DEVIATED status, so a scheduled benchmark shows red.
EXIT_RTO_MISSED = 4
#: The exit status when a standby/active switch restarted Synapse.
EXIT_SWITCH_RESTARTED = 5
#: The exit status when an agent of the login storm could not log in.
EXIT_STORM_REFUSED = 6
SYNAPSE_UNIT = "synapse.service"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def rto_misses(results: list[tuple[str, DrillResult]]) -> list[str]:
    """One line per drill that did not pass or whose RTO missed its objective."""
    misses = []
    for name, result in results:
        if result.rto_seconds is None:
            misses.append(f"{name}: {result.outcome}, no RTO measured")
        elif result.rto_seconds > result.objective_seconds:
            misses.append(f"{name}: RTO {result.rto_seconds:.1f} s exceeds the objective "
                          f"{result.objective_seconds} s")
        elif result.outcome != "pass":
            misses.append(f"{name}: {result.outcome}")
    return misses


def run_drills(site: SiteConfig, names: list[str]) -> list[str]:
    """Run each scenario, print its line; return :func:`rto_misses` of them."""
    results: list[tuple[str, DrillResult]] = []
    store = site_store(site)
    registry = default_registry(site, store)
    print(f"{'scenario':<18} {'outcome':<10} {'RTO s':>7} {'objective':>9} {'drill s':>8}")
    for name in names:
        scenario = load_scenario(name, site.state_dir, registry)
        if name == BREAKGLASS_DRILL:
            # 'planb drill run' pushes the state's copy after each drill (the CLI does,
            # planb.cli.statewatch); these drills ran as a library: push it here, or the
            # controller rebuilt from the copy is rightly found behind this one.
            for pushed in push_copy(site):
                if not pushed.ok:
                    print(f"    copy not pushed to {pushed.host}: {pushed.error}")
        result = DrillRunner(site, registry, store, operator="bench",
                             collectors=site_collectors()).run(scenario)
        rto = "-" if result.rto_seconds is None else f"{result.rto_seconds:.1f}"
        print(f"{name:<18} {result.outcome:<10} {rto:>7} {result.objective_seconds:>9} "
              f"{result.duration_seconds:>8.1f}", flush=True)
        for finding in result.findings:
            print(f"    {finding}")
        results.append((name, result))
    compare_activations(dict(results))
    return rto_misses(results)


def compare_activations(results: dict[str, DrillResult]) -> None:
    """The break-glass activation's RTO next to the controller's, when both ran."""
    glass, ordinary = results.get(BREAKGLASS_DRILL), results.get(ORDINARY_DRILL)
    if glass is None or ordinary is None:
        return
    if glass.rto_seconds is None or ordinary.rto_seconds is None:
        print(f"break-glass vs controller activation: not comparable ({BREAKGLASS_DRILL} "
              f"{glass.outcome}, {ORDINARY_DRILL} {ordinary.outcome})")
        return
    difference = glass.rto_seconds - ordinary.rto_seconds
    print(f"activation RTO: break-glass on the host ({BREAKGLASS_DRILL}) "
          f"{glass.rto_seconds:.1f} s, from the controller ({ORDINARY_DRILL}) "
          f"{ordinary.rto_seconds:.1f} s: {difference:+.1f} s, "
          f"{glass.rto_seconds / ordinary.rto_seconds:.2f}x", flush=True)


async def _login(client: AsyncClient, password: str) -> tuple[bool, float, str]:
    t0 = time.monotonic()
    answer = await client.login(password, device_name="planb bench")
    ok = isinstance(answer, LoginResponse)
    return ok, time.monotonic() - t0, "" if ok else str(getattr(answer, "status_code", answer))


async def _typo_then_login(client: AsyncClient, password: str, typo: bool
                           ) -> tuple[bool, float, str]:
    """Log in; when ``typo``, first with a mistyped password (as a hurried agent does)."""
    if typo:
        wrong, _, _ = await _login(client, password + "x")
        if wrong:
            return False, 0.0, "a mistyped password was accepted"
    return await _login(client, password)


async def storm(site: SiteConfig, address: str, accounts: list[tuple[str, str]],
                typos: float = 0.0) -> tuple[float, list[float], list[str]]:
    """Every account logs in at once, a ``typos`` share after one wrong password first:
    (wall seconds, latencies, errors)."""
    clients = [client_for(site, login, address, 120) for login, _ in accounts]
    every = round(1 / typos) if typos > 0 else 0
    start = time.monotonic()
    results = await asyncio.gather(*(
        _typo_then_login(c, p, every > 0 and i % every == 0)
        for i, (c, (_, p)) in enumerate(zip(clients, accounts, strict=True))))
    wall = time.monotonic() - start
    await asyncio.gather(*(close_client(c) for c in clients), return_exceptions=True)
    return wall, [s for ok, s, _ in results if ok], [e for ok, _, e in results if not ok]


async def loop(site: SiteConfig, address: str, accounts: list[tuple[str, str]],
               in_flight: int = 4) -> tuple[float, list[float], list[str]]:
    """A plain loop: ``in_flight`` workers log the accounts in one after the other."""
    queue = list(accounts)
    latencies: list[float] = []
    errors: list[str] = []

    async def worker() -> None:
        while queue:
            login, password = queue.pop()
            client = client_for(site, login, address, 120)
            ok, seconds, error = await _login(client, password)
            (latencies.append(seconds) if ok else errors.append(error))
            await close_client(client)

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.monotonic() - start, latencies, errors


async def latency(site: SiteConfig, address: str, accounts: list[tuple[str, str]],
                  room: str) -> list[float]:
    """Log listeners in, long-poll sync, announce, and time when each sees the marker."""
    from planb.messaging.announce import announce

    clients = [client_for(site, login, address, 120) for login, _ in accounts]
    logged = await asyncio.gather(*(_login(c, p) for c, (_, p) in zip(clients, accounts,
                                                                      strict=True)))
    ready = [c for c, (ok, _, _) in zip(clients, logged, strict=True) if ok]
    await asyncio.gather(*(c.sync(timeout=0) for c in ready))
    marker = f"planb bench {uuid.uuid4()}"
    seen: dict[int, float] = {}
    posted: list[float] = []

    async def listen(i: int, client: AsyncClient) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = await client.sync(timeout=10000)
            if isinstance(answer, SyncResponse) and any(
                    marker in (getattr(e, "body", None) or "")
                    for r in answer.rooms.join.values() for e in r.timeline.events):
                seen[i] = time.monotonic()
                return

    listeners = [asyncio.create_task(listen(i, c)) for i, c in enumerate(ready)]
    await asyncio.sleep(1)
    posted.append(time.monotonic())
    report = await asyncio.to_thread(announce, site, marker, catch_up_seconds=0)
    print(f"  announce: {report.summary()}")
    await asyncio.gather(*listeners)
    await asyncio.gather(*(close_client(c) for c in clients), return_exceptions=True)
    print(f"  {len(seen)}/{len(ready)} listeners saw it (of {len(accounts)} asked)")
    # announce() first opens its tunnel and reads users and members, then sends (no
    # catch-up here): the send started report.seconds - report.send_seconds after the call.
    sent = posted[0] + report.seconds - report.send_seconds
    from_send = [t - sent for t in seen.values()]
    if from_send:
        print(f"  from the send request: p50 {pct(from_send, 0.5):.2f} s, "
              f"p95 {pct(from_send, 0.95):.2f} s")
    return [t - posted[0] for t in seen.values()]


def _main_pid(site: SiteConfig, connections: HostConnections) -> str:
    host = first_host(site, FALLBACK_MESSAGING)
    return connections.get(host).check_output(
        f"systemctl show --property MainPID --value {SYNAPSE_UNIT}").strip()


async def _first_login(site: SiteConfig, address: str, account: tuple[str, str],
                       limit: float = 120) -> float:
    """Seconds until ``account`` logs in (one try every 0.2 s)."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        client = client_for(site, account[0], address, 10)
        ok, _, _ = await _login(client, account[1])
        await close_client(client)
        if ok:
            return time.monotonic() - start
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{account[0]} could not log in within {limit:.0f} s")


def switch_times(site: SiteConfig, failover: Failover, address: str,
                 account: tuple[str, str]) -> bool:
    """Print the live switch's time to a login next to a restart's; True when no restart."""
    connections = HostConnections()
    try:
        before = _main_pid(site, connections)
        start = time.monotonic()
        failover.activate("bench/drill.py: switch time", operator="bench", drill=True)
        switched = time.monotonic() - start
        login = asyncio.run(_first_login(site, address, account))
        live = switched + login
        after_activate = _main_pid(site, connections)
        host = connections.get(first_host(site, FALLBACK_MESSAGING))
        start = time.monotonic()
        host.run(f"systemctl restart {SYNAPSE_UNIT}")
        restart = (time.monotonic() - start) + asyncio.run(_first_login(site, address, account))
        after_restart = _main_pid(site, connections)
        failover.deactivate("bench: switch measured", operator="bench")
        unchanged = (before == after_activate
                     and _main_pid(site, connections) == after_restart)
        print(f"  activate -> first login {live:.1f} s (switch {switched:.1f} s); a Synapse "
              f"restart -> first login {restart:.1f} s, which the old switch added to it")
        print(f"  Synapse MainPID {before} -> {after_activate} across activate, "
              f"{after_restart} across deactivate: {'unchanged' if unchanged else 'RESTARTED'}")
        return unchanged and before != "0"
    finally:
        connections.close()


def line(name: str, wall: float, latencies: list[float], errors: list[str]) -> float:
    rate = len(latencies) / wall if wall else 0.0
    throttled = sum("429" in e or "LIMIT" in e for e in errors)
    p95 = pct(latencies, 0.95) if latencies else float("nan")
    print(f"  {name:<22} {len(latencies):>4} ok {len(errors):>3} failed ({throttled} 429) "
          f"in {wall:6.1f} s: {rate:6.1f} logins/s, p95 {p95:.2f} s")
    return rate


def storm_and_latency(site: SiteConfig, failover: Failover, address: str,
                      args: argparse.Namespace, accounts: list[tuple[str, str]]
                      ) -> tuple[float, float, list[str]]:
    """Announcement latency and the login storm, active: (latency p95, storm logins/s,
    the storm's refused logins)."""
    storm_set, loop_set = accounts[:args.storm], accounts[args.storm:2 * args.storm]
    listeners = accounts[2 * args.storm:2 * args.storm + args.listeners]
    failover.activate("bench/drill.py: latency and login storm", operator="bench", drill=True)
    try:
        print("announcement delivery latency:")
        delays = asyncio.run(latency(site, address, listeners, ANNOUNCEMENT_ROOM))
        p95 = pct(delays, 0.95) if delays else float("nan")
        if delays:
            print(f"  from the announce() call: p50 {pct(delays, 0.5):.2f} s, "
                  f"p95 {p95:.2f} s (aim p95 < 5 s)")
        print(f"login storm ({args.storm} agents through nginx + Synapse + LDAP):")
        wall, latencies, refused = asyncio.run(storm(site, address, storm_set, args.typos))
        s_rate = line(f"storm, {args.typos:.0%} typos", wall, latencies, refused)
        l_rate = line("plain loop, 4 in flight", *asyncio.run(loop(site, address, loop_set)))
        if l_rate:
            print(f"  storm / loop = {s_rate / l_rate:.2f}x (aim >= 0.8x)")
    finally:
        failover.deactivate("bench done", operator="bench")
    return p95, s_rate, refused


def compare_presets(site: SiteConfig, args: argparse.Namespace,
                    accounts: list[tuple[str, str]]) -> list[str]:
    """storm_and_latency on the monolith then on the activation preset (other agents);
    both side by side; the refused logins of both."""
    import workers  # bench/workers.py

    half = len(accounts) // 2
    figures, refused = {}, []
    # The lab's own preset first (no deploy), then the other one.
    order = sorted(workers.PRESETS, key=lambda p: p != workers.preset_of(site))
    for i, preset in enumerate(order):
        if preset != workers.preset_of(site):
            site, _ = workers.switch(site, preset, fresh=False)
        store = site_store(site)
        failover = Failover(site, default_registry(site, store), store)
        print(f"--- workers: {preset}")
        *figures[preset], lost = storm_and_latency(site, failover, fallback_address(site),
                                                   args, accounts[i * half:(i + 1) * half])
        refused += lost
    (mono_p95, mono_rate), (work_p95, work_rate) = figures["none"], figures["activation"]
    print(f"workers vs monolith: announcement p95 {work_p95:.2f} s vs {mono_p95:.2f} s; "
          f"login storm {work_rate:.1f} vs {mono_rate:.1f} logins/s = "
          f"{work_rate / mono_rate if mono_rate else float('nan'):.2f}x")
    return refused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path)
    parser.add_argument("--scenario", action="append", help="(repeatable; default: all 5)")
    parser.add_argument("--breakglass-key", type=Path,
                        help="the break-glass private key controller-lost uses (default: "
                             "$PLANB_BREAKGLASS_KEY)")
    parser.add_argument("--skip-drills", action="store_true")
    parser.add_argument("--drills-only", action="store_true",
                        help="stop after the drills (no latency or login storm)")
    parser.add_argument("--storm", type=int, default=200, help="agents in the login storm")
    parser.add_argument("--listeners", type=int, default=100)
    parser.add_argument("--typos", type=float, default=0.05,
                        help="share of the storm's agents who first mistype their password")
    parser.add_argument("--skip-switch", action="store_true", help="no switch timing")
    parser.add_argument("--workers-compare", action="store_true",
                        help="latency and login storm on the lab's preset, then on the "
                             "other one (monolith / activation; one redeploy, left on)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("nio").setLevel(logging.ERROR)
    site = load_config(find_config_path(args.config))
    if args.breakglass_key:
        os.environ[KEY_ENV] = str(args.breakglass_key.resolve())
    misses = [] if args.skip_drills else run_drills(site, args.scenario or list(SCENARIOS))
    if args.drills_only:
        return _verdict(misses)
    secret = sampling.lab_secret(site)
    if secret is None:
        print("login storm / latency: need a deployed lab (its agents' passwords)")
        return 1
    agents = sorted(sampling.active_agents(site))
    need = (2 * args.storm + args.listeners) * (2 if args.workers_compare else 1)
    if len(agents) < need:
        print(f"only {len(agents)} active agents in the fallback LDAP, {need} needed")
        return 1
    chosen = sampling.draw(agents, need, int(time.time()))
    accounts = [(login, agent_password(secret, login)) for login in chosen]
    listeners = accounts[2 * args.storm:]
    store = site_store(site)
    failover = Failover(site, default_registry(site, store), store)
    address = fallback_address(site)
    live_switch = True
    if not args.skip_switch:
        print("standby -> active switch:")
        live_switch = switch_times(site, failover, address, listeners[0])
    if args.workers_compare:
        refused = compare_presets(site, args, accounts)
    else:
        refused = storm_and_latency(site, failover, address, args, accounts)[2]
    if not live_switch:
        print("the standby/active switch restarted Synapse (exit 5)")
        return EXIT_SWITCH_RESTARTED
    if refused:
        print(f"{len(refused)} agents of the login storm could not log in (exit 6)")
        return EXIT_STORM_REFUSED
    return _verdict(misses)


def _verdict(misses: list[str]) -> int:
    if misses:
        print("RTO objective missed (exit 4):\n  " + "\n  ".join(misses))
        return EXIT_RTO_MISSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
