"""``planb failover promote``: the hot standby serves in place of a lost fallback host
(what runs on the hosts: :mod:`planb.ha.steps`).

The steps, in order (each recorded as a :class:`~planb.engine.records.StepRecord`):

1. **check**: the old primary (the ``fallback_messaging`` host that is not the standby)
   must not answer on SSH, PostgreSQL or HTTPS: a host that answers may still write,
   and two writers are a split brain. The standby's replay lag (read over SSH from
   its PostgreSQL) must be within ``objectives.rpo_seconds``: what is not replayed yet
   is lost. Either refuses the promotion (audit line ``refused``, nothing changed)
   unless ``force``; a forced promotion records what it overrode and the lag accepted.
2. **fence** (forced while the old primary still answers SSH): its keepalived,
   Synapse, nginx, coturn and PostgreSQL are stopped, best effort.
3. **promote-postgresql**: ``pg_promote()`` on the standby (already a primary: nothing
   to do). This is the commit point: from here the standby is the writer, and the
   promotion is recorded whatever the later steps do.
4. **record**: :func:`planb.inventory.record_promotion` writes the site's inventory
   file ``planb-promotion.yml``: the standby takes the lost host's fallback groups, the
   lost host goes to ``fallback_lost`` (later commands and playbooks leave it out).
5. **start-services**: the recorded mode (``state.json``: active or standby) written
   to ``/etc/planb/mode``; the configuration copied from the lost host (Synapse's,
   nginx's, coturn's) pointed at the standby's own address where it named the lost
   host's (Synapse's directory: the standby's slapd holds the same entries, syncrepl;
   coturn's listening address); then Synapse (and its workers,
   if any), nginx and coturn enabled and started, and Synapse's ``/health`` awaited.
6. **service-address**: when ``fallback.standby.service_address`` is set, wait until
   the standby holds it (keepalived's track script lets only the serving writer hold
   it: PostgreSQL not in recovery, Synapse active).

Every request and step goes to the audit log (event ``promote``); every promotion that
got past the check to a signed journal of kind ``promotion``.
"""

from __future__ import annotations

import logging
import shlex
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from planb.commands import run_command
from planb.config import SiteConfig
from planb.engine.records import StepRecord, StepStatus, resolve_operator
from planb.errors import PlanbError, UsageError
from planb.ha.steps import (
    LAG_SQL,
    POSTGRESQL_PORT,
    PSQL,
    Lag,
    address_script,
    fence_script,
    parse_lag,
    promote_script,
    services_script,
)
from planb.inventory import (
    FALLBACK_LOST,
    FALLBACK_MESSAGING,
    FALLBACK_PROMOTED,
    FALLBACK_STANDBY,
    InventoryHost,
    load_hosts,
    record_promotion,
)
from planb.mode import AuditEntry, AuditLog, StateFile
from planb.reports.journal import StoredJournal
from planb.reports.store import JournalStore, utc_now

log = logging.getLogger(__name__)

JOURNAL_KIND = "promotion"
PAYLOAD_FORMAT = "planb-promotion/1"
EVENT = "promote"
PROBE_TIMEOUT = 2.0
SSH_TIMEOUT = 120.0


def lag_beyond(lag: Lag, rpo_seconds: int) -> bool:
    """Whether promoting now loses more than the objective allows (unknown lag: yes)."""
    return lag.in_recovery and (lag.seconds is None or lag.seconds > rpo_seconds)


def refusals(old: InventoryHost, answering: Sequence[str], lag: Lag, rpo_seconds: int
             ) -> list[str]:
    """Why promoting now would be wrong (empty: go); ``force`` overrides each."""
    found = []
    if answering:
        found.append(f"the old primary {old.name} ({old.address}) still answers on "
                     f"{', '.join(answering)}: it may still write, and promoting the "
                     "standby too would make two writers (split brain)")
    if lag_beyond(lag, rpo_seconds):
        found.append(f"the standby's {lag.describe()}, beyond objectives.rpo_seconds "
                     f"({rpo_seconds} s): promoting now loses what is not replayed")
    return found


