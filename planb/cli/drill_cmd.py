"""``planb drill list | run``: the shipped and site scenarios, and running one live."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from planb.cli.context import console, options, print_json

# The drill engine and what it wires in are imported where a command runs, so
# 'planb --help' stays quick.
if TYPE_CHECKING:
    from planb.drills.runner import DrillResult, StepEvent
    from planb.drills.scenario import Scenario

app = typer.Typer(
    no_args_is_help=True,
    help="Prove the fallback works: run a scenario that injects a real fault, measure the "
         "recovery time (RTO) against the objective, restore everything, and write a signed "
         "journal.\n\nScenarios ship with planb; site scenarios go in "
         "<state_dir>/scenarios/NAME.yml (a site file replaces a shipped one of the same "
         "name).",
)

_STYLE = {"ok": "green", "failed": "bold red", "error": "bold magenta", "skipped": "dim",
          "running": "cyan"}
_OUTCOME = {"pass": "[bold green]PASS[/]", "deviated": "[bold yellow]DEVIATED[/]",
            "failed": "[bold red]FAILED[/]", "interrupted": "[bold magenta]INTERRUPTED[/]"}


def _scenario_json(scenario: Scenario, unavailable: list[str]) -> dict[str, Any]:
    from planb.drills.scenario import PHASES

    return {"name": scenario.name, "description": scenario.description,
            "source": scenario.source, "rto_seconds": scenario.rto_seconds,
            "steps": {phase: [s.name for s in scenario.phase(phase)] for phase in PHASES},
            "runnable": not unavailable, "unavailable": unavailable}


@app.command("list")
def list_scenarios(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the scenarios as JSON.")] = False,
) -> None:
    """List the scenarios (shipped and site-local) and whether each can run here."""
    from planb.cli.wiring import default_registry, site_store  # heavy: loaded on use
    from planb.drills.scenario import load_all

    site = options(ctx).load_site()
    registry = default_registry(site, site_store(site, signing=False))
    scenarios = load_all(site.state_dir, registry)
    rows = [(s, [f"{a.name} (needs {a.needs})" for a in registry.missing(s.actions)])
            for s in scenarios]
    if json_out:
        print_json({"site": site.site, "objective_rto_seconds": site.objectives.rto_seconds,
                    "scenarios": [_scenario_json(s, u) for s, u in rows]})
        return
    table = Table(title=f"drill scenarios — site {site.site}", title_justify="left")
    for column in ("scenario", "RTO objective", "runnable here", "what it does"):
        table.add_column(column, overflow="fold")
    for scenario, unavailable in rows:
        objective = scenario.rto_seconds or site.objectives.rto_seconds
        runnable = "[green]yes[/]" if not unavailable else \
            "[red]no[/]: " + escape("; ".join(unavailable))
        table.add_row(scenario.name, f"{objective} s", runnable, escape(scenario.description))
    console.print(table)
    console.print(f"site scenarios: {site.state_dir / 'scenarios'}", highlight=False)


class LiveDrill:
    """The live view of a running drill: one row per step (verify steps: latest round)."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.rows: dict[tuple[str, int], dict[str, Any]] = {}
        self.started = time.monotonic()
        for step in scenario.steps:
            self.rows[(step.phase, step.index)] = {"phase": step.phase, "name": step.name,
                                                   "status": "", "seconds": None, "detail": "",
                                                   "since": None, "round": None}

    def __call__(self, event: StepEvent) -> None:
        row = self.rows[(event.step.phase, event.step.index)]
        row["round"] = event.round
        if event.kind == "start":
            row.update(status="running", since=time.monotonic(), seconds=None, detail="")
            return
        record = event.record
        assert record is not None
        detail = "" if record.ok or record.status == "skipped" else record.why().split(": ", 1)[-1]
        row.update(status=record.status, since=None, seconds=record.duration_seconds,
                   detail=detail)

    def __rich__(self) -> Group:
        table = Table(title=f"drill {self.scenario.name}", title_justify="left", expand=False)
        for column in ("phase", "step", "status", "time", "detail"):
            table.add_column(column, overflow="fold")
        now = time.monotonic()
        for row in self.rows.values():
            seconds = row["seconds"] if row["since"] is None else now - row["since"]
            status = row["status"] or "pending"
            if row["round"]:
                status += f" (round {row['round']})"
            table.add_row(row["phase"].replace("_", " "), escape(row["name"]),
                          f"[{_STYLE.get(row['status'], 'dim')}]{escape(status)}[/]",
                          "" if seconds is None else f"{seconds:.1f} s",
                          escape(row["detail"][:160]))
        elapsed = Text(f"elapsed {now - self.started:.0f} s", style="dim")
        return Group(table, elapsed)


