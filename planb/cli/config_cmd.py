"""``planb config``: look at the effective site configuration."""

from __future__ import annotations

from typing import Annotated

import typer
import yaml

from planb.cli.context import console, options, print_json
from planb.config import masked

app = typer.Typer(help="Show and check the site configuration (planb.yml).",
                  no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")]
    = False,
) -> None:
    """Print the effective configuration, defaults filled in, secrets masked."""
    config = options(ctx).load_site()
    data = masked(config)
    if json_output:
        print_json({"source": str(config.source), "config": data})
        return
    console.print(f"# {config.source}", style="dim", highlight=False)
    console.print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), highlight=False,
                  markup=False, end="")


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Validate the configuration; exit 2 with file, key and line if it is wrong."""
    config = options(ctx).load_site()
    console.print(f"{config.source}: ok (site {config.site})", highlight=False)
