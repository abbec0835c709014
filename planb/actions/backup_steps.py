"""The deploy and backup steps a drill runs: ``deploy.run``, ``backup.now``, ``backup.restore``.

- ``deploy.run``: the site playbook, as ``planb deploy`` runs it (``hosts``: an Ansible
  limit), stopped cleanly when the step's time is up;
- ``backup.now``: each fallback host backs itself up now and the step waits for it
  (:func:`planb.backup.run_now`); when it started is marked for the run
  (:mod:`planb.actions.marks`: nothing sent before it may be missing after a restore);
- ``backup.restore``: ``planb restore`` (:func:`planb.backup.restore.restore`): the newest
  archive with data of each fallback host, or ``archive``; its report is counts only.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

from planb.actions import marks
from planb.backup import list_archives, run_now
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult, NoArgs
from planb.provisioning.deploy import run_deploy

log = logging.getLogger(__name__)

RESTORE_MODULE = "planb.backup.restore"


@dataclass(frozen=True)
class DeployArgs:
    """``deploy.run``: which hosts or groups (an Ansible pattern; None: every host)."""

    hosts: str | None = None

    def __post_init__(self) -> None:
        if self.hosts is not None and not self.hosts.strip():
            raise ValueError("hosts must not be empty (leave it out for every host)")


@dataclass(frozen=True)
class RestoreArgs:
    """``backup.restore``: the archive to restore (None: each host's newest with data)."""

    archive: str | None = None
    #: The newest failed its check: take the one before (as 'planb restore --previous').
    previous: bool = False


def deploy_run(ctx: ActionContext, args: DeployArgs) -> ActionResult:
    """Run site.yml on the site's hosts (or ``hosts``), stopped when the step times out."""
    result = run_deploy(ctx.site, limit=args.hosts, cancel=ctx.expired)
    hosts = ", ".join(f"{name} ok={s.ok} changed={s.changed} failed={s.failed}"
                      for name, s in sorted(result.hosts.items()))
    lines = [f"site.yml{f' on {args.hosts}' if args.hosts else ''}: {result.status} in "
             f"{result.duration_s:.0f} s, {result.changed_total} changed ({hosts})"]
    lines += [f.describe() for f in result.failures[:5]]
    if result.error:
        lines.append(result.error.strip().splitlines()[-1][:300])
    return ActionResult(result.ok, "\n".join(lines))


def backup_now(ctx: ActionContext, args: NoArgs) -> ActionResult:
    """Back up every fallback host now; mark when the backup started."""
    marks.mark(ctx.run_id, marks.BACKUP_STARTED)
    runs = run_now(ctx.site, timeout=ctx.remaining())
    newest: dict[str, str] = {}
    for archive in list_archives(ctx.site, timeout=max(10.0, ctx.remaining())):
        newest[archive.host] = archive.name  # oldest first: the last one is the newest
    return ActionResult(True, "\n".join(
        f"backed up {r.host} in {r.seconds:.1f} s: archive {newest.get(r.host, '?')}"
        for r in runs))


def backup_restore(ctx: ActionContext, args: RestoreArgs) -> ActionResult:
    """``planb restore``: each fallback host from its newest archive (or ``archive``)."""
    from planb.backup.restore import restore

    lines: list[str] = []
    done = restore(ctx.site, archive=args.archive, previous=args.previous, force=False,
                   progress=lines.append, timeout=ctx.remaining())
    shown = [f"restored {r.host} from {r.archive} in {r.seconds:.1f} s: {r.report}"
             for r in done]
    return ActionResult(bool(done), "\n".join([*shown, *lines[-10:]]))


def register_backup_actions(registry: ActionRegistry) -> None:
    """``deploy.run`` and ``backup.now`` always; ``backup.restore`` once planb has it."""
    registry.action("deploy.run", summary="run the site playbook (as 'planb deploy')",
                    args=DeployArgs, timeout=1800)(deploy_run)
    registry.action("backup.now", summary="back up every fallback host now and wait for it",
                    timeout=1800)(backup_now)
    summary = "restore each fallback host from its newest archive (as 'planb restore')"
    if importlib.util.find_spec(RESTORE_MODULE) is None:
        registry.unavailable("backup.restore", summary=summary, args=RestoreArgs,
                             timeout=1800, needs="'planb restore' (planb.backup.restore)")
    else:
        registry.action("backup.restore", summary=summary, args=RestoreArgs,
                        timeout=1800)(backup_restore)


__all__ = ["DeployArgs", "RestoreArgs", "register_backup_actions"]
