"""``controller.restore``: rebuild the controller from the fallback's copy, as on the day.

The action runs the commands an administrator runs on a fresh machine, as separate
``planb`` processes (nothing of this controller's state is read by them):

1. ``planb controller restore --from HOST --user root --key KEY --into DIR
   [--passphrase-file F]``: the copy the controller pushed to the fallback host;
2. ``planb -c DIR/planb.yml failover status``: fetches what was done on the hosts
   (the break-glass journals and audit lines, signed by the host's own key);
3. ``planb -c DIR/planb.yml report verify --json``: the whole chain, the host-signed
   journals included.

It then compares the rebuilt controller with this one: the same journal chain head and
the same audit log ("same site, same journals, same audit log"), and counts the
host-signed journals the rebuilt one verified (at least one is required: a
break-glass activation the rebuilt controller cannot see would go unrecorded).

``DIR`` defaults to a fresh folder under ``<state_dir>/drills/``, removed afterwards
(it holds the site's secrets when a passphrase was given); ``keep: true`` leaves it.
The crisis cell's passphrase file comes from ``passphrase_file`` or
``$PLANB_CONTROLLER_PASSPHRASE_FILE``; without one only the public part is restored
(``--public-only``). The host's SSH key is checked against the fingerprint the site
recorded (``--host-fingerprint``, as the runbook prints it). The rebuilt controller runs
with ``PLANB_STATE_COPY=off``: a drill's throwaway must not push its copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planb.commands import last_line, run_command
from planb.config import SiteConfig, load_config
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult
from planb.errors import PlanbError
from planb.hostkeys import fingerprint, known_hosts_path, read_known_hosts
from planb.inventory import InventoryHost, load_hosts
from planb.reports.journal import HEAD_NAME
from planb.reports.store import journals_dir, parse_head

log = logging.getLogger(__name__)

PASSPHRASE_ENV = "PLANB_CONTROLLER_PASSPHRASE_FILE"
#: Stops the rebuilt controller's automatic push (planb.statecopy.push.AUTO_ENV).
COPY_ENV = "PLANB_STATE_COPY"


@dataclass(frozen=True)
class RestoreArgs:
    """``controller.restore``: where to rebuild, from which host, with which passphrase."""

    into: str = ""
    #: A host name or inventory group (its first host): where the copy is fetched from.
    host: str = "fallback_messaging"
    passphrase_file: str | None = None
    keep: bool = False
    #: How many host-signed journals the rebuilt controller must verify, at least.
    min_host_journals: int = 1

    def __post_init__(self) -> None:
        if self.min_host_journals < 0:
            raise ValueError("min_host_journals must not be negative")


def planb_argv(*args: str) -> list[str]:
    """``planb ARGS`` as a separate process of this installation."""
    return [sys.executable, "-m", "planb.cli.main", *args]


def _source(hosts: list[InventoryHost], name: str) -> InventoryHost:
    found = [h for h in hosts if h.name == name] or [h for h in hosts if name in h.groups]
    if not found:
        raise PlanbError(f"no inventory host or group {name!r} to restore the controller from")
    return found[0]


def host_fingerprint(site: SiteConfig, host: InventoryHost) -> str | None:
    """The host's SSH key fingerprint as the site recorded it (None: not recorded)."""
    prints = sorted(fingerprint(k) for k in read_known_hosts(known_hosts_path(site))
                    .get(host.key_target.entry, set()))
    return prints[0] if prints else None


def restore_words(site: SiteConfig, host: InventoryHost, *, into: str, key: str | None,
                  passphrase_file: str | None) -> list[str]:
    """``controller restore ...`` from ``host``: the one place this command is written
    (the activate-failover runbook prints it, the drill runs it). The host's key is
    checked against the fingerprint the site recorded, as the crisis cell's papers give
    it; without a passphrase file only the public part is restored."""
    words = ["controller", "restore", "--from", host.address,
             "--user", host.ssh.user or "root"]
    if key:
        words += ["--key", key]
    if host.ssh.port:
        words += ["--port", str(host.ssh.port)]
    recorded = host_fingerprint(site, host)
    if recorded:
        words += ["--host-fingerprint", recorded]
    words += ["--into", into]
    words += ["--passphrase-file", passphrase_file] if passphrase_file else ["--public-only"]
    return words


