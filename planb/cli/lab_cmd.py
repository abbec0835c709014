"""``planb lab``: real Debian 12 hosts on this machine, booted with systemd-nspawn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from planb import state
from planb.cli.context import console, err_console, options, print_json
from planb.config import CONFIG_ENV, DEFAULT_CONFIG_NAME, LabConfig, SiteConfig, load_config
from planb.errors import UsageError
from planb.lab.lab import Lab
from planb.lab.topology import build_topology

app = typer.Typer(
    help=(
        "The lab: real Debian 12 hosts (systemd as PID 1) on a private bridge, reached by "
        "Ansible over SSH exactly like production servers. Hosts: 'primary' (the main "
        "system's directory) and 'fallback'; --split adds 'directory' and 'messaging', --ha "
        "a hot standby 'standby'. "
        "Needs root, systemd-nspawn (systemd-container) and debootstrap. The hosts have no "
        "route to the internet."
    ),
    no_args_is_help=True,
)


def _lab_config_path(ctx: typer.Context) -> Path:
    """--config, $PLANB_CONFIG or ./planb.yml: the lab never falls back to another site."""
    explicit = options(ctx).config or (Path(os.environ[CONFIG_ENV])
                                       if os.environ.get(CONFIG_ENV) else None)
    return explicit or Path.cwd() / DEFAULT_CONFIG_NAME


def _load_lab_site(ctx: typer.Context) -> SiteConfig:
    return load_config(_lab_config_path(ctx))


@app.command("up")
def up(
    ctx: typer.Context,
    split: Annotated[
        bool | None,
        typer.Option("--split/--no-split",
                     help="Put the directory and messaging on their own hosts (default: "
                     "lab.split in planb.yml, else one fallback host)."),
    ] = None,
    ha: Annotated[bool, typer.Option(
        "--ha", help="Add a hot-standby fallback host, 'standby' (group fallback_standby, "
        ".12), with the service address .30 of the subnet: written as lab.ha and "
        "fallback.standby.service_address into a new lab's planb.yml. Single fallback "
        "host only (not with --split).")] = False,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print the result as JSON (progress still goes to stderr).")] = False,
) -> None:
    """Boot the lab's hosts and write the lab site (planb.yml, inventories/lab/).

    The first run builds a Debian 12 image with debootstrap (about a minute) and
    caches it; later runs only boot. Safe to repeat: running hosts are left as they
    are. Without a planb.yml here (or --config), a lab site is created in the
    current folder and recorded as the current site, so 'planb deploy' just works.
    """
    from planb.lab.site import stale_primary_url, write_lab_site  # jinja2: loaded on use

    shown = err_console if json_output else console
    path = _lab_config_path(ctx)
    created = not path.exists()
    if ha and split:
        raise UsageError("--ha adds a standby to a single fallback host: not with --split")
    if created:
        lab = LabConfig(split=bool(split), ha=ha)
        topology = build_topology(lab.subnet, lab.bridge, split=lab.split, ha=lab.ha)
        key = (path.parent / ".planb" / "lab" / "id_ed25519").resolve()
        write_lab_site(path.parent, topology, key, lab)
        shown.print(f"created lab site {path}", highlight=False)
    site = load_config(path)
    if ha and not (site.lab is not None and site.lab.ha):
        raise UsageError(f"{path} has no 'lab: ha: true': this lab was made without a "
                         "standby", hint="set lab.ha: true and fallback.standby."
                         "service_address in planb.yml after 'planb lab down', or make a "
                         "new lab site with 'planb lab up --ha' in an empty folder")
    lab_obj = Lab(site)
    with shown.status("starting the lab…") as status:
        topology = lab_obj.up(split=split, progress=lambda msg: status.update(msg))
    assert site.lab is not None
    write_lab_site(site.base_dir, topology, lab_obj.key, site.lab)
    if (stale := stale_primary_url(site, topology)) is not None:
        err_console.print(f"[yellow]warning:[/] {escape(stale)}", highlight=False)
    state.set_current_site(site.source)
    if json_output:
        print_json({"site": str(site.source), "created": created,
                    "inventory": str(site.inventory_dir), "warning": stale,
                    "hosts": [h.__dict__ for h in lab_obj.status()]})
        return
    _print_status(lab_obj, json_output=False)
    console.print(f"inventory: {site.inventory_dir}\nnext: planb deploy", highlight=False)


@app.command("down")
def down(ctx: typer.Context) -> None:
    """Stop every lab host and remove its bridge, veths, mounts and host folders.

    The cached image and the lab's SSH key are kept, so the next 'up' is quick.
    """
    lab_obj = Lab(_load_lab_site(ctx))
    with console.status("stopping the lab…") as status:
        lab_obj.down(progress=lambda msg: status.update(msg))
    console.print("lab is down", highlight=False)


@app.command("status")
def status(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each lab host, its address and 'systemctl is-system-running'."""
    _print_status(Lab(_load_lab_site(ctx)), json_output=json_output)


