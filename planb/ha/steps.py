"""What ``planb failover promote`` runs on the hosts (:mod:`planb.ha.promote`): the
standby's replay lag read from its PostgreSQL, and the shell scripts of each step.

Each script is sent to ``sh -s`` over SSH; values that reach a script are checked
first (a mode, addresses).
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planb.errors import PlanbError

#: Where PostgreSQL runs and answers (the postgresql role's defaults).
POSTGRESQL_PORT = 5432
POSTGRESQL_UNIT = "postgresql@15-main"
MODE_FILE = "/etc/planb/mode"
#: The standby's Synapse workers: one ``synapse-worker@<name>`` per config file here.
WORKER_CONFIGS = "/etc/synapse/workers"
#: Configuration on the standby copied from the fallback (standby role) that may name
#: the fallback's address: Synapse's, nginx's, coturn's.
COPIED_CONFIG = ("/etc/synapse", "/etc/nginx", "/etc/turnserver.conf")

#: psql as postgres, quiet, unaligned, stopping at the first error.
PSQL = "runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1"
#: in recovery | WAL bytes received, not replayed | seconds behind | replay paused
LAG_SQL = (
    "SELECT pg_is_in_recovery(), "
    "CASE WHEN pg_is_in_recovery() THEN coalesce(pg_wal_lsn_diff("
    "pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint END, "
    "CASE WHEN NOT pg_is_in_recovery() THEN NULL "
    "WHEN pg_last_wal_receive_lsn() IS NULL "
    "OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE round(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 3) END, "
    "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END")


@dataclass(frozen=True)
class Lag:
    """The standby's PostgreSQL: in recovery (a standby) and how far its replay is behind.

    ``seconds``: 0 when everything received is replayed, else the age of the last
    transaction replayed (None: not known, e.g. none replayed since it started)."""

    in_recovery: bool
    seconds: float | None
    bytes: int | None
    paused: bool = False

    def describe(self) -> str:
        if not self.in_recovery:
            return "PostgreSQL is not in recovery (already a primary)"
        seconds = "unknown" if self.seconds is None else f"{self.seconds:g} s"
        return (f"replay lag {seconds}, {self.bytes or 0} bytes received not replayed"
                + (" (replay paused)" if self.paused else ""))

    def as_json(self) -> dict[str, Any]:
        return {"in_recovery": self.in_recovery, "seconds": self.seconds,
                "bytes": self.bytes, "paused": self.paused}


def parse_lag(text: str) -> Lag:
    """The :data:`LAG_SQL` row as psql -At prints it (``t|0|0|f``)."""
    fields = text.strip().split("|")
    if len(fields) != 4 or fields[0] not in ("t", "f"):
        raise PlanbError(f"unexpected answer from the standby's PostgreSQL: {text.strip()!r}")
    recovery, lag_bytes, seconds, paused = fields
    return Lag(recovery == "t", None if seconds == "" else float(seconds),
               None if lag_bytes == "" else int(lag_bytes), paused == "t")


def promote_script() -> str:
    """PostgreSQL promoted (waiting up to 60 s), unless it is a primary already."""
    return (f"set -eu\nif [ \"$({PSQL} -c 'SELECT pg_is_in_recovery()')\" = t ]; then\n"
            f"  [ \"$({PSQL} -c 'SELECT pg_promote(true, 60)')\" = t ]\n"
            "  echo 'PostgreSQL promoted: it takes writes now'\n"
            "else echo 'PostgreSQL was already a primary'; fi\n")


def services_script(mode: str, old_address: str, new_address: str,
                    health_seconds: int = 120) -> str:
    """The mode written; the configuration copied from the lost host (:data:`COPIED_CONFIG`)
    pointed at this host instead of ``old_address`` (Synapse's directory, coturn's
    listening address); Synapse (+ workers), nginx and coturn enabled and (re)started, so
    that nothing left running on the standby keeps old state or configuration; /health
    awaited."""
    if mode not in ("active", "standby"):
        raise ValueError(f"mode {mode!r}")
    for address in (old_address, new_address):
        ipaddress.ip_address(address)  # only an address goes into the sed expression
    old = old_address.replace(".", "[.]")
    return (
        "set -eu\n"
        f"for f in $(grep -rlF {old_address} {' '.join(COPIED_CONFIG)} 2>/dev/null || true); do\n"
        f"  sed -i -E 's/(^|[^0-9.]){old}([^0-9]|$)/\\1{new_address}\\2/g' \"$f\"\n"
        f"  echo \"$f: {old_address} -> {new_address}\"\n"
        "done\n"
        f"mkdir -p {shlex.quote(str(Path(MODE_FILE).parent))}\n"
        f"printf '%s\\n' {mode} > {MODE_FILE}.new && mv {MODE_FILE}.new {MODE_FILE}\n"
        f"echo 'mode {mode} written to {MODE_FILE}'\n"
        # Workers need their replication bus first (the redis role's Debian Redis).
        f"if ls {WORKER_CONFIGS}/*.yaml >/dev/null 2>&1; then\n"
        "  { systemctl enable redis-server.service && systemctl restart redis-server.service; }"
        " >/dev/null 2>&1 || "
        "{ echo 'redis-server (Synapse workers) does not start here' >&2; exit 1; }\n"
        "  echo 'redis-server started (Synapse workers)'\nfi\n"
        "{ systemctl enable synapse.service && systemctl restart synapse.service; } "
        ">/dev/null 2>&1 || "
        "{ systemctl status --no-pager synapse.service | tail -5 >&2; exit 1; }\n"
        f"for config in {WORKER_CONFIGS}/*.yaml; do\n"
        "  [ -e \"$config\" ] || continue\n"
        "  unit=\"synapse-worker@$(basename \"$config\" .yaml).service\"\n"
        "  { systemctl enable \"$unit\" && systemctl restart \"$unit\"; } >/dev/null 2>&1 || "
        "{ echo \"$unit does not start\" >&2; exit 1; }\n"
        "  echo \"$unit started\"\n"
        "done\n"
        "systemctl enable nginx.service coturn.service >/dev/null 2>&1\n"
        "systemctl restart nginx.service coturn.service >/dev/null 2>&1\n"
        "echo 'synapse, nginx and coturn (re)started'\n"
        f"i=0; until python3 -c \"import urllib.request as u; "
        "u.urlopen('http://127.0.0.1:8008/health', timeout=2)\" 2>/dev/null; do\n"
        f"  i=$((i+1)); [ $i -lt {health_seconds} ] || "
        "{ echo 'Synapse does not answer /health' >&2; exit 1; }; sleep 1\n"
        "done\necho \"Synapse answers /health after ${i} s\"\n")


def fence_script() -> str:
    """The old primary stops serving (best effort: each unit on its own)."""
    units = f"keepalived synapse nginx coturn {POSTGRESQL_UNIT}"
    return (f"for u in {units}; do systemctl stop \"$u\" 2>/dev/null "
            "&& echo \"$u stopped\"; done; true\n")


def address_script(address: str, seconds: int = 30) -> str:
    """Wait until this host holds ``address`` (keepalived moved it here)."""
    return (f"i=0; until ip -o -4 addr show | grep -q ' {address}/'; do\n"
            f"  i=$((i+1)); [ $i -lt {seconds * 2} ] || "
            f"{{ echo 'keepalived did not bring {address} here' >&2; exit 1; }}; "
            "sleep 0.5\ndone\n"
            f"echo \"holds {address} after $((i / 2)) s\"\n")