def answering(host: InventoryHost, timeout: float = PROBE_TIMEOUT) -> list[str]:
    """The services of ``host`` that accept a TCP connection now (``ssh:22`` ...)."""
    ssh_port = int(host.hostvars.get("ansible_port") or 22)
    ports = (("ssh", ssh_port), ("postgresql", POSTGRESQL_PORT), ("https", 443))

    def answers(port: int) -> bool:
        try:
            with socket.create_connection((host.address, port), timeout=timeout):
                return True
        except OSError:
            return False

    # At once: a host that is down makes each attempt wait its whole timeout.
    with ThreadPoolExecutor(len(ports)) as pool:
        up = list(pool.map(answers, (port for _, port in ports)))
    return [f"{name}:{port}" for (name, port), ok in zip(ports, up, strict=True) if ok]


def ssh(host: InventoryHost, script: str, *, timeout: float = SSH_TIMEOUT
        ) -> tuple[int, str, str]:
    """Run ``script`` with sh on ``host`` over SSH (the site's known_hosts only)."""
    target = host.ssh
    proc = run_command(["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                        *target.ssh_args(), target.destination, "sh -s"],
                       check=False, timeout=timeout, input_text="cd /\n" + script,
                       what=f"on {host.name} over SSH")
    return proc.returncode, proc.stdout, proc.stderr


def read_lag(standby: InventoryHost) -> Lag:
    """The standby's replay lag, read over SSH from its PostgreSQL."""
    code, out, err = ssh(standby, f"{PSQL} -c {shlex.quote(LAG_SQL)}\n", timeout=30)
    if code != 0:
        raise PlanbError(f"cannot read the replay lag on {standby.name}: "
                         f"{(err.strip().splitlines() or [f'exit {code}'])[-1]}")
    return parse_lag(out)


def address_holders(site: SiteConfig, address: str,
                    hosts: Sequence[InventoryHost] | None = None) -> dict[str, bool | None]:
    """For each fallback or standby host (lost ones included): whether it holds
    ``address`` now (None: it cannot be reached)."""
    found: dict[str, bool | None] = {}
    for host in (load_hosts(site) if hosts is None else hosts):
        if not (host.is_fallback or {FALLBACK_STANDBY, FALLBACK_LOST} & set(host.groups)):
            continue
        try:
            code, out, _ = ssh(host, "ip -o -4 addr show\n", timeout=20)
        except PlanbError:
            code, out = 255, ""
        found[host.name] = None if code != 0 else f" {address}/" in out
    return found


@dataclass(frozen=True)
class Plan:
    """Who is promoted in place of whom, and what the check found."""

    lost: InventoryHost
    standby: InventoryHost
    answering: tuple[str, ...]
    lag: Lag
    refusals: tuple[str, ...]


@dataclass(frozen=True)
class Promotion:
    """What a promote request did."""

    changed: bool
    message: str
    plan: Plan | None = None
    steps: tuple[StepRecord, ...] = ()
    forced: tuple[str, ...] = ()
    journal: StoredJournal | None = None
    duration_seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        plan = self.plan
        return {"changed": self.changed, "message": self.message,
                "lost": plan.lost.name if plan else None,
                "promoted": plan.standby.name if plan else None,
                "lag": plan.lag.as_json() if plan else None, "forced": list(self.forced),
                "steps": [s.as_json() for s in self.steps],
                "duration_seconds": round(self.duration_seconds, 3),
                "journal": str(self.journal.path) if self.journal else None}


def promoted_already(hosts: Sequence[InventoryHost]) -> InventoryHost | None:
    """The host a recorded promotion made the fallback (None: no promotion recorded)."""
    return next((h for h in hosts if FALLBACK_PROMOTED in h.groups), None)


def plan(site: SiteConfig, hosts: Sequence[InventoryHost] | None = None) -> Plan:
    """Read the inventory, probe the old primary and the standby's lag (changes nothing)."""
    hosts = list(load_hosts(site) if hosts is None else hosts)
    standbys = [h for h in hosts if FALLBACK_STANDBY in h.groups]
    if not standbys:
        raise UsageError("the site has no standby host (inventory group fallback_standby)",
                         hint="a hot standby is set up by the inventory and 'planb deploy' "
                              "(README: Hot standby)")
    standby = standbys[0]
    old = [h for h in hosts if FALLBACK_MESSAGING in h.groups and h.name != standby.name]
    if not old:
        raise UsageError(f"no fallback_messaging host besides {standby.name} to take over "
                         "from")
    up = tuple(answering(old[0]))
    lag = read_lag(standby)
    return Plan(old[0], standby, up, lag,
                tuple(refusals(old[0], up, lag, site.objectives.rpo_seconds)))


class Promoter:
    """The promotion of one site's standby, recorded in its audit log and journals."""

    def __init__(self, site: SiteConfig, store: JournalStore, *,
                 planner: Callable[[SiteConfig, Sequence[InventoryHost]], Plan] = plan
                 ) -> None:
        self.site = site
        self.store = store
        self.planner = planner
        self.state_file = StateFile(site.state_dir)
        self.audit = AuditLog(site.state_dir, signer=store.signer)

    def promote(self, reason: str, *, operator: str | None = None, force: bool = False,
                drill: bool = False) -> Promotion:
        """Check, then promote (see the module docstring). Refused: PlanbError (exit 1)."""
        if not reason.strip():
            raise UsageError("give a reason: it goes to the audit log and the journal")
        if self.store.signer is None:
            raise UsageError("promotion needs the site's signing key to journal it",
                             hint="create it with 'planb keys init'")
        who = resolve_operator(operator)
        with self.state_file.locked():
            audit = _Auditor(self.audit, who, reason)
            audit("requested", detail="forced" if force else "")
            hosts = load_hosts(self.site)
            done = promoted_already(hosts)
            if done is not None:
                message = f"{done.name} was already promoted: nothing changed"
                audit("unchanged", detail=message)
                return Promotion(False, message)
            checked_at, check_start = utc_now(), time.monotonic()
            try:
                found = self.planner(self.site, hosts)
            except PlanbError as exc:
                audit("refused", detail=exc.message)
                raise
            if not found.lag.in_recovery:
                audit("refused", detail=f"{found.standby.name}: {found.lag.describe()}")
                raise PlanbError(f"{found.standby.name} is not a standby: "
                                 f"{found.lag.describe()}", hint="nothing was changed")
            if found.refusals and not force:
                audit("refused", detail="; ".join(found.refusals))
                raise PlanbError("promotion refused: " + "; ".join(found.refusals),
                                 hint="nothing was changed; --force overrides this (recorded "
                                      "in the audit log and the journal)")
            return self._run(found, audit, reason, who, force, drill,
                             (checked_at, check_start))

    def _run(self, found: Plan, audit: _Auditor, reason: str, who: str, force: bool,
             drill: bool, checked: tuple[str, float]) -> Promotion:
        """The steps after the check (``checked``: when it started, wall and monotonic)."""
        started, start = checked
        mode = self.state_file.load().mode
        forced = found.refusals if force else ()
        steps: list[StepRecord] = [_record("check", "ok", started, time.monotonic() - start,
                                           "\n".join(
            [f"old primary {found.lost.name}: " + (", ".join(found.answering) or
                                                   "does not answer"),
             f"standby {found.standby.name}: {found.lag.describe()}",
             *(f"forced: {f}" for f in forced)]))]
        audit("ok", step="check", detail=steps[0].output)
        plan_steps: list[tuple[str, InventoryHost, str, bool]] = []
        if force and any(a.startswith("ssh:") for a in found.answering):
            plan_steps.append(("fence", found.lost, fence_script(), False))
        plan_steps += [("promote-postgresql", found.standby, promote_script(), True),
                       ("start-services", found.standby,
                        services_script(mode, found.lost.address, found.standby.address),
                        True)]
        address = self.site.fallback.standby.service_address
        if address:
            plan_steps.append(("service-address", found.standby, address_script(address),
                               True))
        recorded = ""
        for name, host, script, critical in plan_steps:
            step = self._ssh_step(name, host, script)
            steps.append(step)
            audit(step.status, step=name, detail=step.error or _last(step.output))
            if name == "promote-postgresql" and step.ok:
                recorded = str(record_promotion(self.site, found.lost, found.standby,
                                                at=utc_now(), why=reason))
                steps.append(_record("record", "ok", utc_now(), 0.0,
                                     f"{recorded}: {found.standby.name} serves in place of "
                                     f"{found.lost.name}"))
                audit("ok", step="record", detail=recorded)
            if critical and not step.ok:
                break
        result = "completed" if all(s.ok or s.name == "fence" for s in steps) else "failed"
        duration = time.monotonic() - start
        journal = self.store.append(JOURNAL_KIND, {
            "format": PAYLOAD_FORMAT, "event": EVENT, "result": result, "reason": reason,
            "operator": who, "site": self.site.site, "drill": drill,
            "lost": {"name": found.lost.name, "address": found.lost.address},
            "promoted": {"name": found.standby.name, "address": found.standby.address},
            "old_primary_answering": list(found.answering), "lag": found.lag.as_json(),
            "rpo_objective_seconds": self.site.objectives.rpo_seconds,
            "lag_accepted": found.lag.as_json() if force and lag_beyond(
                found.lag, self.site.objectives.rpo_seconds) else None,
            "forced": list(forced), "mode": mode, "service_address": address,
            "inventory_record": recorded or None,
            "started_at": started, "ended_at": utc_now(), "duration_seconds": round(duration, 3),
            "steps": [s.as_json() for s in steps]})
        audit(result, detail=f"journal {journal.path.name}")
        if result == "failed":
            failed = next(s for s in steps if not s.ok and s.name != "fence")
            where = (f"{found.standby.name} is the writer now (recorded in {recorded})"
                     if recorded else "nothing was promoted")
            raise PlanbError(f"promotion stopped at {failed.name}: {failed.error}; {where}",
                             hint=f"journal {journal.path.name}; see {self.audit.path}")
        return Promotion(True, f"{found.standby.name} promoted in place of {found.lost.name} "
                         f"in {duration:.1f} s (mode {mode})", found, tuple(steps), forced,
                         journal, duration)

    def _ssh_step(self, name: str, host: InventoryHost, script: str) -> StepRecord:
        started, start = utc_now(), time.monotonic()
        log.info("promote: %s on %s", name, host.name)
        try:
            code, out, err = ssh(host, script)
        except PlanbError as exc:
            return _record(name, "error", started, time.monotonic() - start, "",
                           f"{host.name}: {exc.message}")
        error = None if code == 0 else (
            f"{host.name}: " + (err.strip().splitlines() or [f"exit {code}"])[-1])
        return _record(name, "ok" if code == 0 else "failed", started,
                       time.monotonic() - start, f"{host.name}: {out.strip()}", error)


def _record(name: str, status: StepStatus, started: str, seconds: float, output: str,
            error: str | None = None) -> StepRecord:
    return StepRecord(name, f"promote.{name}", status, started, utc_now(), seconds, output,
                      error)


def _last(text: str) -> str:
    return (text.strip().splitlines() or [""])[-1][:300]


@dataclass
class _Auditor:
    """Audit entries of one promote request."""

    log: AuditLog
    who: str
    why: str
    entries: list[str] = field(default_factory=list)

    def __call__(self, result: str, *, step: str | None = None, detail: str = "") -> None:
        self.log.append(AuditEntry(at=utc_now(), who=self.who, why=self.why, event=EVENT,
                                   result=result, step=step, detail=detail[:500]))
        self.entries.append(result)