def _summary(result: DrillResult) -> dict[str, Any]:
    return {"outcome": result.outcome, "findings": list(result.findings),
            "rto_seconds": None if result.rto_seconds is None else round(result.rto_seconds, 3),
            "objective_seconds": result.objective_seconds,
            "rto_met": None if result.rto_seconds is None
            else result.rto_seconds <= result.objective_seconds,
            "duration_seconds": round(result.duration_seconds, 3),
            "journal": str(result.journal.path)}


def _print_result(result: DrillResult) -> None:
    console.print(f"outcome: {_OUTCOME[result.outcome]}")
    if result.rto_seconds is None:
        console.print(f"RTO: not measured (objective {result.objective_seconds} s)")
    else:
        met = "[green]met[/]" if result.rto_seconds <= result.objective_seconds \
            else "[red]missed[/]"
        console.print(f"RTO: {result.rto_seconds:.1f} s, objective {result.objective_seconds} s:"
                      f" {met}")
    console.print(f"duration: {result.duration_seconds:.1f} s", highlight=False)
    for finding in result.findings:
        console.print(f"- {escape(finding)}", highlight=False)
    console.print(f"journal: {result.journal.path}", highlight=False)


@app.command("run", epilog="Exit codes: 0 PASS, 4 DEVIATED (objective missed or a probe "
             "failed), 1 FAILED (could not run, or restore incomplete), 130 interrupted "
             "(restore ran and the journal was written).")
def run(
    ctx: typer.Context,
    scenario_name: Annotated[str, typer.Option(
        "--scenario", "-s", metavar="NAME", help="The scenario to run (see 'planb drill list').")],
    operator: Annotated[str | None, typer.Option(
        "--operator", metavar="NAME",
        help="Who runs the drill, for the journal (default: $SUDO_USER, $USER).")] = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help="No live view; print the result as JSON at the end.")] = False,
) -> None:
    """Run a drill: steady state, prepare (when the scenario sets the scene, e.g.
    fallback-lost), fault, activate, verify until it passes, restore, steady state after.

    Restore always runs, also after a failure or Ctrl-C. The signed journal (steps,
    probes, RTO against the objective, the RPO when the scenario measures one, versions
    and the fallback's footprint) is written in every case; check it with 'planb report
    verify'.
    """
    from planb.cli.wiring import default_registry, site_store  # heavy: loaded on use
    from planb.drills.collectors import site_collectors
    from planb.drills.runner import DrillRunner
    from planb.drills.scenario import load_scenario

    site = options(ctx).load_site()
    store = site_store(site)
    registry = default_registry(site, store)
    scenario = load_scenario(scenario_name, site.state_dir, registry)
    view = None if json_out else LiveDrill(scenario)
    runner = DrillRunner(site, registry, store, operator=operator, collectors=site_collectors(),
                         observer=view)
    if view is None:
        result = runner.run(scenario)
        print_json(_summary(result))
    else:
        console.print(f"[bold]{escape(scenario.name)}[/]: {escape(scenario.description)}")
        with Live(view, console=console, refresh_per_second=4, transient=False):
            result = runner.run(scenario)
        if not console.is_terminal:
            console.line()  # Live's last frame in a log ends without a newline
        _print_result(result)
    result.raise_for_outcome()
