"""User directory benchmark: what Synapse's user directory costs after a sync, old
department rooms (invite-only: a row per *pair* of members) against planb's (public
join rule kept to members by planb's module: a row per member), in one run.

    .venv/bin/python bench/userdir.py -c LAB/planb.yml [--json out.json]

Run as root on a deployed lab (any number of agents in the lab's primary; the issue's
figure is for 9,000). It changes that lab's Synapse: planb's department rooms are
deleted (purged) and made again. Phases (``--phases``), each measured to the end
(the user directory caught up with every event, two polls in a row):

1. ``old``: planb's department rooms deleted, then created invite-only (the former
   ``room_body``) and a sync joins every agent (the room opening of today's sync left
   out);
2. ``migrate``: the next sync as planb ships it opens those rooms (department event,
   then the join rule): Synapse drops each room's pairs and stores its members;
3. ``new``: the department rooms deleted, then a fresh sync makes them as planb
   does now (``--phases new`` alone: the new design's figures only).

:func:`measure_user_directory` (used by bench/sync.py too) waits for the directory
and reads its tables: rows of ``users_who_share_private_rooms`` (pairs) and
``users_in_public_rooms``, table sizes, and the CPU-seconds Synapse's and
PostgreSQL's units spent meanwhile (systemd's CPUUsageNSec, or their processes' clock
ticks where CPU accounting is off, as on the lab's hosts). Each phase also gives its
sync's time and CPU-seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from planb.config import SiteConfig, find_config_path, load_config
from planb.directory.plan import Plan
from planb.directory.sync import Sync
from planb.inventory import InventoryHost
from planb.messaging.admin_api import AdminApi, MatrixApiError
from planb.messaging.apply import MatrixApplier
from planb.messaging.rooms import DEPARTMENT_EVENT, room_body
from planb.messaging.sync_target import SynapseTarget, target_for
from planb.messaging.tunnel import messaging_host
from planb.verify.connections import HostConnections

log = logging.getLogger("bench.userdir")
MIB = 1024 * 1024
TABLES = ("users_who_share_private_rooms", "users_in_public_rooms", "user_directory",
          "user_directory_search")
PSQL = "runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d synapse -F '|' -c "
STATE_SQL = (
    "SELECT (SELECT stream_id FROM user_directory_stream_pos), "
    "(SELECT COALESCE(MAX(stream_ordering), -1) FROM events), "
    "(SELECT count(*) FROM background_updates WHERE update_name LIKE 'populate_user_directory%'), "
    "(SELECT count(*) FROM users_who_share_private_rooms), "
    "(SELECT count(*) FROM users_in_public_rooms), "
    "(SELECT count(*) FROM user_directory), "
    + ", ".join(f"pg_total_relation_size('{t}')" for t in TABLES))
#: Synapse (and its workers) and PostgreSQL: the units whose CPU time counts. systemd's
#: CPUUsageNSec where CPU accounting is on; else (the lab's nspawn hosts, cgroup v1) the
#: clock ticks of the unit's processes, found by their systemd cgroup, children reaped
#: included (PostgreSQL's postmaster reaps its backends).
CPU_SCRIPT = r"""
t() { awk '{sub(/.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
echo "clk_tck $(getconf CLK_TCK)"
for u in $(systemctl list-units --type=service --state=running --no-legend --plain \
           | awk '{print $1}' | grep -E '^(synapse|postgresql@)'); do
  n=$(systemctl show -P CPUUsageNSec "$u")
  case "$n" in
    ''|*[!0-9]*)
      ticks=0
      for c in $(grep -l "/$u\$" /proc/[0-9]*/cgroup 2>/dev/null); do
        p=${c#/proc/}; ticks=$((ticks + $(t "${p%/cgroup}")))
      done
      echo "$u ticks $ticks" ;;
    *) echo "$u ns $n" ;;
  esac
