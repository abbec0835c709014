"""Sync benchmark: LDAP and Matrix, each next to a plain baseline measured in the same run.

Run as root on a deployed lab whose Synapse holds no agents yet (a fresh
``planb deploy``): ``.venv/bin/python bench/sync.py -c LAB/planb.yml``. It changes
that lab: the fallback LDAP is emptied twice (offline, slapcat/slapadd), Synapse
gets every agent, their rooms, and ``--baseline-users`` extra users ``bench-*``.

Figures (aims from issue 4):
1. full LDAP sync of every agent vs ``ldapadd`` of an LDIF of the same entries into an
   emptied suffix (on the host, ldapi) — aim within 1.5x;
2. Matrix user provisioning rate (planb's applier) vs a plain concurrent admin-API
   loop (8 in flight, PUT /_synapse/admin/v2/users, other users) — aim >= 0.8x;
3. room memberships per second (force-joins, the department rooms and the
   announcement room), and the announcement: time to post it and how many active
   agents it reached;
4. ``planb lab churn --percent 1`` then one sync apply end to end — aim < 30 s;
5. planb's peak memory (this process's max RSS) — aim < 300 MiB.

``--workers-compare`` instead measures the first full sync (users, rooms, memberships)
twice in the same run: on Synapse's monolith (``fallback.synapse.workers: none``) and on
the ``activation`` workers preset, each time on an emptied Synapse database (planb.yml
edited, Synapse stopped, its database dropped, ``planb deploy``; bench/workers.py), with
the CPU-seconds of each service's units (bench/capacity.py's meter). It prints the
time, memberships/s, the activation/monolith ratio and both projected to 9,000 agents
(17,640 memberships; linear, so a floor: a join costs more in a bigger room); exit
status 7 when the preset's projection misses the issue's 15 minutes. The lab is left
on the preset. With ``--userdir``, bench/userdir.py's ``measure_user_directory`` runs
after each sync.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from planb.config import SiteConfig, load_config
from planb.directory.fallback_ldap import Layout, add_attributes, group_jobs
from planb.directory.plan import Plan
from planb.directory.sync import Sync
from planb.lab.agents import ldif_line
from planb.lab.fallback_reset import empty_fallback
from planb.lab.lab import Lab
from planb.messaging.admin_api import AdminApi, quote
from planb.messaging.admin_token import read_token
from planb.messaging.announce import announce_with
from planb.messaging.apply import MatrixApplier
from planb.messaging.sync_target import SynapseTarget, target_for

LDAPADD = ("import time,subprocess; t=time.monotonic(); subprocess.run(['ldapadd','-Q','-Y',"
           "'EXTERNAL','-H','ldapi:///','-f','/root/agents.ldif'],check=True,"
           "stdout=subprocess.DEVNULL); print(time.monotonic()-t)")


def planb(site: SiteConfig, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "planb.cli.main", "-c", str(site.source),
                           *args], input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"planb {' '.join(args)}: {done.stderr}")
    return done.stdout


def on_fallback(site: SiteConfig, *cmd: str, stdin: str | None = None) -> str:
    return planb(site, "lab", "ssh", "fallback", "--", *cmd, stdin=stdin)


def empty_ldap(site: SiteConfig) -> None:
    empty_fallback(Lab(site), site)


def ldif_for(plan: Plan, layout: Layout) -> tuple[str, int]:
    blocks = []
    for add in plan.ldap_adds:
        lines = [ldif_line("dn", layout.person_dn(add.agent.login))]
        for name, values in add_attributes(add.agent, add.localpart).items():
            lines += [ldif_line(name, v) for v in values]
        blocks.append("\n".join(lines))
    for job in group_jobs(plan, layout, {}):
        lines = [ldif_line("dn", job.dn), "objectClass: groupOfNames", ldif_line("cn", job.name)]
        lines += [ldif_line("member", m) for m in job.add]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n", len(blocks)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def bench_ldap(site: SiteConfig) -> None:
    layout = Layout(site.fallback.ldap_suffix)
    empty_ldap(site)
    plan = Sync(site).plan().plan
    ldif, entries = ldif_for(plan, layout)
    on_fallback(site, "sh", "-c", "cat > /root/agents.ldif", stdin=ldif)
    ldapadd = float(on_fallback(site, "python3", "-c", LDAPADD))
    empty_ldap(site)
    t0 = time.monotonic()
    result = Sync(site).apply()  # LDAP only: read primary, plan, write, re-read, confirm
    full = time.monotonic() - t0
    assert result is not None and result.ldap_converged(), "LDAP sync did not converge"
    print(f"LDAP   ldapadd of {entries} entries (ldapi, on the host): {ldapadd:.1f} s")
    print(f"LDAP   planb full sync of {len(plan.ldap_adds)} agents end to end: {full:.1f} s "
          f"= {ratio(full, ldapadd)} ldapadd (aim <= 1.5x)", flush=True)


def baseline_users(api: AdminApi, token: str, n: int, workers: int = 8) -> float:
    """A plain concurrent loop: PUT /_synapse/admin/v2/users, one connection per request
    (as urllib would), ``workers`` in flight."""

    def create(i: int) -> None:
        uid = f"@bench-{int(time.time())}-{i:05d}:{api.server_name}"
        conn = api.new_connection()
        try:
            conn.request("PUT", f"/_synapse/admin/v2/users/{quote(uid)}",
                         body=json.dumps({"displayname": f"Bench {i}"}).encode(),
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/json"})
            answer = conn.getresponse()
            answer.read()
            if answer.status >= 300:
                raise RuntimeError(f"PUT {uid}: HTTP {answer.status}")
        finally:
            conn.close()

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(create, range(n)))
    return n / (time.monotonic() - t0)


def bench_matrix(site: SiteConfig, target: SynapseTarget, baseline_n: int) -> None:
    plan = Sync(site, matrix=target).plan().plan
    quiet = lambda *a: None  # noqa: E731
    with target.api() as api:
        applier = MatrixApplier(api, target.names, target.admin_id, workers=target.workers)
        if plan.matrix_creates:
            base_rate = baseline_users(api, read_token(site), baseline_n)
            print(f"MATRIX plain admin-API loop (8 in flight): {base_rate:.1f} users/s "
                  f"({baseline_n} users)", flush=True)
        else:
            print("MATRIX users already provisioned: no user-rate figure (needs a fresh "
                  "Synapse)")
        bench_users = [u.user_id for u in api.users() if (api.localpart(u.user_id) or "")
                       .startswith("bench-") and not u.deactivated]
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda uid: api.deactivate(api.localpart(uid) or ""), bench_users))
        if bench_users:
            took = time.monotonic() - t0
            print(f"MATRIX deactivated the {len(bench_users)} baseline users (erase: false): "
                  f"{len(bench_users) / took:.1f}/s", flush=True)
        from planb.directory.fallback_apply import ApplyReport
        report = ApplyReport("matrix")
        t0 = time.monotonic()
        rooms = applier._rooms(plan, report, quiet)
        t_rooms = time.monotonic() - t0
        print(f"MATRIX {len(rooms)} rooms ready in {t_rooms:.1f} s "
              f"({report.done.get('room_create', 0)} created; failures {report.failures[:3]})",
              flush=True)
        if plan.matrix_creates:
            t0 = time.monotonic()
            applier._users(plan, report, quiet)
            t_users = time.monotonic() - t0
            rate = len(plan.matrix_creates) / t_users
            print(f"MATRIX planb created {len(plan.matrix_creates)} users in {t_users:.1f} s: "
                  f"{rate:.1f} users/s = {ratio(rate, base_rate)} the plain loop "
                  "(aim >= 0.8x)", flush=True)
        joins = sum(len(c.joins) for c in plan.room_changes)
        t0 = time.monotonic()
        last = [t0]

        def progress(phase: str, done: int, total: int) -> None:
            if done and (done % 1000 == 0 or done == total):
                now = time.monotonic()
                print(f"MATRIX   {done}/{total} memberships, {now - t0:.0f} s "
                      f"({1000 / max(now - last[0], 1e-9):.1f}/s lately)", flush=True)
                last[0] = now

        applier._members(plan, rooms, report, progress)
        t_members = time.monotonic() - t0
        print(f"MATRIX {joins} memberships in {t_members:.0f} s: {joins / t_members:.1f}/s "
              f"({len(report.failures)} failures: {report.failures[:3]})", flush=True)
        text = "Banc d'essai planb : annonce d'activation (test)."
        announced = announce_with(api, text, room=target.names.announcement or "annonces")
        print(f"MATRIX announcement: {announced.summary()}", flush=True)


def bench_churn(site: SiteConfig) -> None:
    record = json.loads(planb(site, "lab", "churn", "--percent", "1", "--json"))
    changed = sum(len(record[k]) for k in ("hires", "leavers", "renames", "moves",
                                           "reactivations"))
    t0 = time.monotonic()
    result = Sync(site, matrix=target_for(site)).apply()
    took = time.monotonic() - t0
    assert result is not None
    print(f"SYNC   1 % churn ({changed} changes) end to end, LDAP and Matrix: {took:.1f} s "
          f"(aim < 30 s); converged {result.converged()}", flush=True)


#: The first full sync of 9,000 agents makes this many memberships; its goal (issue 14).
FULL_JOINS_9000, FULL_SYNC_GOAL_SECONDS = 17_640, 15 * 60
EXIT_WORKERS_GOAL = 7


def first_sync(site: SiteConfig) -> tuple[int, float]:
    """The first full sync end to end (LDAP in step already): (memberships, seconds)."""
    target = target_for(site)
    if target is None:
        raise SystemExit("no Matrix target after the deploy")
    sync = Sync(site, matrix=target)
    joins = sum(len(c.joins) for c in sync.plan().plan.room_changes)
    t0 = time.monotonic()
    result = Sync(site, matrix=target).apply()
    took = time.monotonic() - t0
    if result is None or not result.converged():
        raise SystemExit("the first full sync did not converge")
    return joins, took


def bench_workers(site: SiteConfig, userdir: bool) -> int:
    """The first full sync on the monolith, then on the activation preset; exit status."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import workers
    from capacity import Meter

    seconds: dict[str, float] = {}
    for preset in workers.PRESETS:
        site, _ = workers.switch(site, preset, fresh=True)
        meter = Meter(site)
        try:
            def run(site: SiteConfig = site, preset: str = preset) -> int:
                joins, seconds[preset] = first_sync(site)
                return joins

            phase = meter.measure(f"first sync ({preset})", run)
        finally:
            meter.close()
        joins = phase.count
        cpu = ", ".join(f"{u.split('/')[-1]} {c:.0f}" for u, c in sorted(phase.cpu.items()))
        projected = seconds[preset] * FULL_JOINS_9000 / max(1, joins)
        print(f"SYNC   {preset:<10} first full sync: {joins} memberships in "
              f"{seconds[preset]:.0f} s = {joins / seconds[preset]:.1f}/s; 9,000 agents "
              f"projected {projected / 60:.1f} min; CPU-s {cpu}", flush=True)
        if userdir:
            from userdir import measure_user_directory  # bench/userdir.py (helper U)
            print(f"USERDIR {preset}: {measure_user_directory(site)}", flush=True)
    ratio_ = seconds["activation"] / seconds["none"]
    projected = seconds["activation"] * FULL_JOINS_9000 / max(1, joins)
    print(f"SYNC   activation / monolith = {ratio_:.2f}x the time; 9,000 agents projected "
          f"{projected / 60:.1f} min (goal <= {FULL_SYNC_GOAL_SECONDS // 60} min)")
    if projected > FULL_SYNC_GOAL_SECONDS:
        print(f"the activation preset misses the first sync's goal (exit {EXIT_WORKERS_GOAL})")
        return EXIT_WORKERS_GOAL
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, required=True, help="the lab's planb.yml")
    parser.add_argument("--baseline-users", type=int, default=1000)
    parser.add_argument("--skip-ldap", action="store_true")
    parser.add_argument("--workers-compare", action="store_true",
                        help="first full sync on the monolith and on the activation "
                             "preset, same run (redeploys; leaves the preset on)")
    parser.add_argument("--userdir", action="store_true",
                        help="with --workers-compare: measure the user directory after "
                             "each sync (bench/userdir.py)")
    args = parser.parse_args()
    site = load_config(args.config)
    if args.workers_compare:
        return bench_workers(site, args.userdir)
    target = target_for(site)
    if target is None:
        raise SystemExit("no Matrix target: deploy the lab first")
    if not args.skip_ldap:
        bench_ldap(site)
    bench_matrix(site, target, args.baseline_users)
    bench_churn(site)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"MEMORY planb peak RSS (this process): {peak:.0f} MiB (aim < 300 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
