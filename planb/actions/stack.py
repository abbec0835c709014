"""Actions that look at the deployed fallback: ``verify.checks`` and ``probes.run``.

- ``verify.checks`` runs :func:`planb.verify.run_checks` (by default the checks that
  matter for a failover, :data:`planb.verify.FAILOVER_CHECKS`); it holds when the
  report is ok, and its output ends with the failing checks. With ``heal`` (the
  failover preflight) it first starts a stopped or failed unit once
  (:mod:`planb.actions.heal`) and says so.
- ``probes.run`` draws a sample (:mod:`planb.actions.sampling`), binds each account to
  the fallback LDAP over LDAPS, then has them all log in to Matrix through nginx over
  TLS, send and receive a message (:func:`planb.verify.run_probes`), fetches the welcome
  page and the client's start page on every proxy (they must state the recorded mode,
  :mod:`planb.actions.pages`), and (when the
  fallback is active and the sample is lab agents) see the current incident's
  announcement (:mod:`planb.verify.announcement_probe`); otherwise the output says why
  the announcement was not checked, never that it passed. Logins appear in the journal
  only as pseudonyms.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import ldap3
from ldap3.core.exceptions import LDAPException

from planb.actions import sampling
from planb.actions.breakglass import breakglass_hosts, breakglass_key, host_state
from planb.actions.failover_steps import ChecksArgs
from planb.actions.heal import Healer
from planb.actions.pages import page_probes, see_pages
from planb.config import SiteConfig
from planb.directory.fallback_endpoint import fallback_endpoint
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult, ProbeResult
from planb.errors import PlanbError
from planb.inventory import load_hosts
from planb.messaging.sync_target import ANNOUNCEMENT_ROOM
from planb.mode import StateFile
from planb.polling import poll_until
from planb.verify import FAILOVER_CHECKS, run_checks, run_probes
from planb.verify.announcement_probe import check_announcement
from planb.verify.public_pages import summary as pages_summary

log = logging.getLogger(__name__)

CHECK_RETRY_SECONDS = 2.0
LDAP_TIMEOUT = 10


@dataclass(frozen=True)
class ProbeArgs:
    """``probes.run``: how many agents, which seed (None: from the run), which accounts."""

    sample: int = 20
    seed: int | None = None
    announcement: bool = True
    #: Also fetch the welcome page and the client's start page (they must say the mode).
    pages: bool = True
    #: auto: lab agents when they can be used, else the probe accounts (see sampling).
    source: Literal["auto", "lab-agents", "probe-accounts"] = "auto"
    #: Where the mode and incident the pages and announcement must show come from: the
    #: controller's record, or the fallback host itself through planb-breakglass (a
    #: break-glass activation leaves the controller's record untouched).
    mode_from: Literal["controller", "breakglass"] = "controller"

    def __post_init__(self) -> None:
        if self.sample < 2:
            raise ValueError("sample must be at least 2 (agents message each other)")


def verify_checks(ctx: ActionContext, args: ChecksArgs) -> ActionResult:
    """The verify checks, re-run until they pass or ``wait_seconds`` are over."""

    names = list(args.checks) or list(FAILOVER_CHECKS)
    hosts = load_hosts(ctx.site)
    with Healer(hosts, enabled=args.heal) as healer:
        polled = poll_until(
            lambda _left: healer.checked(lambda: run_checks(ctx.site, names, hosts=hosts)),
            lambda report: report.ok, interval=CHECK_RETRY_SECONDS,
            timeout=min(args.wait_seconds, ctx.remaining(0) - 1))
    report, attempts = polled.value, polled.attempts
    lines = [f"checks {', '.join(names)}: {report.summary()}"
             + (f" (attempt {attempts})" if attempts > 1 else "")]
    lines += ["; ".join(healer.done)] if healer.done else []  # one line: the CLI's table
    lines += [f"{r.status.upper()} {r.name} on {r.host}: {r.message}" for r in report.problems]
    if report.problems:
        lines.append("failing: " + "; ".join(f"{r.name} on {r.host} ({r.status})"
                                              for r in report.problems))
    return ActionResult(report.ok, "\n".join(lines))


# -- probes ---------------------------------------------------------------------------

#: The active agents read for one run (drill or incident id), so rounds reuse them.
_population: dict[tuple[str, str], dict[str, str]] = {}


def _population_for(site: SiteConfig, run_id: str | None) -> dict[str, str] | None:
    if run_id is None:
        return None
    key = (str(site.state_dir), run_id)
    if key not in _population:
        _population.clear()
        _population[key] = sampling.active_agents(site)
    return _population[key]


def _sample(ctx: ActionContext, args: ProbeArgs, seed: int) -> sampling.Sample:
    population = None
    wants_agents = args.source == "lab-agents" or (
        args.source == "auto" and ctx.site.lab is not None
        and sampling.lab_secret(ctx.site) is not None and sampling.matrix_provisioned(ctx.site))
    if wants_agents:
        population = _population_for(ctx.site, ctx.run_id)
    return sampling.choose(ctx.site, args.sample, seed, source=args.source,
                           population=population)


def _find_dn(site: SiteConfig, login: str) -> str:
    """The DN of ``login`` in the fallback LDAP (probe accounts), read as the sync account."""
    from ldap3.utils.conv import escape_filter_chars


    conn = fallback_endpoint(site).connect(read_only=True)
    try:
        conn.search(f"ou=people,{site.fallback.ldap_suffix}",
                    f"(uid={escape_filter_chars(login)})", attributes=[])
        entries = [e["dn"] for e in conn.response or () if e.get("type") == "searchResEntry"]
    finally:
        conn.unbind()
    if len(entries) != 1:
        raise PlanbError(f"{len(entries)} entries in the fallback LDAP for a probe account")
    return entries[0]


def _ldap_bind(site: SiteConfig, account: sampling.Account) -> tuple[bool, float, str]:
    """Bind as the account to the fallback LDAP over verified LDAPS."""

    start = time.monotonic()
    try:
        dn = account.dn or _find_dn(site, account.login)
        server = fallback_endpoint(site).server()
        conn = ldap3.Connection(server, user=dn, password=account.password,
                                receive_timeout=LDAP_TIMEOUT, raise_exceptions=False)
        try:
            ok = bool(conn.bind())
            detail = "bound" if ok else f"bind refused: {conn.result.get('description')}"
        finally:
            conn.unbind()
    except (LDAPException, PlanbError, OSError) as exc:
        ok, detail = False, f"cannot bind: {str(exc).split(' - ')[0][:200]}"
    return ok, time.monotonic() - start, detail


#: Agents per probe room (the default sample is one ring). A ring's messages all arrive
#: before the receivers' next sync: the probes' sync filter asks for a timeline longer
#: than the ring (Synapse's default of 10 events lost the first messages of bigger rings).
RING_SIZE = 20


def rings(accounts: tuple[sampling.Account, ...], size: int = RING_SIZE
          ) -> list[tuple[sampling.Account, ...]]:
    """Split accounts into near-equal rings of at most ``size`` (each at least 2)."""
    count = -(-len(accounts) // size)
    if count > 1 and len(accounts) // count < 2:
        count = len(accounts) // 2
    count = max(1, count)
    return [accounts[i::count] for i in range(count)]


def probes_run(ctx: ActionContext, args: ProbeArgs) -> ActionResult:
    """Sampled accounts bind to the fallback LDAP, then log in, send and receive on Matrix."""

    seed = sampling.seed_for(ctx.run_id, args.seed)
    sample = _sample(ctx, args, seed)
    key = sampling.pseudonym_key(ctx.site.state_dir)
    names = {a.login: sampling.pseudonym(key, a.login) for a in sample.accounts}

    def hide(text: str) -> str:
        for login, alias in sorted(names.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(login, alias)
        return text

    # LDAP binds, the message rings and the announcement check are independent: they run
    # side by side (the verify round, and so the RTO, is as long as the slowest).
    groups = rings(sample.accounts)
    timeout = max(5.0, ctx.remaining() - 2)
    mode, incident_id = _expected(ctx, args)
    with ThreadPoolExecutor(max_workers=len(groups) + 2) as pool:
        seen_job = (pool.submit(_announcement, ctx, sample, names, mode, incident_id)
                    if args.announcement else None)
        pages_job = (pool.submit(see_pages, ctx.site, mode, wait_seconds=0)
                     if args.pages else None)
        ring_jobs = [pool.submit(run_probes, ctx.site, [(a.login, a.password) for a in g],
                                 timeout=timeout) for g in groups]
        with ThreadPoolExecutor(max_workers=min(16, len(sample.accounts))) as binders:
            binds = list(binders.map(lambda a: _ldap_bind(ctx.site, a), sample.accounts))
        results = [r for job in ring_jobs for r in job.result()]
        announced = seen_job.result() if seen_job is not None else None
        pages = pages_job.result() if pages_job is not None else None
    probes: list[ProbeResult] = []
    for account, (ok, seconds, detail) in zip(sample.accounts, binds, strict=True):
        probes.append(ProbeResult("ldap.bind", ok, seconds, hide(detail), names[account.login]))
    for r in results:
        probes.append(ProbeResult("matrix.exchange", r.ok, r.total_seconds,
                                  hide(r.detail), names[r.login]))
    lines = [f"accounts: {sample.source} ({sample.why})",
             "seed: " + (str(sample.seed) if sample.seed is not None else "none (fixed accounts)"),
             "sampled (pseudonymised): " + ", ".join(names[a.login] for a in sample.accounts)]
    throttled = sum(1 for r in results if "429" in r.detail or "M_LIMIT_EXCEEDED" in r.detail)
    logins = [r.login_seconds for r in results if r.login_seconds is not None]
    lines.append(f"{sum(r.ok for r in results)}/{len(results)} logged in, sent and received "
                 f"through nginx in {len(groups)} room(s) ({len(results)} logins at once from "
                 "one address, "
                 f"{throttled} rate-limited" + (f", slowest login {max(logins):.2f} s"
                                                if logins else "") + ")")
    lines.append(f"{sum(ok for ok, _, _ in binds)}/{len(binds)} bound to the fallback LDAP")
    if pages is not None:
        lines.append(pages_summary(pages))
        probes.extend(page_probes(pages))
    if announced is not None:
        line, seen = announced
        lines.append(line)
        probes.extend(ProbeResult(p.name, p.ok, p.duration_seconds, hide(p.detail), p.subject)
                      for p in seen)
    failed = [p for p in probes if not p.ok]
    if failed:
        lines.append(f"failing: {failed[0].name} for {failed[0].subject}: {failed[0].detail}")
    return ActionResult(not failed, "\n".join(lines), tuple(probes))


def _expected(ctx: ActionContext, args: ProbeArgs) -> tuple[str, str | None]:
    """The mode and incident id the fallback should show: the controller's record, or
    what planb-breakglass on the (first) fallback messaging host says."""
    if args.mode_from == "controller":
        state = StateFile(ctx.site.state_dir).load()
        return state.mode, state.incident_id
    hosts = breakglass_hosts(ctx.site)
    if not hosts:
        raise PlanbError("mode_from: breakglass needs a fallback messaging host")
    said = host_state(ctx.site, hosts[0], breakglass_key(), timeout=min(30, ctx.remaining()))
    return said.mode, said.incident_id


def _announcement(ctx: ActionContext, sample: sampling.Sample, names: dict[str, str],
                  mode: str, incident_id: str | None) -> tuple[str, list[ProbeResult]]:
    """The announcement sub-check: each sampled agent sees this incident's announcement."""
    if sample.source != "lab-agents":
        return ("announcement: not checked - probe accounts are not agents, so they are not "
                "in the announcement room"), []
    if mode != "active" or not incident_id:
        return "announcement: not checked - the fallback is not active", []
    room = ANNOUNCEMENT_ROOM
    seen = check_announcement(ctx.site, [(a.login, a.password) for a in sample.accounts],
                              incident_id, room=room,
                              timeout=max(5.0, ctx.remaining() - 2))
    probes = [ProbeResult("matrix.announcement", s.ok, s.seconds, s.detail, names[s.login])
              for s in seen]
    return (f"announcement of incident {incident_id}: seen by "
            f"{sum(s.ok for s in seen)}/{len(seen)} sampled agents in #{room}"), probes


def register_stack_actions(registry: ActionRegistry) -> None:
    """Register ``verify.checks`` and ``probes.run`` (they work on any deployed site)."""
    registry.action("verify.checks", summary="the 'planb verify' checks that matter (services, "
                    "TLS, LDAP, Matrix), retried while wait_seconds allows", args=ChecksArgs,
                    timeout=120)(verify_checks)
    registry.action("probes.run", summary="a sample of agents bind to LDAP, log in to Matrix "
                    "through nginx, send and receive (and see the announcement)",
                    args=ProbeArgs, timeout=120)(probes_run)