done
"""


def _host(site: SiteConfig) -> tuple[HostConnections, InventoryHost]:
    host = messaging_host(site)
    if host is None:
        raise SystemExit("the site has no fallback_messaging host")
    return HostConnections(), host


def _cpu(conns: HostConnections, host: InventoryHost) -> dict[str, float]:
    """Synapse's and PostgreSQL's CPU-seconds so far (summed over their units)."""
    out = {"synapse": 0.0, "postgresql": 0.0}
    lines = conns.get(host).check_output(CPU_SCRIPT).splitlines()
    tck = next((float(line.split()[1]) for line in lines if line.startswith("clk_tck ")), 100)
    for line in lines:
        unit, kind, value = (line.split() + ["", ""])[:3]
        if kind in ("ns", "ticks") and value.isdigit():
            service = "synapse" if unit.startswith("synapse") else "postgresql"
            out[service] += int(value) / (1e9 if kind == "ns" else tck)
    return out


def _state(conns: HostConnections, host: InventoryHost) -> dict[str, int]:
    row = conns.get(host).check_output(PSQL + shlex.quote(STATE_SQL)).strip().split("|")
    names = ["stream_pos", "max_stream", "populating", "pairs_rows", "public_rows",
             "directory_rows", *(f"{t}_bytes" for t in TABLES)]
    return {n: int(v or 0) for n, v in zip(names, row, strict=True)}


def measure_user_directory(site: SiteConfig, *, poll: float = 5.0,
                           timeout: float = 3 * 3600) -> dict[str, Any]:
    """Wait for Synapse's user directory to be done, and what it cost meanwhile.

    Done: its stream position has reached the newest event and no initial population
    is pending, at two polls in a row. Returns seconds waited, the CPU-seconds of
    Synapse and PostgreSQL meanwhile, rows of the pair and public tables, the
    directory's users and each table's size (MiB, with indexes and TOAST).
    """
    conns, host = _host(site)
    started, cpu0 = time.monotonic(), _cpu(conns, host)
    done_polls, state = 0, _state(conns, host)
    while True:
        caught_up = state["stream_pos"] >= state["max_stream"] and not state["populating"]
        done_polls = done_polls + 1 if caught_up else 0
        if done_polls >= 2 or time.monotonic() - started > timeout:
            break
        time.sleep(poll)
        state = _state(conns, host)
    seconds = time.monotonic() - started
    cpu1 = _cpu(conns, host)
    return {
        "done": done_polls >= 2,
        # the last poll confirms; the directory was done one poll before
        "seconds_to_done": round(max(0.0, seconds - poll), 1),
        "synapse_cpu_seconds": round(cpu1["synapse"] - cpu0["synapse"], 1),
        "postgresql_cpu_seconds": round(cpu1["postgresql"] - cpu0["postgresql"], 1),
        "pairs_rows": state["pairs_rows"],
        "public_rows": state["public_rows"],
        "directory_users": state["directory_rows"],
        "table_mib": {t: round(state[f"{t}_bytes"] / MIB, 1) for t in TABLES},
    }


# --- the old-vs-new run --------------------------------------------------------------


class OldApplier(MatrixApplier):
    """The sync before this change: department rooms created invite-only, never opened."""

    def _open_rooms(self, plan: Any, report: Any, progress: Any) -> None:
        return None


def old_body(alias: str, name: str, admin_id: str, federate: bool) -> dict[str, Any]:
    """The former department room: join rule ``invite`` and no department event."""
    body = room_body(alias, name, announcement=False, admin_id=admin_id, federate=federate)
    body["initial_state"] = [
        {**e, "content": {"join_rule": "invite"}} if e["type"] == "m.room.join_rules" else e
        for e in body["initial_state"] if e["type"] != DEPARTMENT_EVENT]
    return body


def department_rooms(api: AdminApi, target: SynapseTarget) -> dict[str, str]:
    """Room ID -> alias localpart of planb's department rooms."""
    suffix = f":{api.server_name}"
    found = {}
    for room in api.rooms():
        alias = room.get("canonical_alias") or ""
        local = alias[1:-len(suffix)] if alias.endswith(suffix) else ""
        if room.get("creator") == target.admin_id and local.startswith(target.names.prefix):
            found[str(room["room_id"])] = local
    return found


def delete_department_rooms(target: SynapseTarget) -> int:
    with target.api() as api:
        rooms = department_rooms(api, target)
        for room_id in rooms:
            api.delete_room(room_id)
    return len(rooms)


class OldTarget(SynapseTarget):
    """The Matrix target as before: missing department rooms made invite-only first."""

    def apply(self, plan: Plan, progress: Any) -> Any:
        with self.api() as api:
            for create in plan.room_creates:
                if create.alias != self.names.announcement:
                    api.create_room(old_body(create.alias, create.name or create.alias,
                                             self.admin_id, self.site.matrix.federation),
                                    create.alias)
            return OldApplier(api, self.names, self.admin_id, workers=self.workers,
                              federate=self.site.matrix.federation).apply(plan, progress)


def sync_phase(site: SiteConfig, target: SynapseTarget, old: bool) -> dict[str, Any]:
    """One full sync (LDAP, then Matrix: old or new rooms): its time and Matrix calls."""
    matrix = OldTarget(site, target.ssh) if old else target
    conns, host = _host(site)
    started, cpu0 = time.monotonic(), _cpu(conns, host)
    result = Sync(site, matrix=matrix).apply(force=True)
    assert result is not None
    cpu1 = _cpu(conns, host)
    calls: dict[str, int] = {}
    for report in result.reports:
        calls.update(report.done)
    return {"sync_seconds": round(time.monotonic() - started, 1),
            "sync_synapse_cpu_seconds": round(cpu1["synapse"] - cpu0["synapse"], 1),
            "sync_postgresql_cpu_seconds": round(cpu1["postgresql"] - cpu0["postgresql"], 1),
            "calls": calls, "failures": sum(len(r.failures) for r in result.reports)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", type=Path, help="the lab's planb.yml")
    parser.add_argument("--json", help="write the figures to this file too")
    parser.add_argument("--phases", default="old,migrate,new",
                        help="which phases, in this order (default: old,migrate,new)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    site = load_config(find_config_path(args.config))
    target = target_for(site)
    if target is None:
        raise SystemExit("no Matrix target: deploy the lab first")
    figures: dict[str, Any] = {}
    for phase in args.phases.split(","):
        if phase in ("old", "new"):  # both start from no department room
            deleted = delete_department_rooms(target)
            figures[f"before_{phase}"] = {"rooms_deleted": deleted} | \
                measure_user_directory(site)
            log.info("deleted %d department rooms: %s", deleted, figures[f"before_{phase}"])
        elif phase != "migrate":
            raise SystemExit(f"unknown phase {phase!r}: old, migrate or new")
        log.info("phase %s: sync", phase)
        figures[phase] = sync_phase(site, target, old=phase == "old") | \
            measure_user_directory(site)
        log.info("phase %s: %s", phase, figures[phase])
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=2)
    return 0 if all(f.get("done") for f in figures.values()) else 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MatrixApiError as exc:
        raise SystemExit(f"Synapse: {exc.message}") from None
