"""After every command that changed the site's state, push its copy to the hosts.

The root command takes a cheap picture of the state (file names, sizes, times) before
the subcommand runs and compares after it, whether it succeeded or failed (a failed
activation still wrote audit lines). ``deploy`` (not ``--check``) always pushes once it
started (it calls :func:`always_push`): a host it just built has no copy yet; its
``--help`` does not. ``lab`` (hosts come and go) and ``controller`` (pushes by itself)
are left out, and nothing happens where no host key was ever recorded or with
``PLANB_STATE_COPY=off``. A push that fails prints a warning; the command's own result
stands. After Ctrl-C nothing is pushed (the user wants the command to stop).
"""

from __future__ import annotations

import logging

import typer
from rich.markup import escape

from planb.cli.context import err_console, options
from planb.config import SiteConfig

log = logging.getLogger(__name__)

SKIPPED = frozenset({"lab", "controller", "init"})
#: Set in the contexts' shared ``meta`` by a command that must push whatever changed.
_ALWAYS = "planb.statewatch.always_push"
_interrupted = False


def interrupted() -> None:
    """Ctrl-C stopped the command: do not make the user wait for a push."""
    global _interrupted
    _interrupted = True


def watch(ctx: typer.Context) -> None:
    """Arrange for the copy to be pushed when the subcommand changed the state."""
    command = ctx.invoked_subcommand
    if command is None or command in SKIPPED or ctx.resilient_parsing:
        return
    try:
        site = options(ctx).load_site()
        from planb.statecopy.push import auto_push_enabled, state_picture

        if not auto_push_enabled(site):
            return
        before = state_picture(site)
    except Exception:  # noqa: BLE001 - no site, unreadable state: nothing to watch
        log.debug("not watching the state for changes", exc_info=True)
        return
    ctx.call_on_close(lambda: _after(site, before, force=bool(ctx.meta.get(_ALWAYS))))


def always_push(ctx: typer.Context) -> None:
    """The running command pushes the copy at its end even if the state did not change
    (``deploy``: a host it just built has no copy yet). Its ``--help`` never gets here."""
    ctx.meta[_ALWAYS] = True


def _after(site: SiteConfig, before: object, *, force: bool) -> None:
    from planb.statecopy.push import changed, push

    if _interrupted:
        if changed(site, before):  # type: ignore[arg-type]
            err_console.print("note: interrupted: the copy of the controller's state was "
                              "not pushed ('planb controller push' does it)",
                              highlight=False)
        return
    try:
        if not force and not changed(site, before):  # type: ignore[arg-type]
            return
        results = push(site)
    except KeyboardInterrupt:
        err_console.print("note: push of the copy interrupted ('planb controller push' "
                          "does it)", highlight=False)
        return
    except Exception as exc:  # noqa: BLE001 - the command's own result stands
        log.debug("push failed", exc_info=True)
        err_console.print(f"[yellow]warning:[/] the copy of the controller's state was not "
                          f"pushed: {escape(str(exc))} ('planb controller push' retries)",
                          highlight=False)
        return
    for result in results:
        if not result.ok:
            err_console.print(f"[yellow]warning:[/] the copy of the controller's state did "
                              f"not reach {escape(result.host)}: {escape(result.error)} "
                              "('planb controller push' retries)", highlight=False)