def _print_status(lab_obj: Lab, *, json_output: bool) -> None:
    hosts = lab_obj.status()
    if json_output:
        print_json([h.__dict__ for h in hosts])
        return
    if not hosts:
        console.print("the lab is down", highlight=False)
        return
    table = Table("host", "address", "groups", "container", "systemd")
    for host in hosts:
        ok = host.system in ("running", "degraded")
        table.add_row(host.name, host.address, ", ".join(host.groups), host.process,
                      f"[green]{host.system}[/]" if ok else f"[red]{host.system}[/]")
    console.print(table)


JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@app.command("stop")
def stop_host(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Lab host name, e.g. primary.")],
    json_output: JsonOption = False,
) -> None:
    """Power one lab host off cleanly, keeping its disk (as if it were shut down).

    Its services stop and it leaves the lab network; 'planb lab start HOST' (or
    'planb lab up') boots it again with the same files and address. 'planb lab down'
    removes it like any host.
    """
    lab_obj = Lab(_load_lab_site(ctx))
    with err_console.status(f"powering {host} off…"):
        stopped = lab_obj.stop_host(host)
    if json_output:
        print_json({"host": host, "stopped": stopped})
        return
    console.print(f"{host} is powered off (disk kept); start it with: planb lab start {host}"
                  if stopped else f"{host} was not running: nothing to stop", highlight=False)


@app.command("start")
def start_host(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Lab host name, e.g. primary.")],
    json_output: JsonOption = False,
) -> None:
    """Boot a lab host stopped with 'planb lab stop' again and wait until it is ready."""
    lab_obj = Lab(_load_lab_site(ctx))
    with err_console.status(f"booting {host}…"):
        system = lab_obj.start_host(host)
    if json_output:
        print_json({"host": host, "system": system})
        return
    console.print(f"{host} is up (systemd: {system})", highlight=False)


@app.command("password")
def password(
    ctx: typer.Context,
    login: Annotated[str, typer.Argument(help="An agent's login (uid), e.g. marie.martin.")],
) -> None:
    """Print the password of a lab agent on the primary (for probes and manual tests).

    Lab passwords are derived from the lab secret in <state_dir>/lab/agents-secret
    (made by the first deploy) and the login, so this works for any seeded agent,
    leavers included (their account is locked, their password still known).
    """
    from planb.lab.agents import agent_password

    secret_file = _load_lab_site(ctx).state_dir / "lab" / "agents-secret"
    if not secret_file.exists():
        raise UsageError(f"no lab secret at {secret_file}",
                         hint="deploy the lab first: planb lab up && planb deploy")
    console.print(agent_password(secret_file.read_bytes().strip(), login), highlight=False,
                  markup=False)


@app.command(
    "ssh",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def ssh(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Lab host name, e.g. fallback or primary.")],
) -> None:
    """Open a root shell on a lab host, or run a command: planb lab ssh HOST -- CMD."""
    argv = Lab(_load_lab_site(ctx)).ssh_argv(host, list(ctx.args) or None)
    os.execvp(argv[0], argv)


@app.command("churn")
def churn(
    ctx: typer.Context,
    percent: Annotated[float, typer.Option("--percent", "-p", help="Share of the agents "
                                           "to change, in % (spread over five kinds).")] = 1.0,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (repeatable "
                                             "choices).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")
                           ] = False,
) -> None:
    """Change the lab's primary like HR would: hires, leavers, renames, department moves
    and reactivations, then record what changed in <state_dir>/lab/churn-<time>.json
    (what 'planb sync plan' should then find)."""
    from planb.directory.lab_churn import Churn

    record, path = Churn(_load_lab_site(ctx), seed=seed).run(percent)
    if json_output:
        print_json({"file": str(path), **record.__dict__})
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in record.counts().items())
    console.print(f"churned the lab primary: {counts}\nrecord: {path}", highlight=False)
