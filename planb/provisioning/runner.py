"""Run one playbook with ansible-runner and turn the run into a :class:`PlaybookResult`.

This is the only module that imports ``ansible_runner``. Each run gets its own
``private_data_dir`` (``<state_dir>/runs/<UTC time>-<playbook>/``) whose
``artifacts/`` are kept: Ansible's stdout, one JSON file per event, status and rc,
plus planb's ``result.json``.

Secrets: never pass them in ``extravars`` or the environment — both end up on the
command line or in the artifacts. Secrets live in the site's vault
(``inventories/<site>/group_vars/all/vault.yml``), which Ansible reads itself; tasks
that handle them must say ``no_log: true`` so their results are censored in events.
The environment planb starts Ansible with is recorded in the artifacts with only the
variables planb set; every other value is hidden.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import planb
from planb.errors import ConfigError, PlanbError, PrerequisiteError, UsageError
from planb.files import write_atomic
from planb.hostkeys import ssh_options
from planb.provisioning.results import EventTally, PlaybookResult, ProgressEvent, Status

log = logging.getLogger(__name__)

ROLES_PATH = planb.PLAYBOOKS_DIR / "roles"
#: Name of the artifacts sub-folder inside a run dir (ansible-runner's "ident").
ARTIFACTS_IDENT = "ansible"
FORKS = 10
#: How often (seconds) ansible-runner polls the cancel callback.
_POLL_S = 0.25
_STATUSES: tuple[Status, ...] = ("successful", "failed", "canceled", "timeout")
_KEPT_ENV = ("PATH", "HOME", "LANG", "USER")


#: Ansible's own default ssh_args, kept in front of the host key options.
_SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=60s"


def ansible_env(known_hosts: Path | None = None) -> dict[str, str]:
    """Environment planb gives Ansible: roles path, host keys checked, plain readable output.

    Host keys are always checked (never prompted for). With ``known_hosts`` (the site's,
    :func:`planb.hostkeys.known_hosts_path`) only its keys are accepted: the options go
    in ssh_args, which Ansible puts before the inventory's ``ansible_ssh_common_args``,
    and ssh keeps the first value of an option, so an inventory's old
    ``StrictHostKeyChecking=no`` cannot turn the check off. PATH starts with planb's own
    environment, so its ``ansible-playbook`` is the one run.
    """
    ssh_args = [_SSH_ARGS, shlex.join(ssh_options(known_hosts))] if known_hosts else [_SSH_ARGS]
    return {
        "PATH": os.pathsep.join([_ansible_bin_dir(), os.environ.get("PATH", os.defpath)]),
        "ANSIBLE_ROLES_PATH": str(ROLES_PATH),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": " ".join(ssh_args),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_FORKS": str(FORKS),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml",
        "ANSIBLE_INTERPRETER_PYTHON": "auto_silent",
    }


def new_run_dir(state_dir: Path, playbook: Path, *, now: datetime | None = None) -> Path:
    """Create and return ``<state_dir>/runs/<UTC timestamp>-<playbook stem>/`` (mode 0700)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    runs = state_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        name = f"{stamp}-{playbook.stem}" + (f"-{n}" if n > 1 else "")
        try:
            (runs / name).mkdir(mode=0o700)
        except FileExistsError:
            continue
        return runs / name
    raise PlanbError(f"too many runs in {runs} within one second")


def _ansible_bin_dir() -> str:
    """The folder of ``ansible-playbook``: planb's own environment first, else PATH."""
    for path in (str(Path(sys.executable).parent), None):
        found = shutil.which("ansible-playbook", path=path)
        if found:
            return str(Path(found).parent)
    raise PrerequisiteError("ansible-playbook not found",
                            hint="install planb with its dependencies (ansible-core)")


