"""The hot standby's replication state (issue 14): PostgreSQL streaming, slapd in step,
Synapse's files copied. ``planb verify`` (``standby.replication``), ``planb failover
status`` and the promotion read the same :class:`ReplicationState`.

One SSH command per host (the site's known_hosts only): on each standby
(:data:`STANDBY_PROBE`) PostgreSQL's recovery and WAL receiver, the WAL received but
not replayed yet (bytes, and seconds since the last replayed transaction when some is
waiting), slapd's contextCSN and the file copy's last result; on the fallback
(:data:`PRIMARY_PROBE`) pg_stat_replication (what each standby has not replayed yet,
as the primary sees it) and slapd's contextCSN. The standby's own figures still answer
when the fallback is down (what a promotion needs); the fallback's add what the
standby has not even received yet.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from dataclasses import dataclass, field

from planb.commands import run_command
from planb.config import SiteConfig
from planb.errors import PlanbError
from planb.inventory import (
    FALLBACK_DIRECTORY,
    FALLBACK_MESSAGING,
    FALLBACK_STANDBY,
    InventoryHost,
    load_hosts,
)

log = logging.getLogger(__name__)

#: Where the standby role's copy leaves its last result (JSON: at, ok, seconds, error).
FILES_STATUS = "/var/lib/planb/standby/sync.json"
#: The copy runs every 30 s (standby role); older than this, it is late.
FILES_MAX_AGE_SECONDS = 300
#: Replay lag (seconds) beyond which ``standby.replication`` fails when no objective
#: (``objectives.rpo_seconds``) says otherwise.
DEFAULT_MAX_LAG_SECONDS = 60
SSH_TIMEOUT = 30

#: What only the serving host runs: on a standby, any of these active is a fault (a
#: Synapse or a worker left running there holds stale state and would not be restarted
#: by a promotion's start; nginx or coturn would answer agents from a read-only copy).
SERVING_UNITS = ("synapse.service", "synapse-worker@*.service", "nginx.service",
                 "coturn.service", "redis-server.service")

#: From /, which the postgres user may enter (psql warns on stderr from root's home).
_PSQL = "cd / && runuser -u postgres -- psql -X -tA -F'|' -c "
_STANDBY_SQL = (
    "SELECT pg_is_in_recovery(), COALESCE((SELECT status FROM pg_stat_wal_receiver), ''), "
    "COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), "
    "CASE WHEN pg_last_wal_receive_lsn() IS NULL "
    "OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END, "
    "pg_is_wal_replay_paused()"
)
_PRIMARY_SQL = (
    "SELECT application_name, state, COALESCE(EXTRACT(EPOCH FROM replay_lag), 0), "
    "COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), -1) FROM pg_stat_replication"
)


def _csn_command(suffix: str) -> str:
    return ("ldapsearch -LLL -Q -Y EXTERNAL -H ldapi:/// -o ldif-wrap=no -s base -b "
            f"{shlex.quote(suffix)} '(objectClass=*)' contextCSN 2>&1 "
            "| sed -n 's/^contextCSN: /csn=/p'")


def standby_probe(suffix: str) -> str:
    """The shell command run on a standby (one ``key=value`` a line)."""
    return (f"echo pg=$({_PSQL}{shlex.quote(_STANDBY_SQL)} 2>&1 | tr '\\n' ' '); "
            f"{_csn_command(suffix)}; "
            f"echo files=$(cat {FILES_STATUS} 2>/dev/null | tr -d '\\n'); "
            "echo running=$(systemctl list-units --state=active --plain --no-legend "
            f"--type=service {' '.join(shlex.quote(u) for u in SERVING_UNITS)} 2>/dev/null "
            "| awk '{print $1}' | tr '\\n' ' '); echo now=$(date +%s)")


def primary_probe(suffix: str, directory: bool) -> str:
    """The shell command run on the fallback (``directory``: it runs slapd too)."""
    return (f"{_PSQL}{shlex.quote(_PRIMARY_SQL)} 2>&1 | sed 's/^/rep=/'; "
            + (f"{_csn_command(suffix)}; " if directory else "") + "echo now=$(date +%s)")


class ReplicationError(PlanbError):
    """A host of the replication could not be read."""


@dataclass(frozen=True)
class StandbyReplication:
    """One standby: is it in step with the fallback, and by how much not."""

    host: str
    #: PostgreSQL in recovery and its WAL receiver streaming.
    streaming: bool
    #: What PostgreSQL says: "streaming", "replay paused", "not a standby (promoted?)",
    #: "not streaming (<receiver status>)", or the error.
    postgres: str
    replay_lag_seconds: float | None
    replay_lag_bytes: int | None
    #: slapd's contextCSN the same on the standby and the fallback (None: unknown).
    ldap_in_step: bool | None
    ldap: str
    #: The file copy's last run (epoch seconds on the standby's clock), its result, age.
    files_at: int | None
    files_ok: bool | None
    files_age_seconds: int | None
    files: str
    reachable: bool = True
    #: Units active here that only the serving host may run (:data:`SERVING_UNITS`).
    running: tuple[str, ...] = ()

    def problems(self, max_lag_seconds: float) -> list[str]:
        """What is wrong, for a person (empty: in step)."""
        found = []
        if not self.reachable:
            return [self.postgres]
        if not self.streaming:
            found.append(f"PostgreSQL {self.postgres}")
        if self.replay_lag_seconds is not None and self.replay_lag_seconds > max_lag_seconds:
            found.append(f"replay lag {self.replay_lag_seconds:.1f} s > {max_lag_seconds:g} s")
        if self.ldap_in_step is False:
            found.append(f"slapd {self.ldap}")
        if self.files_ok is not True or (self.files_age_seconds or 0) > FILES_MAX_AGE_SECONDS:
            found.append(f"files {self.files}")
        if self.running:
            found.append(f"runs {', '.join(self.running)}, which only the serving host may "
                         f"('planb deploy --limit {self.host}' stops them)")
        return found

    def summary(self) -> str:
        """One line: the lag and each part's state."""
        lag = ("lag ?" if self.replay_lag_seconds is None else
               f"lag {self.replay_lag_seconds:.1f} s / {self.replay_lag_bytes or 0} bytes")
        return (f"{self.host}: PostgreSQL {self.postgres}, {lag}; slapd {self.ldap}; "
                f"files {self.files}")

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "reachable": self.reachable, "streaming": self.streaming,
                "postgres": self.postgres, "replay_lag_seconds": self.replay_lag_seconds,
                "replay_lag_bytes": self.replay_lag_bytes, "ldap_in_step": self.ldap_in_step,
                "ldap": self.ldap, "files_at": self.files_at, "files_ok": self.files_ok,
                "files_age_seconds": self.files_age_seconds, "files": self.files,
                "running": list(self.running)}


