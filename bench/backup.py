"""Benchmark the fallback's backups on a lab with a backup host: planb next to the same
work done by hand with pg_dump / pg_restore and slapcat / slapadd, on the same data in
the same run (planb should cost little on top of the tools it drives).

    cd <backup lab site> && /work/main/.venv/bin/python /work/main/bench/backup.py
    .venv/bin/python bench/backup.py --boot DIR --agents 9000 --bridge planbN --subnet 10.77.N.0/24

``--boot`` writes a lab site with a backup host in DIR (``--agents`` agents on its
primary; default 600), boots, deploys and syncs it, runs the benchmark and leaves the
lab up (``planb -c DIR/planb.yml lab down`` brings it down). Without it, the lab of the
planb.yml found from the current folder (or ``--config``) is used as it is.

- first backup: ``planb backup now`` (borgmatic: slapcat, pg_dump, media, keys,
  configuration, encrypted over SSH to the backup host, prune, compact) — time and what
  it added to the repository; "first" only when the repository had no archive (else
  it says so: the figures are those of a backup of an unchanged host);
- by hand, the same data: ``pg_dump -Fc`` and ``slapcat`` (cn=config and data) on the
  fallback, streamed to the backup host over SSH — time and bytes;
- incremental: after ``--churn`` % of the agents changed on the primary and synced
  (default 1) and ``--messages`` messages posted (default 1,000), the same two again;
- restore: ``planb backup verify`` (the archive extracted, Synapse's dump into a fresh
  database, the directory into a fresh slapd.d) next to by hand (the dumps fetched
  back, ``createdb`` + ``pg_restore``, ``slapadd`` into a fresh slapd.d); with
  ``--restore`` also ``planb restore --force`` of the newest archive (the real thing:
  services stopped, put back, started).

Prints each figure and planb's ratio to by hand. Exit 2 when a figure is over its goal
(:data:`GOALS`: a ratio, or for times an extra number of seconds, whichever is more
lenient), 1 when the lab cannot be benchmarked.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from planb.backup import list_archives, run_now, verify
from planb.config import LabConfig, SiteConfig, find_config_path, load_config
from planb.lab.lab import Lab

#: planb over by hand, at most: (ratio, or extra seconds when that is more lenient).
#: borgmatic also backs up media and configuration, encrypts, sends over SSH, prunes
#: and compacts, and starts Python and borg each time: on a small lab that fixed cost
#: (seconds) is most of the time, on a large one the dumps are. An incremental
#: archive must add less than a full dump by hand.
GOALS: dict[str, tuple[float, float]] = {
    "first backup time": (3.0, 30.0), "incremental backup time": (3.0, 30.0),
    "incremental backup size": (1.0, 0.0), "restore time (verify)": (3.0, 60.0)}
HAND_DIR = "/var/tmp/planb-bench-hand"
EXIT_OVER_GOAL = 2


@dataclass
class Figure:
    """One measured operation: planb's and by hand's."""

    name: str
    planb: float
    hand: float
    unit: str

    @property
    def ratio(self) -> float:
        return self.planb / self.hand if self.hand else float("inf")

    @property
    def over(self) -> bool:
        """Over its goal: past the ratio and (for times) past the extra seconds."""
        if self.name not in GOALS:
            return False
        ratio, extra = GOALS[self.name]
        return self.ratio > ratio and not (self.unit == "s" and self.planb - self.hand <= extra)

    def line(self) -> str:
        goal = GOALS.get(self.name)
        shown = "" if goal is None else f"{goal[0]:.1f}x" + (
            f" or +{goal[1]:.0f} s" if self.unit == "s" else "")
        mark = "" if goal is None else (f"  goal <= {shown}: "
                                        + ("OVER" if self.over else "ok"))
        return (f"{self.name:<26} planb {_fmt(self.planb, self.unit):>10}   by hand "
                f"{_fmt(self.hand, self.unit):>10}   ratio {self.ratio:5.2f}x{mark}")


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.1f} s"
    for step in ("B", "kB", "MB", "GB"):
        if value < 1000 or step == "GB":
            return f"{value:.0f} {step}" if step == "B" else f"{value:.1f} {step}"
        value /= 1000
    return f"{value:.1f} GB"


class Bench:
    """The lab, and the commands by hand on its hosts."""

    def __init__(self, site: SiteConfig) -> None:
        self.site = site
        self.lab = Lab(site)
        self.suffix = site.fallback.ldap_suffix

    def on(self, host: str, script: str, timeout: float = 1800) -> str:
        done = self.lab.run_on(host, ["sh", "-c", script], timeout=timeout)
        if done.returncode != 0:
            raise SystemExit(f"on {host}: {script[:80]}…: exit {done.returncode}: "
                             f"{done.stderr.strip()[-400:]}")
        return done.stdout

    def pipe(self, source: str, script: str, target: str, then: str) -> None:
        """``script`` on ``source`` streamed into ``then`` on ``target`` over SSH."""
        first = subprocess.Popen(self.lab.ssh_argv(source, ["sh", "-c", script]),
                                 stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        second = subprocess.run(self.lab.ssh_argv(target, ["sh", "-c", then]),
                                stdin=first.stdout, capture_output=True, check=False)
        assert first.stdout is not None
        first.stdout.close()
        if first.wait() != 0 or second.returncode != 0:
            raise SystemExit(f"by hand {source} -> {target} failed: "
                             f"{second.stderr.decode(errors='replace')[-400:]}")

    def backup_by_hand(self) -> tuple[float, int]:
        """pg_dump -Fc (as borgmatic's hook: one-time keys' data left out) and slapcat
        of cn=config and data on the fallback, streamed as a tar to the backup host."""
        started = time.monotonic()
        dump = (f"set -e; rm -rf {HAND_DIR}; mkdir -p -m 0700 {HAND_DIR}; cd {HAND_DIR}; "
                "(cd / && runuser -u postgres -- pg_dump -Fc "
                "--exclude-table-data=e2e_one_time_keys_json synapse) > synapse.dump; "
                "slapcat -n 0 -l config.ldif; "
                f"slapcat -b {shlex.quote(self.suffix)} -l data.ldif; tar -cf - .")
        self.pipe("fallback", dump, "backup",
                  f"rm -rf {HAND_DIR} && mkdir -p -m 0700 {HAND_DIR} && "
                  f"tar -C {HAND_DIR} -xf -")
        seconds = time.monotonic() - started
        size = int(self.on("backup", f"du -sb {HAND_DIR} | cut -f1").strip())
        self.on("fallback", f"rm -rf {HAND_DIR}")
        return seconds, size

    def restore_by_hand(self) -> float:
        """The dumps fetched back from the backup host, restored into a fresh database
        and a fresh slapd.d on the fallback (nothing running touched), then removed."""
        started = time.monotonic()
        self.pipe("backup", f"tar -C {HAND_DIR} -cf - .", "fallback",
                  f"rm -rf {HAND_DIR} && mkdir -p -m 0700 {HAND_DIR} && "
                  f"tar -C {HAND_DIR} -xf -")
        # The scratch slapd.d's database folder is the scratch one, never the live one.
        self.on("fallback", (
            f"set -e; cd /; "
            "runuser -u postgres -- dropdb --if-exists planb_bench_hand; "
            "runuser -u postgres -- createdb -E UTF8 --locale=C -T template0 "
            "planb_bench_hand; "
            "runuser -u postgres -- pg_restore --no-owner --no-privileges --exit-on-error "
            f"-d planb_bench_hand < {HAND_DIR}/synapse.dump; cd {HAND_DIR}; "
            "mkdir -p slapd.d ldap-db; "
            f"sed \"s|^olcDbDirectory: .*|olcDbDirectory: {HAND_DIR}/ldap-db|\" config.ldif "
            "> scratch-config.ldif; "
            "slapadd -q -n 0 -F slapd.d -l scratch-config.ldif; "
            f"slapadd -q -F slapd.d -b {shlex.quote(self.suffix)} -l data.ldif"))
        seconds = time.monotonic() - started
        self.on("fallback", f"runuser -u postgres -- dropdb --if-exists planb_bench_hand; "
                            f"rm -rf {HAND_DIR}")
        return seconds

    def planb_backup(self) -> tuple[float, int, int, str]:
        """``planb backup now``: seconds, bytes read, bytes added, archive name."""
        started = time.monotonic()
        run_now(self.site)
        seconds = time.monotonic() - started
        newest = list_archives(self.site)[-1]
        return seconds, newest.original_size, newest.deduplicated_size, newest.name

    def messages(self, count: int) -> float:
        """``count`` messages posted by planb-admin in a room of its own (on the host,
        to Synapse on localhost); seconds."""
        token = (self.site.state_dir / "synapse" / "admin-token").read_text().strip()
        script = (
            "import json, sys, urllib.request as u\n"
            "base = 'http://127.0.0.1:8008/_matrix/client/v3'\n"
            "token = sys.stdin.readline().strip()\n"
            "n, tag = int(sys.argv[1]), sys.argv[2]\n"
            "def call(method, path, body):\n"
            "    r = u.Request(base + path, data=json.dumps(body).encode(), method=method,\n"
            "                  headers={'Authorization': 'Bearer ' + token,\n"
            "                           'Content-Type': 'application/json'})\n"
            "    return json.loads(u.urlopen(r).read())\n"
            "room = call('POST', '/createRoom', {'name': 'bench ' + tag})['room_id']\n"
            "for i in range(n):\n"
            "    call('PUT', f'/rooms/{room}/send/m.room.message/{tag}-{i}',\n"
            "         {'msgtype': 'm.text', 'body': f'bench message {i} of {n}'})\n")
        started = time.monotonic()
        # The token goes in on stdin: never on a command line.
        done = subprocess.run(
            self.lab.ssh_argv("fallback", ["python3", "-c", script,
                                           str(count), secrets.token_hex(4)]),
            capture_output=True, text=True, check=False, timeout=3600, input=token + "\n")
        if done.returncode != 0:
            raise SystemExit(f"posting messages failed: {done.stderr.strip()[-400:]}")
        return time.monotonic() - started


def _boot(directory: Path, agents: int, bridge: str, subnet: str) -> SiteConfig:
    from planb.lab.site import write_lab_site
    from planb.lab.topology import build_topology
    from planb.provisioning.deploy import run_deploy

    key = directory / ".planb" / "lab" / "id_ed25519"
    path = write_lab_site(directory, build_topology(subnet, bridge, backup=True), key,
                          LabConfig(subnet=subnet, bridge=bridge, agents=agents))
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("backup:\n  enabled: false\n", "backup:\n  enabled: true\n"),
                    encoding="utf-8")
    site = load_config(path)
    Lab(site).up()
    result = run_deploy(site)
    if not result.ok:
        raise SystemExit(f"deploy failed: {result.failures}")
    _planb(site, "keys", "init")
    _planb(site, "sync", "apply", "--yes")
    return site


def _planb(site: SiteConfig, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "planb.cli.main", "--config",
                           str(site.source), *args], capture_output=True, text=True,
                          check=False, timeout=7200)
    if done.returncode != 0:
        raise SystemExit(f"planb {' '.join(args)} failed: {done.stdout[-600:]}"
                         f"{done.stderr[-600:]}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-c", type=Path, help="the backup lab's planb.yml")
    parser.add_argument("--boot", type=Path, metavar="DIR",
                        help="write, boot, deploy and sync a backup lab in DIR first")
    parser.add_argument("--agents", type=int, default=600, help="with --boot (600)")
    parser.add_argument("--bridge", default="planb9", help="with --boot (planb9)")
    parser.add_argument("--subnet", default="10.77.9.0/24", help="with --boot")
    parser.add_argument("--churn", type=float, default=1.0, help="%% of agents changed")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--restore", action="store_true",
                        help="also time 'planb restore --force' of the newest archive")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.boot:
        args.boot.mkdir(parents=True, exist_ok=True)
        site = _boot(args.boot, args.agents, args.bridge, args.subnet)
    else:
        site = load_config(find_config_path(args.config))
    if site.lab is None or not site.backup.enabled:
        print("needs a lab site with backup.enabled and a backup host", file=sys.stderr)
        return 1
    bench = Bench(site)
    agents = bench.on("fallback", f"ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b "
                      f"ou=people,{shlex.quote(bench.suffix)} '(uid=*)' dn | grep -c '^dn:'"
                      " || true").strip()
    had = len(list_archives(site))
    figures: list[Figure] = []
    notes = [f"{agents} agents in the fallback directory; {had} archive(s) before the run; "
             f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"]

    hand_s, hand_b = bench.backup_by_hand()
    planb_s, read_b, added_b, _ = bench.planb_backup()
    figures += [Figure("first backup time", planb_s, hand_s, "s"),
                Figure("first backup size", added_b, hand_b, "B")]
    notes.append(f"first backup: planb read {_fmt(read_b, 'B')} from the host"
                 + ("" if had == 0 else f" (not the first: the repository held {had} "
                                        "archive(s), so 'added' is an unchanged host's)"))

    from planb.directory.lab_churn import Churn
    record, _ = Churn(site).run(args.churn)
    _planb(site, "sync", "apply", "--yes")
    posted = bench.messages(args.messages)
    notes.append(f"churn {args.churn} %: {record.counts()}; {args.messages} messages "
                 f"posted in {posted:.1f} s")
    hand_s, hand_b = bench.backup_by_hand()
    planb_s, read_b, added_b, newest = bench.planb_backup()
    figures += [Figure("incremental backup time", planb_s, hand_s, "s"),
                Figure("incremental backup size", added_b, hand_b, "B")]

    started = time.monotonic()
    [checked] = verify(site, newest)
    verify_s = time.monotonic() - started
    figures.append(Figure("restore time (verify)", verify_s, bench.restore_by_hand(), "s"))
    notes.append(f"verify of {newest}: {checked.report}")
    if args.restore:
        from planb.backup.restore import restore  # planb restore (issue 13)

        started = time.monotonic()
        restore(site, archive=newest, force=True)
        figures.append(Figure("restore time (restore)", time.monotonic() - started,
                              figures[-1].hand, "s"))
        bench.on("backup", f"rm -rf {HAND_DIR}")
    else:
        bench.on("backup", f"rm -rf {HAND_DIR}")

    for note in notes:
        print(note)
    for figure in figures:
        print(figure.line())
    print(json.dumps({f.name: {"planb": round(f.planb, 1), "hand": round(f.hand, 1),
                               "ratio": round(f.ratio, 2)} for f in figures}))
    over = [f.name for f in figures if f.over]
    if over:
        print("over goal: " + ", ".join(over))
        return EXIT_OVER_GOAL
    return 0


if __name__ == "__main__":
    sys.exit(main())