def run_playbook(
    playbook: Path,
    inventory: Path,
    *,
    run_dir: Path,
    limit: str | None = None,
    tags: tuple[str, ...] = (),
    check: bool = False,
    extravars: Mapping[str, object] | None = None,
    verbose: bool = False,
    on_event: Callable[[ProgressEvent], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    timeout_s: int | None = None,
    known_hosts: Path | None = None,
) -> PlaybookResult:
    """Run ``playbook`` on ``inventory`` and return what happened; never raises for a failed play.

    ``known_hosts``: the site's recorded SSH host keys, the only ones accepted (see
    :func:`ansible_env`).

    ``run_dir`` is the run's private data dir (see :func:`new_run_dir`). ``on_event``
    receives progress from the runner's thread. ``cancel`` is polled a few times a
    second; when it returns True the run is stopped (status ``canceled``). Ctrl-C
    during the run does the same. ``verbose`` copies Ansible's own output to stderr.
    Raises :class:`UsageError`/:class:`ConfigError` for a missing playbook or inventory
    and :class:`PlanbError` if ansible-runner itself cannot start.
    """
    if not playbook.is_file():
        raise UsageError(f"playbook not found: {playbook}")
    if not inventory.exists():
        raise ConfigError("inventory not found", path=str(inventory),
                          hint="create it with 'planb init' or 'planb lab up'")
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tally, lock, stop = EventTally(), threading.Lock(), threading.Event()

    def handle(event: dict[str, Any]) -> bool:
        with lock:
            progress = tally.add(event)
        text = event.get("stdout")
        if verbose and text:
            sys.stderr.write(str(text).replace("\r\n", "\n") + "\n")
        if on_event is not None:
            try:
                on_event(progress)
            except Exception:  # a display bug must not kill the run
                log.exception("progress callback failed")
        return True

    def should_cancel() -> bool:
        return stop.is_set() or bool(cancel is not None and cancel())

    # ansible-runner reads its settings only from env/settings (none of them secret).
    (run_dir / "env").mkdir(exist_ok=True)
    (run_dir / "env" / "settings").write_text(
        json.dumps({"pexpect_timeout": _POLL_S, "suppress_ansible_output": True}) + "\n",
        encoding="utf-8")
    env = ansible_env(known_hosts)
    # SSH master connections of this run only: a master left by an earlier run (Ansible
    # keeps them 60 s in ~/.ansible/cp) would skip the host key check of this one.
    control_dir = Path(tempfile.mkdtemp(prefix="planb-cp-"))
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control_dir)
    kwargs: dict[str, Any] = {
        "private_data_dir": str(run_dir),
        "ident": ARTIFACTS_IDENT,
        "playbook": str(playbook.resolve()),
        "inventory": str(inventory.resolve()),
        "envvars": env,
        "extravars": dict(extravars) if extravars else None,
        "limit": limit,
        "tags": ",".join(tags) or None,
        "cmdline": "--check" if check else None,
        "timeout": timeout_s,
        "quiet": True,
        "suppress_env_files": True,
        "event_handler": handle,
        "cancel_callback": should_cancel,
    }
    log.info("running %s on %s (artifacts in %s)", playbook.name, inventory, run_dir)
    started = time.monotonic()
    try:
        runner = _run_in_thread(kwargs, stop)
    finally:
        _close_masters(control_dir)
    duration = time.monotonic() - started
    artifacts = Path(runner.config.artifact_dir)
    _hide_foreign_env(artifacts / "command", keep=set(env) | set(_KEPT_ENV))
    status: Status = runner.status if runner.status in _STATUSES else "failed"
    rc = runner.rc if isinstance(runner.rc, int) else -1
    with lock:
        result = tally.result(playbook=playbook, status=status, rc=rc, duration_s=duration,
                              artifacts_dir=artifacts, check=check)
    _write_result(run_dir / "result.json", result)
    log.info("%s: %s, rc %s, %d changed, %.1f s", playbook.name, status, rc,
             result.changed_total, duration)
    return result


def _run_in_thread(kwargs: dict[str, Any], stop: threading.Event) -> Any:
    """Run ansible-runner in a worker thread so Ctrl-C here can cancel it cleanly.

    ansible-playbook runs in its own session (a pty), so Ctrl-C reaches only us:
    we set ``stop``, the cancel callback tells the runner, which kills the run's
    process group and returns.
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()

    # Imported here, not at the top: 'planb --help' and the commands that never run a
    # playbook start without loading it.
    import ansible_runner

    def work() -> None:
        try:
            outcome["runner"] = ansible_runner.run(**kwargs)
        except BaseException as exc:  # reported below, in the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=work, name="ansible-runner", daemon=True)
    worker.start()
    # Poll with sleep rather than join(): a join interrupted by Ctrl-C can leave the
    # thread looking finished while it still runs (CPython 3.11).
    while not done.is_set():
        try:
            time.sleep(0.1)
        except KeyboardInterrupt:
            if not stop.is_set():
                log.warning("interrupted: stopping the Ansible run")
            stop.set()
    worker.join()
    if "error" in outcome:
        raise PlanbError(f"could not run ansible-playbook: {outcome['error']}") from None
    return outcome["runner"]


def _close_masters(control_dir: Path) -> None:
    """Stop the run's SSH master connections and remove their folder."""
    for socket in control_dir.iterdir():
        try:
            subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "planb"],
                           capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            log.warning("could not stop the SSH master connection %s", socket)
    shutil.rmtree(control_dir, ignore_errors=True)


def _hide_foreign_env(command_file: Path, *, keep: set[str]) -> None:
    """ansible-runner records the whole environment; keep planb's own values only."""
    try:
        recorded = json.loads(command_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    env = recorded.get("env") or {}
    recorded["env"] = {k: (v if k in keep else "(hidden by planb)") for k, v in env.items()}
    write_atomic(command_file, json.dumps(recorded, ensure_ascii=False), 0o600)


def _write_result(path: Path, result: PlaybookResult) -> None:
    path.write_text(json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
