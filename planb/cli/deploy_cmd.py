"""``planb deploy``: apply playbooks/site.yml to the site's hosts, with live progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from planb.cli import statewatch
from planb.cli.context import console, err_console, options, print_json

# planb.provisioning (and the bundle builder it reaches) is imported where the command
# runs, so 'planb --help' stays quick.
if TYPE_CHECKING:
    from planb.provisioning import HostStats, PlaybookResult, ProgressEvent

app = typer.Typer()

_COLUMNS = ("ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored")
_STYLES = {"changed": "yellow", "failed": "bold red", "unreachable": "bold red"}


class DeployProgress:
    """The live view: current play and task, and per-host counts, fed from the event stream."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started = time.monotonic()
        self._lock = threading.Lock()
        from planb.provisioning import ProgressEvent

        self._last: ProgressEvent = ProgressEvent(play=None, task=None, hosts={})
        self._spinner = Spinner("dots")

    def update(self, progress: ProgressEvent) -> None:
        """Called from the runner's thread for every Ansible event."""
        with self._lock:
            self._last = progress

    def __rich__(self) -> RenderableType:
        with self._lock:
            last = self._last
        elapsed = time.monotonic() - self.started
        self._spinner.update(text=Text(f"{self.title}  {elapsed:.0f} s", style="bold"))
        head = Text.assemble(("play ", "dim"), last.play or "starting Ansible…",
                             ("\ntask ", "dim"), last.task or "-")
        parts: list[RenderableType] = [self._spinner, head]
        if last.hosts:
            parts.append(stats_table(last.hosts, columns=_COLUMNS[:5]))
        return Group(*parts)


def stats_table(hosts: Mapping[str, HostStats], *, columns: tuple[str, ...] = _COLUMNS,
                title: str | None = None) -> Table:
    """Per-host counts, Ansible's PLAY RECAP as a table."""
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("host")
    for name in columns:
        table.add_column(name, justify="right")
    for host, stats in sorted(hosts.items()):
        cells: list[Text] = []
        for name in columns:
            value = getattr(stats, name)
            cells.append(Text(str(value), style=_STYLES.get(name, "") if value else "dim"))
        table.add_row(Text(host, style="" if stats.good else "bold red"), *cells)
    return table


def print_recap(result: PlaybookResult, *, site: str) -> None:
    """The human summary after a run: the recap table and one line on the outcome."""
    if not result.hosts:
        console.print("[yellow]no host was targeted[/] (empty inventory, or --limit "
                      "matched nothing)", highlight=False)
    else:
        console.print(stats_table(result.hosts, title=f"Recap: {site}"))
    mode = "check mode, nothing was changed; " if result.check else ""
    verb = "would change" if result.check else "changed"
    style = "green" if result.ok else "red"
    console.print(
        f"[{style}]deploy {result.status}[/] in {result.duration_s:.1f} s: {mode}"
        f"{result.changed_total} task(s) {verb}. Artifacts: {result.artifacts_dir}",
        highlight=False,
    )


def _ensure_bundle() -> None:
    """Offline deploys install only from the bundle: build it first if it is missing or stale."""
    from planb.bundle.build import build_bundle, build_context, default_output, is_current
    from planb.bundle.inputs import read_inputs

    if is_current(default_output(), read_inputs(context=build_context())) is not None:
        return
    with err_console.status("building the offline bundle (Debian packages and wheels)…") as st:
        result = build_bundle(progress=lambda message: st.update(message))
    err_console.print(f"bundle ready: {result.path}", highlight=False)


def _split_tags(values: list[str] | None) -> tuple[str, ...]:
    tags = [t.strip() for value in values or () for t in value.split(",")]
    return tuple(t for t in tags if t)


DEPLOY_HELP = (
    "Apply playbooks/site.yml to the site's hosts: install and configure everything."
    "\n\n"
    "Runs Ansible on inventories/<site>/ (or paths.inventory in planb.yml), showing the "
    "current play, task and per-host counts while it runs, then a per-host recap. Safe to "
    "repeat: a second run on an up-to-date site changes nothing (changed=0). Secrets come "
    "from inventories/<site>/group_vars/all/vault.yml, never from the command line."
    "\n\n"
    "Each run's Ansible output and events are kept in <state_dir>/runs/. Use 'planb -v "
    "deploy' to see Ansible's own output. Ctrl-C stops Ansible cleanly."
    "\n\n"
    "SSH host keys are checked against <site folder>/known_hosts: a host with no key "
    "recorded yet is refused until it is trusted, by 'planb hosts trust' or by "
    "--trust-new-hosts here (compare the printed fingerprints with the hosts' consoles); "
    "a recorded key that changed stops the run, naming the host and the fix."
    "\n\n"
    "With deploy.offline (the default) hosts install only from planb's offline bundle; "
    "it is built first ('planb bundle build') if it is missing or out of date."
    "\n\n"
    "Exit codes: 0 deployed; 2 bad configuration or missing inventory; 3 a task failed or a "
    "host was unreachable (the message names host and task); 130 interrupted."
)


@app.command("deploy", help=DEPLOY_HELP)
def deploy(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option(
        "--check", help="Dry run: report what would change, change nothing (Ansible check mode).",
    )] = False,
    tags: Annotated[list[str] | None, typer.Option(
        "--tags", "-t", metavar="TAG",
        help="Only run tasks with this tag (role names such as 'common', or finer ones such "
        "as 'common_timezone'). Repeat or separate with commas.",
    )] = None,
    limit: Annotated[str | None, typer.Option(
        "--limit", "-l", metavar="PATTERN",
        help="Only these hosts or groups (Ansible pattern, e.g. 'fallback' or 'fallback_proxy').",
    )] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print the result as JSON on stdout (progress still goes to stderr).",
    )] = False,
    trust_new: Annotated[bool, typer.Option(
        "--trust-new-hosts",
        help="First contact: record the SSH host keys of hosts that have none recorded yet "
        "(ssh-keyscan; fingerprints printed). Keys already recorded are never replaced.",
    )] = False,
) -> None:
    """Run site.yml for the site; see DEPLOY_HELP."""
    from planb.provisioning import check_inventory, run_deploy
    from planb.provisioning.deploy import trust_new_hosts

    opts = options(ctx)
    site = opts.load_site()
    if not check:  # a dry run builds nothing that would lack the copy
        statewatch.always_push(ctx)
    check_inventory(site)
    if trust_new:
        for r in trust_new_hosts(site):
            err_console.print(escape(f"trusted {r.target.name} ({r.target.entry}) on first "
                                     f"contact: {', '.join(r.fingerprints)}"), highlight=False)
    if site.deploy.offline and not check:
        _ensure_bundle()
    view = DeployProgress(f"{'checking' if check else 'deploying'} site {site.site}")
    with Live(view, console=err_console, transient=True, refresh_per_second=8):
        result = run_deploy(site, limit=limit, tags=_split_tags(tags), check=check,
                            verbose=opts.verbose >= 1, on_event=view.update)
    if json_output:
        print_json(result.as_dict())
    else:
        print_recap(result, site=site.site)
    result.raise_for_status()
