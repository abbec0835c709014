"""``planb failover status | activate | deactivate``: switch the fallback on and off."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from planb.cli.context import console, err_console, options, print_json
from planb.config import SiteConfig
from planb.errors import UsageError

# The failover machine and its actions pull in testinfra, matrix-nio and ldap3: imported
# where a command runs, so 'planb --help' stays quick.
if TYPE_CHECKING:
    from planb.backup.fresh import Freshness
    from planb.failover.machine import Failover, Transition
    from planb.ha.replication import ReplicationState

app = typer.Typer(
    no_args_is_help=True,
    help="Switch the fallback from standby to active during an incident, and back; "
         "promote the hot standby when the fallback host is lost.\n\n"
         "Nothing here contacts the main (primary) system: activation works while it is "
         "down. Every request and step goes to <state_dir>/failover/audit.log, and every "
         "transition to a signed journal.",
)

_STATUS = {"ok": "green", "forced": "yellow", "failed": "bold red", "error": "bold magenta",
           "unavailable": "yellow"}


def _failover(site: SiteConfig, *, signing: bool = True) -> Failover:
    from planb.cli.wiring import default_registry, site_store
    from planb.failover.machine import Failover

    store = site_store(site, signing=signing)
    return Failover(site, default_registry(site, store), store)


@app.command("status")
def status(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
    recent: Annotated[int, typer.Option("--recent", min=0, metavar="N",
                                        help="How many audit entries to show.")] = 10,
) -> None:
    """Show whether the fallback is in standby or active, since when and why, whether the
    account sync is frozen, each fallback host's backups when backup.enabled (newest
    archive, its age, ok / late / failed / unreachable), each hot standby's replication
    when the inventory has one (PostgreSQL streaming and its replay lag, slapd in step,
    Synapse's files copied), and the latest audit entries (and whether the audit log
    was altered: its lines are chained and its head signed).

    Also fetches what was done on each fallback messaging host without the controller
    (the break-glass command's journals and audit lines) into
    <state dir>/journals/hosts/<host>/, shows it, and checks each host's chain with its
    own key (keys/hosts/<host>.pub); 'planb report verify' checks them too."""
    from planb.cli.host_records import host_records, host_records_json, print_host_records
    from planb.cli.report_trust import print_audit, site_audit

    site = options(ctx).load_site()
    current = _failover(site, signing=False).status(recent)
    audit = site_audit(ctx, site)
    fetched, chains = host_records(site, recent, quiet=json_out)
    backups = _backups(site)
    replication = _replication(site)
    if json_out:
        print_json({"site": site.site, **current.state.as_json(),
                    "sync_frozen": current.sync_frozen,
                    "backups": None if backups is None else [b.as_dict() for b in backups],
                    "replication": None if replication is None else replication.as_dict(),
                    "recent": [vars(e) for e in current.recent],
                    "audit_log": {"ok": audit.ok, "entries": audit.entries,
                                  "problem": audit.problem},
                    "hosts": host_records_json(fetched, chains)})
        return
    state = current.state
    colour = "bold red" if state.mode == "active" else "green"
    console.print(f"fallback: [{colour}]{state.mode.upper()}[/]"
                  + (" (drill)" if state.drill else ""))
    if state.since:
        console.print(f"since: {state.since} by {escape(state.operator or '?')}: "
                      f"{escape(state.reason or '')}", highlight=False)
    if state.incident_id:
        console.print(f"incident: {state.incident_id}", highlight=False)
    console.print("account sync: " + ("[yellow]frozen[/]" if current.sync_frozen else "running"))
    for b in backups or ():
        console.print(f"backup of {escape(b.host)}: [{_BACKUP_COLOUR[b.state]}]{b.state}[/] "
                      f"{escape(b.detail)}", highlight=False)
    if replication is not None:
        _print_replication(replication, site.objectives.rpo_seconds)
    if current.recent:
        table = Table(title="latest audit entries", title_justify="left")
        for column in ("when", "who", "event", "step", "result", "detail"):
            table.add_column(column, overflow="fold")
        for e in current.recent:
            table.add_row(e.at, escape(e.who), e.event, e.step or "", e.result,
                          escape(e.detail[:120]))
        console.print(table)
    print_audit(audit)
    print_host_records(fetched, chains)


_BACKUP_COLOUR = {"ok": "green", "late": "bold red", "failed": "bold red",
                  "unreachable": "bold red", "none": "yellow"}


def _backups(site: SiteConfig) -> list[Freshness] | None:
    """Each fallback host's backups (newest archive, age, ok/late/failed); None when
    backups are off."""
    if not site.backup.enabled:
        return None
    from planb.backup.fresh import freshness
    from planb.errors import PlanbError

    with err_console.status("reading the backups…"):
        try:
            return freshness(site)
        except PlanbError as exc:  # no backup host in the inventory: say so, go on
            from planb.backup.fresh import Freshness

            return [Freshness("-", "failed", "", "", "", None, 0, str(exc))]


def _replication(site: SiteConfig) -> ReplicationState | None:
    """The hot standbys' replication, read now; None when the inventory has none."""
    from planb.errors import PlanbError
    from planb.ha.replication import ReplicationState, replication_state, standby_hosts
    from planb.inventory import load_hosts

    try:
        hosts = load_hosts(site)
    except PlanbError:
        return None
    if not standby_hosts(hosts):
        return None
    with err_console.status("reading the standby's replication…"):
        try:
            return replication_state(site, hosts)
        except PlanbError as exc:
            return ReplicationState(None, (), str(exc))


def _print_replication(replication: ReplicationState, max_lag: float) -> None:
    if replication.primary_error:
        console.print(f"replication: [yellow]fallback unread[/] "
                      f"{escape(replication.primary_error)}", highlight=False)
    for s in replication.standbys:
        problems = s.problems(max_lag)
        verdict = "[green]in step[/]" if not problems else "[bold red]behind[/]"
        console.print(f"standby {escape(s.host)}: {verdict} {escape(s.summary())}",
                      highlight=False)


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("confirmation needed and no terminal to ask on",
                         hint="add --yes to confirm on the command line")
    if not typer.confirm(question, default=False):
        raise UsageError("not confirmed: nothing was changed")


def _steps_table(done: Transition) -> Table:
    table = Table(title=f"{done.event} steps", title_justify="left")
    for column in ("step", "status", "time", "detail"):
        table.add_column(column, overflow="fold")
    for s in done.steps:
        detail = s.error or (s.output.strip().splitlines() or [""])[-1]
        if s.name == "instructions" and s.status == "ok":
            detail = "see below"
        table.add_row(s.name, f"[{_STATUS.get(s.status, 'white')}]{s.status}[/]",
                      f"{s.duration_seconds:.1f} s", escape(detail[:200]))
    return table


def _transition_json(done: Transition) -> dict[str, Any]:
    return {"event": done.event, "changed": done.changed, "message": done.message,
            "state": done.state.as_json(), "warnings": list(done.warnings),
            "steps": [s.as_json() for s in done.steps],
            "incident_duration_seconds": done.incident_duration_seconds,
            "journal": str(done.journal.path) if done.journal else None}


def _print_instructions(site: SiteConfig, done: Transition) -> None:
    text = done.output_of("instructions")
    console.print(Panel.fit(
        f"address: https://{site.matrix.public_hostname}/\n"
        f"server (if the app asks): {site.matrix.server_name}\n"
        "login: the agent's usual login and their fallback password",
        title="what to tell agents", border_style="bold"), highlight=False)
    if text:
        console.print(Panel(escape(text.strip()), title="announcement text (to read out or "
                            "print if it could not be posted)"), highlight=False)


@app.command("activate", epilog="Exit codes: 0 done (or already active), 1 a step failed "
             "(the fallback stays in standby), 2 not confirmed, 130 interrupted.")
def activate(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT",
                                        help="Why (goes to the audit log and journal).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Go on even if the preflight checks fail (recorded as forced).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    public_message: Annotated[str, typer.Option(
        "--public-message", metavar="TEXT",
        help="What the public welcome page (https://<public_hostname>/) tells agents while "
             "active. Public: no internal names or secrets.")] = "",
) -> None:
    """Switch the fallback to active: preflight checks, freeze the account sync, flip the
    switch (playbooks/failover.yml), post the announcement, and print what to tell agents.

    Does not touch the main system. Activating an active fallback changes nothing.
    """
    site = options(ctx).load_site()
    failover = _failover(site)
    standby = failover.status(0).state.mode == "standby"
    if standby:
        for line in failover.unavailable("activate"):
            err_console.print(f"[yellow]note:[/] {escape(line)}: this step will be reported "
                              "as not available", highlight=False)
        _confirm(f"Activate the fallback of site {site.site} for agents now?", yes)
    with _spinner("activating the fallback…", standby and not json_out), \
            _host_locks(site, failover, "activate", reason, standby):
        done = failover.activate(reason, force=force, public_message=public_message)
    if json_out:
        print_json(_transition_json(done))
        return
    console.print(done.message, highlight=False)
    if not done.changed:
        return
    console.print(_steps_table(done))
    for warning in done.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    _print_instructions(site, done)
    if done.journal:
        console.print(f"journal: {done.journal.path}", highlight=False)