def _head(state_dir: Path) -> tuple[int, str] | None:
    try:
        head = parse_head((journals_dir(state_dir) / HEAD_NAME).read_bytes())
    except FileNotFoundError:
        return None
    return head.seq, head.sha256


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _run(argv: list[str], ctx: ActionContext, what: str) -> str:
    # The rebuilt controller is a drill's throwaway: it must not push its copy over the
    # one the real controller keeps on the hosts.
    env = {**os.environ, COPY_ENV: "off"}
    proc = run_command(argv, check=False, timeout=ctx.remaining(), what=what, env=env)
    if proc.returncode != 0:
        raise PlanbError(f"{what} failed (exit {proc.returncode}): {last_line(proc)}")
    return proc.stdout


def restore(ctx: ActionContext, args: RestoreArgs) -> ActionResult:
    """Rebuild the controller into a fresh folder and verify the whole chain there."""
    site = ctx.site
    host = _source(load_hosts(site), args.host)
    passphrase = args.passphrase_file or os.environ.get(PASSPHRASE_ENV)
    drills = site.state_dir / "drills"
    drills.mkdir(parents=True, exist_ok=True)
    scratch = (Path(args.into) if args.into
               else Path(tempfile.mkdtemp(prefix="controller-restore-", dir=drills)))
    into = scratch / "site" if not args.into else scratch
    try:
        restore_argv = restore_words(site, host, into=str(into), key=host.ssh.key_file,
                                     passphrase_file=passphrase)
        lines = [f"planb {' '.join(restore_argv)}"]
        out = _run(planb_argv(*restore_argv), ctx, f"controller restore from {host.name}")
        lines += [f"  {line}" for line in out.strip().splitlines()[-6:]]
        config = into / "planb.yml"
        _run(planb_argv("--config", str(config), "failover", "status", "--json"), ctx,
             "failover status on the rebuilt controller")
        verified = _run(planb_argv("--config", str(config), "report", "verify", "--json"), ctx,
                        "report verify on the rebuilt controller")
        rebuilt = load_config(config)
        report = _report(verified)
        lines.append(_summary(report))
        problems = compare(site.state_dir, rebuilt.state_dir)
        host_journals = verified_host_journals(report)
        lines.append(f"host-signed journals fetched and verified: {host_journals}")
        if host_journals < args.min_host_journals:
            problems.append(f"{host_journals} host-signed journals verified on the "
                            f"rebuilt controller, at least {args.min_host_journals} expected")
        lines += [f"problem: {p}" for p in problems]
        return ActionResult(not problems, "\n".join(lines))
    finally:
        if not args.keep and not args.into:
            shutil.rmtree(scratch, ignore_errors=True)


def _report(verified: str) -> dict[str, Any]:
    """``report verify --json``'s answer (empty when it printed none)."""
    try:
        data = json.loads(verified[verified.index("{"):])
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def verified_host_journals(report: dict[str, Any]) -> int:
    """How many host-signed journals ``report verify --json`` found valid and chained,
    in host chains that verify as a whole."""
    return sum(1 for h in report.get("hosts") or [] if h.get("ok")
               for j in h.get("journals") or []
               if j.get("signature") == "valid" and j.get("chain") == "ok")


def _summary(report: dict[str, Any]) -> str:
    """One line from ``report verify --json``."""
    audit = report.get("audit_log") or {}
    hosts = ", ".join(f"{h.get('host')} {len(h.get('journals') or [])} journals "
                      f"({'ok' if h.get('ok') else h.get('problem')})"
                      for h in report.get("hosts") or []) or "none"
    return (f"report verify on the rebuilt controller: {len(report.get('journals') or [])} "
            "journals valid" + (f", audit log {audit.get('entries')} entries ok" if audit
                                else "") + f"; host chains: {hosts}")


def compare(here: Path, rebuilt: Path) -> list[str]:
    """What differs between this controller's record and the rebuilt one's."""
    problems = []
    mine, theirs = _head(here), _head(rebuilt)
    if mine != theirs:
        problems.append(f"journal chain head differs: this controller {mine}, rebuilt "
                        f"{theirs} (the copy on the host is behind)")
    audit = Path("failover") / "audit.log"
    if _digest(here / audit) != _digest(rebuilt / audit):
        problems.append("the audit log differs from this controller's")
    return problems


def register_controller_actions(registry: ActionRegistry) -> None:
    """Register ``controller.restore``."""
    registry.action("controller.restore", summary="rebuild the controller from the "
                    "fallback's copy into a fresh folder and verify the whole chain there",
                    args=RestoreArgs, timeout=300)(restore)