@dataclass(frozen=True)
class ReplicationState:
    """The site's standbys (none: the site has no hot standby) and the fallback read."""

    primary: str | None
    standbys: tuple[StandbyReplication, ...] = ()
    #: Why the fallback's side could not be read ("" when it was).
    primary_error: str = ""
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        return {"primary": self.primary, "primary_error": self.primary_error or None,
                "standbys": [s.as_dict() for s in self.standbys]}


def _fields(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[a-z]+", key):
            found.setdefault(key, []).append(value.strip())
    return found


def slot_name(host: str) -> str:
    """The standby's replication slot and application_name (postgresql role)."""
    return "planb_" + re.sub(r"[^a-z0-9_]", "_", host.lower())


def assess(host: str, standby_text: str, primary_text: str | None,
           primary_error: str = "") -> StandbyReplication:
    """One standby's state from the two probes' answers (pure; ``primary_text`` None
    when the fallback could not be read)."""
    got = _fields(standby_text)
    pg = (got.get("pg") or [""])[0].split("|")
    streaming, lag_s, lag_b = False, None, None
    if len(pg) == 5 and pg[0] in ("t", "f"):
        in_recovery, receiver = pg[0] == "t", pg[1]
        lag_b, lag_s = int(float(pg[2] or 0)), round(float(pg[3] or 0), 1)
        if not in_recovery:
            postgres = "not a standby (promoted?)"
        elif pg[4] == "t":
            postgres = "replay paused"
            streaming = receiver == "streaming"
        elif receiver != "streaming":
            postgres = f"not streaming ({receiver or 'no WAL receiver'})"
        else:
            postgres, streaming = "streaming", True
    else:
        postgres = "unreadable: " + ((got.get("pg") or ["no answer"])[0][:200] or "no answer")
    standby_csn = sorted(got.get("csn", []))
    if primary_text is not None:
        prim = _fields(primary_text)
        for row in prim.get("rep", []):
            cols = row.split("|")
            if len(cols) == 4 and cols[0] == slot_name(host):
                lag_s = max(lag_s or 0.0, round(float(cols[2] or 0), 1))
                if int(float(cols[3])) >= 0:
                    lag_b = max(lag_b or 0, int(float(cols[3])))
                break
        else:
            if streaming:
                postgres = "streaming (not seen by the fallback)"
        primary_csn = sorted(prim.get("csn", []))
        if not primary_csn:
            in_step, ldap = None, "contextCSN not read on the fallback"
        elif standby_csn == primary_csn:
            in_step, ldap = True, "in step (contextCSN equal)"
        else:
            in_step, ldap = False, (f"not in step: contextCSN {' '.join(standby_csn) or 'none'} "
                                    f"here, {' '.join(primary_csn)} on the fallback")
    else:
        in_step = None
        ldap = f"fallback unreadable ({primary_error})" if primary_error else "fallback unread"
    files_at = files_age = None
    files_ok: bool | None = None
    now = int((got.get("now") or ["0"])[0] or 0)
    raw = (got.get("files") or [""])[0]
    try:
        status = json.loads(raw)
        files_at, files_ok = int(status["at"]), bool(status["ok"])
        files_age = max(0, now - files_at) if now else None
        files = (f"copied {files_age} s ago" if files_ok else
                 f"last copy failed: {status.get('error') or 'no message'}")
    except (ValueError, KeyError, TypeError):
        files = "never copied" if not raw else "status unreadable"
    if files_ok and (files_age or 0) > FILES_MAX_AGE_SECONDS:
        files = f"last copy {files_age} s ago (late: over {FILES_MAX_AGE_SECONDS} s)"
    running = tuple(sorted(u for u in " ".join(got.get("running", [])).split()
                           if re.fullmatch(r"[A-Za-z0-9@._-]+[.]service", u)))
    return StandbyReplication(host, streaming, postgres, lag_s, lag_b, in_step, ldap,
                              files_at, files_ok, files_age, files, running=running)


def _ssh(host: InventoryHost, command: str) -> str:
    target = host.ssh
    proc = run_command(["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                        *target.ssh_args(), target.destination, command], check=False,
                       timeout=SSH_TIMEOUT, error=ReplicationError,
                       what=f"reading the replication on {host.name}")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise ReplicationError(f"cannot read {host.name} over SSH: {last}")
    return proc.stdout


def standby_hosts(hosts: list[InventoryHost]) -> list[InventoryHost]:
    return [h for h in hosts if FALLBACK_STANDBY in h.groups]


def replication_state(site: SiteConfig, hosts: list[InventoryHost] | None = None,
                      only: str | None = None) -> ReplicationState:
    """Each standby's replication (``only``: that standby), read now over SSH."""
    inventory = hosts if hosts is not None else load_hosts(site)
    standbys = [h for h in standby_hosts(inventory) if only is None or h.name == only]
    primary = next((h for h in inventory if FALLBACK_MESSAGING in h.groups
                    and FALLBACK_STANDBY not in h.groups), None)
    if not standbys:
        return ReplicationState(primary.name if primary else None)
    suffix = site.fallback.ldap_suffix
    primary_text: str | None = None
    primary_error = ""
    if primary is None:
        primary_error = f"no {FALLBACK_MESSAGING} host in the inventory"
    else:
        try:
            primary_text = _ssh(primary, primary_probe(suffix,
                                                       FALLBACK_DIRECTORY in primary.groups))
        except ReplicationError as exc:
            primary_error = str(exc)
    found = []
    for host in standbys:
        try:
            text = _ssh(host, standby_probe(suffix))
        except ReplicationError as exc:
            found.append(StandbyReplication(host.name, False, str(exc), None, None, None,
                                            "unread", None, None, None, "unread",
                                            reachable=False))
            continue
        found.append(assess(host.name, text, primary_text, primary_error))
    return ReplicationState(primary.name if primary else None, tuple(found), primary_error)
