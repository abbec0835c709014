"""``planb sync plan|apply``: the account sync from the primary directory to the fallback."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from planb.cli.context import console, err_console, options, print_json
from planb.config import SiteConfig
from planb.errors import PlanbError, UsageError

# planb.directory pulls in ldap3: imported where a command runs, so 'planb --help' stays quick.
if TYPE_CHECKING:
    from planb.directory.plan import Plan
    from planb.directory.sync import MatrixTarget, SyncPlan, SyncResult

PASSWORDS = (
    "Passwords: when the source exposes password hashes (OpenLDAP userPassword, read by "
    "the bind account), the sync copies them, so agents log in to the fallback with their "
    "usual password. Active Directory does not expose hashes (nor a site with "
    "primary.ldap.copy_password_hashes: false): the sync then never writes userPassword, "
    "and agents set their fallback password on the enrolment page. Snapshots never hold "
    "hashes.\n\n"
    "Enrolment codes (enrolment.enabled in planb.yml, on by default): every active agent "
    "who has neither a code nor enrolled gets one, an expired unused code is renewed, a "
    "leaver's is revoked; the plan counts them, never shows a code (letters: 'planb enrol "
    "letters'). Codes are hashed with scrypt on every core, with progress."
)
app = typer.Typer(
    help=(
        "Keep the fallback directory (and Matrix) in step with the primary directory: "
        "'plan' shows what would change, 'apply' does it, then re-reads and confirms.\n\n"
        "Never deletes: leavers (disabled at the source, or gone from it) are locked in "
        "the fallback LDAP. Refuses, changing nothing, when the source is unreachable or "
        "empty, when deactivations, password-hash changes or reactivations exceed their "
        "safety limits (safety.max_deactivate_percent, max_password_change_percent, "
        "max_reactivate_percent; unless --force), "
        "or while failover is active (unless --from-snapshot).\n\n" + PASSWORDS
    ),
    no_args_is_help=True,
)

SnapshotOpt = Annotated[
    Path | None,
    typer.Option("--from-snapshot", metavar="FILE",
                 help="Read the agents from a snapshot (see --snapshot-out) instead of the "
                      "primary directory; the only way to sync while failover is active."),
]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="Refuse the whole run if any source record is "
                                        "rejected (default: skip them and report 'N rejected').")
]
AdoptOpt = Annotated[
    bool, typer.Option("--adopt", help="After rebuilding the fallback directory: give each "
                                       "agent without a fallback entry the existing Matrix "
                                       "account its login gives (keeps its rooms and history) "
                                       "instead of reporting it as a collision.")
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", min=1, max=64, show_default=False,
                             help="LDAP connections writing at once (default: 16).")
]

_ROWS = (
    ("LDAP", "ldap_add", "agents added"), ("LDAP", "ldap_update", "agents updated"),
    ("LDAP", "ldap_deactivate", "agents deactivated"),
    ("LDAP", "ldap_reactivate", "agents reactivated"),
    ("LDAP", "department_move", "department moves"),
    ("LDAP", "code_issue", "enrolment codes issued"),
    ("LDAP", "code_renew", "enrolment codes renewed"),
    ("LDAP", "code_revoke", "enrolment codes revoked"),
    ("Matrix", "matrix_create", "users created"),
    ("Matrix", "matrix_deactivate", "users deactivated"),
    ("Matrix", "matrix_reactivate", "users reactivated"),
    ("Matrix", "matrix_display_name", "display names"),
    ("Matrix", "room_create", "rooms created"), ("Matrix", "room_join", "room joins"),
    ("Matrix", "room_leave", "room leaves"),
    ("Matrix", "room_open", "department rooms opened (members only, by planb's module)"),
)


def summary_table(plan: Plan, matrix_configured: bool) -> Table:
    """Counts per kind of change, target by target."""
    from planb.directory.sync import MATRIX_NOT_CONFIGURED

    counts = plan.summary()
    table = Table("target", "change", "count", title=f"Plan: {plan.source}",
                  title_justify="left", show_edge=False)
    for target, key, label in _ROWS:
        if target == "Matrix" and not matrix_configured:
            continue
        count = counts[key]
        table.add_row(target, label, f"[bold]{count}[/]" if count else "[dim]0[/]")
    if not matrix_configured:
        table.add_row("Matrix", f"[yellow]{MATRIX_NOT_CONFIGURED}[/]", "-")
    return table


def _details(plan: Plan, limit: int = 10, out: Console = console) -> None:
    """A few lines of each change a person should look at (the JSON has them all)."""
    sections = (
        ("deactivated", [f"{c.login}: {c.reason}" for c in plan.ldap_deactivations]),
        ("reactivated", [f"{c.login}: {c.reason}" for c in plan.ldap_reactivations]),
        ("moved", [f"{m.login}: {m.old or '-'} -> {m.new or '-'}" for m in plan.moves]),
        ("updated", [f"{u.login}: " + ", ".join(c.field for c in u.changes)
                     + (" (password)" if u.password_changed else "")
                     for u in plan.ldap_updates]),
        ("rejected at the source", [f"{r.where()}: {r.reason}" for r in plan.rejections]),
        ("collisions (not applied)", [c.reason for c in plan.collisions]),
        ("kept", [f"{k.login}: {k.reason}" for k in plan.kept]),
    )
    for title, lines in sections:
        if not lines:
            continue
        out.print(f"[bold]{title}[/] ({len(lines)}):", highlight=False)
        for line in lines[:limit]:
            out.print(f"  {line}", highlight=False, markup=False)
        if len(lines) > limit:
            out.print(f"  … and {len(lines) - limit} more (see the plan file)",
                      highlight=False)
    if any(not c.kept_id and not c.keeps_login for c in plan.collisions):
        out.print("Matrix accounts no fallback entry holds: if the fallback directory was "
                      "rebuilt, re-run with --adopt to give them back to their agents.",
                      highlight=False)


def _show(planned: SyncPlan, out: Console = console) -> None:
    out.print(summary_table(planned.plan, planned.matrix_configured))
    _details(planned.plan, out=out)


@app.command("plan")
def plan_command(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE",
                                                help="Write the plan as JSON to FILE.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    strict: StrictOpt = False,
    from_snapshot: SnapshotOpt = None,
    adopt: AdoptOpt = False,
    snapshot_out: Annotated[
        Path | None, typer.Option("--snapshot-out", metavar="FILE",
                                  help="Also save the source's agents (no password hashes) "
                                       "for a later --from-snapshot.")] = None,
) -> None:
    """Show what 'apply' would change. Writes nothing to the directories.

    Reads the source and both targets. The summary counts adds, attribute
    updates, deactivations, reactivations and department moves (and Matrix users
    and rooms once the Matrix target exists); -o saves the full plan, readable by
    a person and by 'planb sync apply FILE'.
    """
    from planb.directory.plan_json import plan_to_dict, plan_to_json
    from planb.directory.safety import UnsafePlan, check_site_safety
    from planb.directory.snapshot import write_snapshot
    from planb.directory.sync import Sync

    site = options(ctx).load_site()
    sync = Sync(site, matrix=_matrix_target(site), adopt=adopt)
    with err_console.status("reading the source and the fallback directory…"):
        source = sync.read_source(from_snapshot=from_snapshot, strict=strict)
        if snapshot_out is not None:
            write_snapshot(source, snapshot_out)
        planned = sync.plan_from(source)
    if output is not None:
        output.write_text(plan_to_json(planned.plan, planned.meta), encoding="utf-8")
    if json_output:
        print_json(plan_to_dict(planned.plan, planned.meta))
        return
    _show(planned)
    if output is not None:
        console.print(f"plan written to {output}", highlight=False)
    if snapshot_out is not None:
        console.print(f"snapshot written to {snapshot_out}", highlight=False)
    try:
        check_site_safety(planned.plan, site.safety)
    except UnsafePlan as exc:
        err_console.print(f"[yellow]apply would refuse:[/] {exc.message}", highlight=False)
    if planned.plan.is_empty():
        console.print("[green]nothing to change[/]", highlight=False)


class _Bars:
    """One rich progress bar per apply phase, shown from the first write on; without a
    terminal (a nightly job's log) a plain line per phase every LOG_EVERY seconds."""

    LOG_EVERY = 30.0

    def __init__(self) -> None:
        self.progress = Progress(TextColumn("{task.description:>8}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=err_console)
        self.tasks: dict[str, TaskID] = {}
        self.started = False
        self.logged: dict[str, float] = {}
        self.began = time.monotonic()

    def _log_line(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        last = self.logged.get(phase)
        if done != total and last is not None and now - last < self.LOG_EVERY:
            return
        if done == total and last == float("inf"):
            return
        self.logged[phase] = float("inf") if done == total else now
        share = f" ({100 * done / total:.0f} %)" if total else ""
        err_console.print(f"{phase}: {done}/{total}{share}, {now - self.began:.0f} s",
                          highlight=False)

    def stop(self) -> None:
        if self.started:
            self.progress.stop()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not err_console.is_terminal:
            self._log_line(phase, done, total)
            return
        if not self.started:
            self.progress.start()
            self.started = True
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(phase, total=total or 1)
        self.progress.update(self.tasks[phase], completed=done if total else 1)


def _matrix_target(site: SiteConfig) -> MatrixTarget | None:
    """The site's Matrix target (Synapse through the admin tunnel), None if it has none."""
    from planb.messaging.sync_target import target_for  # the CLI wires it; loaded on use

    return target_for(site)


class _Confirm:
    """Shows the checked plan, then asks (unless --yes); remembers an empty plan."""

    def __init__(self, yes: bool, out: Console = console) -> None:
        self.yes, self.empty, self.out = yes, False, out

    def __call__(self, planned: SyncPlan) -> bool:
        _show(planned, self.out)
        if planned.plan.is_empty():
            self.empty = True
            return False
        if self.yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError("not applied: confirm with --yes (no terminal to ask on); "
                             "nothing was changed")
        return typer.confirm("Apply this plan?", default=False, err=self.out is err_console)


@app.command("apply")
def apply_command(
    ctx: typer.Context,
    plan_file: Annotated[Path | None, typer.Argument(
        metavar="PLAN", help="A plan written by 'planb sync plan -o': applied only if a "
                               "fresh plan is still the same.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Apply even if deactivations, password-hash changes or reactivations "
                        "exceed their safety limits "
                        "(an empty source always refuses).")] = False,
    strict: StrictOpt = False,
    from_snapshot: SnapshotOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
                   ] = False,
    workers: WorkersOpt = None,
    adopt: AdoptOpt = False,
    ldap_only: Annotated[bool, typer.Option(
        "--ldap-only", help="Sync the fallback LDAP alone, leaving Matrix as it is (without "
                            "it, apply refuses when the site has no Matrix target: no "
                            "messaging host in the inventory, or not deployed yet).")] = False,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print the result as JSON (the plan and progress go to stderr).")
    ] = False,
) -> None:
    """Apply the sync, then re-read the targets and confirm nothing is left to do.

    Plans afresh (a PLAN file must still match), checks the safety limits, asks
    for confirmation (unless --yes) and writes with progress bars. Interrupted
    (Ctrl-C, kill -9, a target restarting), every entry written is whole and the
    directory usable; run apply again and it finishes.

    One apply runs at a time per site: a second one is refused, naming the process
    that holds the lock (sync.lock in the state dir). Reading the primary, apply
    checks again right before writing that failover has not been activated meanwhile.

    Exit codes: 0 applied and confirmed; 1 a write failed or something is left;
    2 refused (nothing changed); 130 interrupted.
    """
    from planb.directory.fallback_apply import DEFAULT_WORKERS
    from planb.directory.plan_json import plan_from_json
    from planb.directory.sync import Sync

    site = options(ctx).load_site()
    reviewed = None
    if plan_file is not None:
        try:
            text = plan_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{plan_file}: cannot read the plan: {exc.strerror}") from None
        reviewed = plan_from_json(text, str(plan_file))
    matrix = None if ldap_only else _matrix_target(site)
    if matrix is None and not ldap_only:
        raise UsageError("the Matrix target is not configured (no fallback_messaging host in "
                         "the inventory, or no admin token: not deployed yet); nothing was "
                         "changed", hint="run 'planb deploy' first, or sync the fallback LDAP "
                                         "alone with --ldap-only")
    sync = Sync(site, matrix=matrix, adopt=adopt,
                workers=DEFAULT_WORKERS if workers is None else workers)
    bars, confirm = _Bars(), _Confirm(yes, err_console if json_output else console)
    try:
        result = sync.apply(from_snapshot=from_snapshot, strict=strict, force=force,
                            reviewed=reviewed, progress=bars, confirm=confirm)
    finally:
        bars.stop()
    if result is None:
        if json_output:
            print_json({"applied": False,
                        "reason": "nothing to change" if confirm.empty else "not confirmed"})
            return
        console.print("[green]nothing to change[/]" if confirm.empty
                      else "not applied: nothing was changed", highlight=False)
        return
    _report(result, json_output=json_output)


def _result_json(result: SyncResult, confirmed: bool) -> dict[str, Any]:
    """What ``apply --json`` prints: each target's writes and failures, and what is left."""
    return {
        "applied": True, "confirmed": confirmed, "seconds": round(result.seconds, 3),
        "matrix_configured": result.applied.matrix_configured,
        "targets": [{"target": r.target, "done": dict(sorted(r.done.items())),
                     "failures": [{"kind": f.kind, "who": f.who, "reason": f.reason}
                                  for f in r.failures]} for r in result.reports],
        "remaining": {k: v for k, v in result.remaining.summary().items() if v},
    }


def _report(result: SyncResult, *, json_output: bool = False) -> None:
    confirmed = result.converged() or (result.ldap_converged()
                                       and not result.applied.matrix_configured)
    if json_output:
        print_json(_result_json(result, confirmed))
    for report in () if json_output else result.reports:
        done = ", ".join(f"{k} {v}" for k, v in sorted(report.done.items())) or "nothing"
        console.print(f"{report.target}: {done}", highlight=False)
        for failure in report.failures[:20]:
            err_console.print(f"  [red]failed[/] {failure.kind} {failure.who}: "
                              f"{failure.reason}", highlight=False, markup=False)
    failures = sum(len(r.failures) for r in result.reports)
    if confirmed:
        if json_output:
            return
        console.print(f"[green]applied and confirmed[/] in {result.seconds:.1f} s: a fresh "
                      "plan is empty", highlight=False)
        if not result.applied.matrix_configured:
            console.print("[yellow]LDAP only (--ldap-only): Matrix was left as it is[/]",
                          highlight=False)
        return
    left = {k: v for k, v in result.remaining.summary().items()
            if v and k not in ("collisions", "rejected", "kept")}
    raise PlanbError(f"applied with {failures} failed write(s); a fresh plan still has "
                     f"{left}", hint="read the failures above, fix them, and run again")
