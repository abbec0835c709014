"""What every subcommand shares: global options, the console, and site loading."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from planb.config import SiteConfig, find_config_path, load_config

console = Console()
# Errors are not wrapped, so a long path or key stays on one line for grep and logs.
err_console = Console(stderr=True, soft_wrap=True)


@dataclass
class Options:
    """Global options given before the subcommand."""

    config: Path | None = None
    verbose: int = 0

    def load_site(self) -> SiteConfig:
        """Find and load the site configuration (raises ConfigError, exit 2)."""
        return load_config(find_config_path(self.config))


def options(ctx: typer.Context) -> Options:
    """The global options attached to the root context."""
    root = ctx.find_root()
    if not isinstance(root.obj, Options):
        root.obj = Options()
    return root.obj


def print_json(data: Any) -> None:
    """Machine-readable output for ``--json``: plain JSON on stdout, nothing else."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def setup_logging(verbose: int) -> None:
    """Library logging goes to stderr through rich; -v shows info, -vv debug."""
    from rich.logging import RichHandler

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )
