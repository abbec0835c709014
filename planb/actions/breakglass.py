"""The break-glass path: ``planb-breakglass`` on a fallback messaging host, reached over SSH
with the crisis cell's break-glass key only (planb's controller-side failover is not used).

:func:`breakglass_command` is the one place these commands are written: the
activate-failover runbook prints them (:meth:`BreakglassCommand.printable`, the key where
the administrator put it) and the ``controller-lost`` drill runs exactly them
(:meth:`BreakglassCommand.argv` with the site's recorded host keys, batch mode and no
ssh configuration or agent, so that nothing but the break-glass key can get in).

On the host the key may only run ``planb-breakglass`` (``restrict,command=`` in root's
authorized_keys), which reads the words after the address from ``SSH_ORIGINAL_COMMAND``:
``status --json``, ``activate --operator NAME --reason TEXT``, ``deactivate ...`` and
``rotate-key ...`` (a new signing key for the host's journals; the rotate-signing-key
runbook prints it).

The drill finds the private key in ``$PLANB_BREAKGLASS_KEY`` (the copy taken out of the
safe for the drill) unless a step names it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from planb.commands import last_line, run_command
from planb.config import SiteConfig
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult
from planb.errors import PlanbError, UsageError
from planb.hostkeys import known_hosts_path, ssh_options
from planb.inventory import FALLBACK_MESSAGING, InventoryHost, hosts_in
from planb.provisioning.deploy import BREAKGLASS_PUBLIC_KEY

log = logging.getLogger(__name__)

#: The account the break-glass key logs in as (its forced command runs as root).
BREAKGLASS_USER = "root"
#: Where a drill (or the bench) finds the break-glass private key.
KEY_ENV = "PLANB_BREAKGLASS_KEY"
Verb = Literal["status", "activate", "deactivate", "rotate-key"]
#: Characters a double-quoted shell word would still interpret.
_SHELL_ACTIVE = re.compile(r'["$`\\!]')
_PLAIN_PATH = re.compile(r"^~?[A-Za-z0-9_./-]+$")


@dataclass(frozen=True)
class BreakglassCommand:
    """One ``planb-breakglass`` call on one host, as ssh runs it."""

    host: str
    address: str
    port: int | None
    #: What planb-breakglass reads from SSH_ORIGINAL_COMMAND, word by word.
    words: tuple[str, ...]

    @property
    def remote(self) -> str:
        """The words as one string (ssh sends one string; the host splits it as a shell)."""
        return shlex.join(self.words)

    def _ssh(self, key: str) -> list[str]:
        args = ["ssh", "-i", key, "-o", "IdentitiesOnly=yes"]
        if self.port not in (None, 22):
            args += ["-p", str(self.port)]
        return args

    def _shown(self, key: str) -> str:
        """The ssh part for a shell; a plain ``~/...`` key path stays unquoted (so the
        shell expands it), anything else is quoted."""
        words = self._ssh(key)
        return " ".join(w if w == key and _PLAIN_PATH.match(w) else shlex.quote(w)
                        for w in words)

    def argv(self, key: str | Path, known_hosts: Path) -> list[str]:
        """What the drill runs: the printed command, plus no ssh configuration or agent,
        batch mode (never a prompt) and only the host keys the site recorded."""
        options = ["-F", "/dev/null", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
                   "-o", "ConnectTimeout=10", *ssh_options(known_hosts)]
        return [*self._ssh(str(key)), *options, f"{BREAKGLASS_USER}@{self.address}",
                self.remote]

    def printable(self, key: str) -> str:
        """The command as the runbook prints it, for a shell: ``key`` is where the
        administrator put the private key (a placeholder when not known)."""
        remote = self.remote
        quoted = f'"{remote}"' if not _SHELL_ACTIVE.search(remote) else shlex.quote(remote)
        return f"{self._shown(key)} {BREAKGLASS_USER}@{self.address} {quoted}"


def breakglass_hosts(site: SiteConfig) -> list[InventoryHost]:
    """The hosts that carry planb-breakglass: the fallback messaging hosts."""
    return list(hosts_in(site, FALLBACK_MESSAGING))


def breakglass_command(host: InventoryHost, verb: Verb, *, operator: str = "",
                       reason: str = "", json_out: bool = True,
                       drill: bool = False) -> BreakglassCommand:
    """The ``planb-breakglass`` command for ``verb`` on ``host`` (the one place it is
    written: runbook and drill both take it from here). ``json_out``: status as JSON
    (the drill reads it; a person reads the plain one). ``drill``: an activation for an
    exercise (the announcement says so) - the one word a drill adds."""
    if verb == "status":
        words: tuple[str, ...] = ("status", "--json") if json_out else ("status",)
    else:
        if not operator.strip() or not reason.strip():
            raise UsageError(f"break-glass {verb} needs an operator and a reason")
        words = (verb, "--operator", operator, "--reason", reason)
        if drill and verb == "activate":
            words += ("--drill",)
    return BreakglassCommand(host.name, host.address, host.ssh.port, words)


def public_key_path(site: SiteConfig) -> Path:
    """Where the controller keeps the break-glass key's public part."""
    return site.state_dir / BREAKGLASS_PUBLIC_KEY


