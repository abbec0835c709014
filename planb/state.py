"""Machine-wide planb state: the lab image cache and which site is current.

A site's own state (runs, plans, journals, keys, lab hosts) lives in its state dir
(``paths.state_dir`` in planb.yml); this module holds only what is shared by all
sites on the machine, under ``$PLANB_HOME`` (default ``/var/lib/planb`` for root,
``~/.local/state/planb`` otherwise).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from planb.files import write_atomic

log = logging.getLogger(__name__)

HOME_ENV = "PLANB_HOME"


def planb_home() -> Path:
    """The machine-wide planb folder (created on first use)."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        home = Path(configured)
    elif os.geteuid() == 0:
        home = Path("/var/lib/planb")
    else:
        home = Path.home() / ".local" / "state" / "planb"
    home.mkdir(parents=True, exist_ok=True)
    return home


def current_site() -> Path | None:
    """The planb.yml last recorded by ``planb init`` or ``planb lab up``, if it still exists."""
    marker = planb_home() / "current-site"
    try:
        recorded = Path(marker.read_text(encoding="utf-8").strip())
    except FileNotFoundError:
        return None
    if recorded.is_file():
        return recorded
    log.debug("recorded current site %s no longer exists", recorded)
    return None


def set_current_site(config_path: Path) -> None:
    """Record ``config_path`` as the current site, atomically."""
    marker = planb_home() / "current-site"
    write_atomic(marker, f"{config_path.resolve()}\n")
