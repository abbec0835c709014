"""Switch a lab between Synapse's monolith and the ``activation`` workers preset, for the
benches that compare them in one run (bench/sync.py --workers-compare, bench/drill.py
--workers-compare).

A switch edits ``fallback.synapse.workers`` in planb.yml (its text: comments kept) and
runs ``planb deploy``; with ``fresh``, Synapse's database is dropped first (Synapse and
its workers stopped) so the deploy starts Synapse on an empty one, as a new fallback is.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from planb.config import SiteConfig, load_config
from planb.inventory import load_hosts

PRESETS = ("none", "activation")
#: The groups whose hosts run Synapse or its workers.
SYNAPSE_GROUPS = ("fallback_messaging", "fallback_messaging_workers")
_WORKERS = re.compile(r"(?m)^(fallback:\n(?:(?:[ \t]+.*|[ \t]*)\n)*?[ \t]+synapse:[ \t]*\n"
                      r"(?:(?:[ \t]+#.*|[ \t]*)\n)*[ \t]+workers:[ \t]*)([\w-]+)")


def set_preset_text(text: str, preset: str) -> str:
    """planb.yml's text with ``fallback.synapse.workers`` set to ``preset``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown workers preset {preset!r} (one of {', '.join(PRESETS)})")
    new, count = _WORKERS.subn(lambda m: m.group(1) + preset, text, count=1)
    if count:
        return new
    if re.search(r"(?m)^fallback:[ \t]*$", text) is None:
        raise ValueError("planb.yml has no fallback: section")
    return re.sub(r"(?m)^fallback:[ \t]*\n",
                  f"fallback:\n  synapse:\n    workers: {preset}\n", text, count=1)


def preset_of(site: SiteConfig) -> str:
    return str(site.fallback.synapse.workers)


def _planb(site: SiteConfig, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "planb.cli.main", "-c", str(site.source),
                           *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"planb {' '.join(args)} (exit {done.returncode}): "
                         f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def empty_synapse(site: SiteConfig) -> None:
    """Stop Synapse and its workers and drop its database (the deploy makes a new one)."""
    from planb.verify.connections import HostConnections

    hosts = [h for h in load_hosts(site) if set(h.groups) & set(SYNAPSE_GROUPS)]
    db = [h for h in load_hosts(site) if "fallback_messaging" in h.groups]
    conns = HostConnections()
    try:
        for host in hosts:
            conns.get(host).run("systemctl stop 'synapse*.service'")
        for host in db:
            conns.get(host).check_output(
                "runuser -u postgres -- dropdb --if-exists synapse")
    finally:
        conns.close()


def switch(site: SiteConfig, preset: str, *, fresh: bool) -> tuple[SiteConfig, float]:
    """Set the preset in planb.yml and deploy (after emptying Synapse when ``fresh``);
    the reloaded site and the deploy's seconds."""
    path = Path(site.source)
    path.write_text(set_preset_text(path.read_text(encoding="utf-8"), preset),
                    encoding="utf-8")
    site = load_config(path)
    if fresh:
        empty_synapse(site)
    started = time.monotonic()
    _planb(site, "deploy")
    took = time.monotonic() - started
    print(f"WORKERS {preset}: deployed in {took:.0f} s"
          + (" on an empty Synapse database" if fresh else ""), flush=True)
    return load_config(path), took