@app.command("deactivate", epilog="Exit codes: 0 done (or already in standby), 1 the switch "
             "failed, 2 not confirmed, 130 interrupted.")
def deactivate(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT",
                                        help="Why (goes to the audit log and journal).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Put the fallback back in standby and unfreeze the account sync; the incident's
    duration is recorded."""
    site = options(ctx).load_site()
    failover = _failover(site)
    active = failover.status(0).state.mode == "active"
    if active:
        _confirm(f"Put the fallback of site {site.site} back in standby (agents lose it)?", yes)
    with _spinner("deactivating the fallback…", active and not json_out), \
            _host_locks(site, failover, "deactivate", reason, active):
        done = failover.deactivate(reason)
    if json_out:
        print_json(_transition_json(done))
        return
    console.print(done.message, highlight=False)
    if done.changed:
        console.print(_steps_table(done))
        for warning in done.warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
        if done.journal:
            console.print(f"journal: {done.journal.path}", highlight=False)


@contextlib.contextmanager
def _host_locks(site: SiteConfig, failover: Failover, event: Literal["activate", "deactivate"],
                reason: str, switching: bool) -> Iterator[None]:
    """The messaging hosts' failover lock, held over SSH for the switch (so the host's
    break-glass command refuses meanwhile, naming who switches); nothing to lock when
    nothing will change. A lock held on a host refuses the switch, on the audit log."""
    from planb.breakglass.remote import host_locks
    from planb.engine.records import resolve_operator
    from planb.mode import AuditEntry
    from planb.reports.store import utc_now

    if not switching:
        yield
        return
    operator = resolve_operator(None)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(host_locks(site, operator=f"{operator} (planb controller)",
                                           what=f"planb failover {event}"))
        except UsageError as refused:
            failover.audit.append(AuditEntry(at=utc_now(), who=operator, why=reason,
                                             event=event, result="refused",
                                             detail=refused.message[:500]))
            raise
        yield


def _spinner(text: str, shown: bool) -> contextlib.AbstractContextManager[Any]:
    return console.status(text) if shown else contextlib.nullcontext()