def breakglass_key(explicit: str | None = None) -> Path:
    """The break-glass private key: ``explicit``, else ``$PLANB_BREAKGLASS_KEY``."""
    chosen = explicit or os.environ.get(KEY_ENV)
    if not chosen:
        raise UsageError("the break-glass private key is not given",
                         hint=f"set {KEY_ENV} to the key from the crisis cell's safe "
                         "('planb keys breakglass' made it)")
    path = Path(chosen).expanduser()
    if not path.is_file():
        raise UsageError(f"break-glass key {path}: no such file",
                         hint=f"set {KEY_ENV} to the key from the crisis cell's safe")
    return path


@dataclass(frozen=True)
class Ran:
    """What one break-glass command did on one host."""

    command: BreakglassCommand
    code: int
    stdout: str
    stderr: str


def run_breakglass(site: SiteConfig, command: BreakglassCommand, key: Path, *,
                   timeout: float) -> Ran:
    """Run ``command`` over SSH with ``key``; PlanbError when SSH itself refuses."""
    argv = command.argv(key, known_hosts_path(site))
    proc = run_command(argv, check=False, timeout=timeout,
                       what=f"planb-breakglass {command.words[0]} on {command.host}")
    if proc.returncode == 255:
        raise PlanbError(f"{command.host} ({command.address}) refused or could not be "
                         f"reached with the break-glass key {key}: {last_line(proc)}",
                         hint="is it the key from the safe, and did 'planb deploy' install "
                              "its public part?")
    return Ran(command, proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class HostState:
    """What ``planb-breakglass status --json`` says about one host."""

    host: str
    mode: str
    incident_id: str | None
    data: dict[str, Any]


def host_state(site: SiteConfig, host: InventoryHost, key: Path, *,
               timeout: float = 30) -> HostState:
    """The host's mode and incident, read with the break-glass key."""
    ran = run_breakglass(site, breakglass_command(host, "status"), key, timeout=timeout)
    if ran.code != 0:
        raise PlanbError(f"planb-breakglass status on {host.name} failed (exit {ran.code}): "
                         f"{(ran.stderr or ran.stdout).strip()[-300:]}")
    try:
        data = json.loads(ran.stdout)
    except ValueError:
        raise PlanbError(f"planb-breakglass status on {host.name} did not print JSON: "
                         f"{ran.stdout.strip()[:200]!r}") from None
    if not isinstance(data, dict) or data.get("mode") not in ("standby", "active"):
        raise PlanbError(f"planb-breakglass status on {host.name}: no mode in its answer")
    recorded = data.get("breakglass_state")
    recorded = recorded if isinstance(recorded, dict) else {}
    # The incident is that of the last break-glass activation, while it is still active.
    incident = data.get("incident_id") or (
        recorded.get("incident_id") if data["mode"] == "active"
        and recorded.get("mode") == "active" else None)
    return HostState(host.name, data["mode"], str(incident) if incident else None, data)


# -- the actions ----------------------------------------------------------------------

@dataclass(frozen=True)
class StatusArgs:
    """``breakglass.status``: the mode every break-glass host must say (None: any)."""

    expect: Literal["standby", "active"] | None = None
    key: str | None = None


@dataclass(frozen=True)
class SwitchArgs:
    """``breakglass.activate`` / ``breakglass.deactivate``: why, and which key."""

    reason: str = "drill"
    key: str | None = None

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError("reason must not be empty")


def _targets(ctx: ActionContext) -> list[InventoryHost]:
    hosts = breakglass_hosts(ctx.site)
    if not hosts:
        raise PlanbError(f"no host in group {FALLBACK_MESSAGING}: nothing carries "
                         "planb-breakglass")
    return hosts


def status(ctx: ActionContext, args: StatusArgs) -> ActionResult:
    """Each break-glass host's mode, as the host itself says it."""
    key = breakglass_key(args.key)
    lines, ok = [], True
    for host in _targets(ctx):
        state = host_state(ctx.site, host, key, timeout=ctx.remaining())
        ok = ok and (args.expect is None or state.mode == args.expect)
        lines.append(f"{host.name}: {state.mode}"
                     + (f" (incident {state.incident_id})" if state.incident_id else "")
                     + ("" if args.expect in (None, state.mode)
                        else f", expected {args.expect}"))
    return ActionResult(ok, "\n".join(lines))


def _switch(ctx: ActionContext, args: SwitchArgs, verb: Verb) -> ActionResult:
    key = breakglass_key(args.key)
    want = "active" if verb == "activate" else "standby"
    lines, ok = [], True
    for host in _targets(ctx):
        if verb == "deactivate":  # restore runs it whatever happened: standby is fine
            state = host_state(ctx.site, host, key, timeout=ctx.remaining())
            if state.mode == want:
                lines.append(f"{host.name}: already {want}, nothing to do")
                continue
        command = breakglass_command(host, verb, operator=ctx.operator,
                                     reason=f"{args.reason} ({ctx.purpose})", drill=True)
        ran = run_breakglass(ctx.site, command, key, timeout=ctx.remaining())
        lines.append(f"{host.name}: ran {command.printable(str(key))}")
        lines += [f"  {line}" for line in (ran.stdout + ran.stderr).strip().splitlines()[-15:]]
        if ran.code != 0:
            ok = False
            lines.append(f"{host.name}: planb-breakglass {verb} exited {ran.code}")
            continue
        after = host_state(ctx.site, host, key, timeout=ctx.remaining())
        ok = ok and after.mode == want
        lines.append(f"{host.name}: now {after.mode}"
                     + (f" (incident {after.incident_id})" if after.incident_id else ""))
    return ActionResult(ok, "\n".join(lines))


def activate(ctx: ActionContext, args: SwitchArgs) -> ActionResult:
    """Activate every break-glass host with planb-breakglass over SSH (key only)."""
    return _switch(ctx, args, "activate")


def deactivate(ctx: ActionContext, args: SwitchArgs) -> ActionResult:
    """Put every break-glass host back in standby (a host already in standby is left)."""
    return _switch(ctx, args, "deactivate")


def register_breakglass_actions(registry: ActionRegistry) -> None:
    """Register ``breakglass.status``, ``breakglass.activate`` and ``breakglass.deactivate``."""
    registry.action("breakglass.status", summary="what planb-breakglass on the fallback "
                    "host says (over SSH with the break-glass key)", args=StatusArgs,
                    timeout=30)(status)
    registry.action("breakglass.activate", summary="activate the fallback with "
                    "planb-breakglass on the host (break-glass key only, no controller)",
                    args=SwitchArgs, timeout=300)(activate)
    registry.action("breakglass.deactivate", summary="put the fallback back in standby with "
                    "planb-breakglass on the host", args=SwitchArgs, timeout=300)(deactivate)
