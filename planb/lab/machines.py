"""One lab host: an overlay on the image, booted by systemd-nspawn with systemd as PID 1.

Layout of a host folder (under ``<state_dir>/lab/hosts/<name>/``): ``upper`` and
``work`` (the overlay's writable layers), ``root`` (the mounted overlay),
``nspawn.pid`` and ``console.log``. Stopping a host shuts it down cleanly, unmounts
the overlay and removes the folder, so nothing is left behind. Powering a host off
(:func:`poweroff`) shuts it down the same way but keeps ``upper`` (its disk) and marks
the folder ``stopped``: booting it again (:func:`prepare`, :func:`start`) finds its
files, services and data as they were. Destroying it (:func:`destroy`) kills it at once
and removes its folder, disk included, as a machine that is lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from planb.errors import LabError
from planb.lab.system import run
from planb.lab.topology import LabHost, Topology
from planb.polling import poll_until

log = logging.getLogger(__name__)

NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
SSH_OPTIONS = (
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=3",
)


@dataclass(frozen=True)
class HostPaths:
    """Where one host's files are."""

    base: Path

    @property
    def upper(self) -> Path:
        return self.base / "upper"

    @property
    def work(self) -> Path:
        return self.base / "work"

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def pid_file(self) -> Path:
        return self.base / "nspawn.pid"

    @property
    def console_log(self) -> Path:
        return self.base / "console.log"

    @property
    def stopped_marker(self) -> Path:
        """Present while the host is powered off with its disk kept."""
        return self.base / "stopped"


def is_mounted(path: Path) -> bool:
    """Whether ``path`` is a mount point (read from /proc/self/mounts)."""
    target = str(path.resolve()) if path.exists() else str(path)
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return any(line.split()[1] == target for line in mounts)


def nspawn_pid(paths: HostPaths) -> int | None:
    """The pid of the host's systemd-nspawn if it is still running."""
    try:
        pid = int(paths.pid_file.read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if not cmdline and _alive(pid):
            # Just after exec the kernel has not set the new arguments yet (reading the
            # host right after booting it saw an empty cmdline); the name is set by then.
            cmdline = Path(f"/proc/{pid}/comm").read_bytes().strip()
    except FileNotFoundError:
        return None
    if not cmdline.split(b"\0")[0].endswith(b"systemd-nspawn"):
        return None  # the pid was reused by something else, or it is a zombie
    return pid


def prepare(host: LabHost, topology: Topology, rootfs: Path, paths: HostPaths,
            public_key: str, etc_hosts: str) -> None:
    """Mount the host's overlay and write its identity: name, address, keys."""
    for folder in (paths.upper, paths.work, paths.root):
        folder.mkdir(parents=True, exist_ok=True)
    if not is_mounted(paths.root):
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={rootfs},upperdir={paths.upper},workdir={paths.work}", str(paths.root)])
    root = paths.root
    _write(root / "etc/hostname", f"{host.name}\n")
    _write(root / "etc/hosts", etc_hosts)
    machine_id = root / "etc/machine-id"
    if not machine_id.read_text(encoding="utf-8").strip():
        _write(machine_id, f"{uuid.uuid4().hex}\n")
    _write(root / "etc/systemd/network/10-planb-host0.network",
           "# Written by planb lab: the host's fixed lab address, no gateway (no way out).\n"
           f"[Match]\nName=host0\n\n[Network]\nAddress={host.address}/{topology.prefixlen}\n"
           "LinkLocalAddressing=no\nIPv6AcceptRA=no\n")
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(ssh_dir / "authorized_keys", f"{public_key.strip()}\n", mode=0o600)
    if not (root / "etc/ssh/ssh_host_ed25519_key").exists():
        run(["ssh-keygen", "-A", "-f", str(root)])


def _write(path: Path, content: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    os.chmod(path, mode)


def start(host: LabHost, topology: Topology, paths: HostPaths) -> int:
    """Boot the host in the background; return systemd-nspawn's pid."""
    argv = [
        "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--boot",
        f"--machine={host.machine or host.name}", f"--directory={paths.root}",
        f"--network-bridge={topology.bridge}",
        "--timezone=off", "--resolv-conf=off", "--link-journal=no", "--console=passive",
    ]
    log.info("booting %s (%s)", host.name, host.address)
    with open(paths.console_log, "ab") as console:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=console,
                                start_new_session=True)
    paths.pid_file.write_text(f"{proc.pid}\n", encoding="utf-8")
    return proc.pid


def ssh_argv(key: Path, address: str, command: list[str] | None = None) -> list[str]:
    """The ssh command line that reaches a lab host as root with the lab key.

    ``command`` is a list of arguments, quoted for the remote shell (ssh itself
    would join them with spaces and let the remote shell split them again); a
    single string is passed as it is, as a shell snippet (``"cd /tmp && ls"``).
    """
    if not command:
        remote: list[str] = []
    elif len(command) == 1:
        remote = command
    else:
        remote = [shlex.join(command)]
    return ["ssh", "-i", str(key), *SSH_OPTIONS, f"root@{address}", *remote]


def system_state(key: Path, address: str, *, wait: bool = False, timeout: float = 10) -> str:
    """``systemctl is-system-running`` on the host over SSH, or ``unreachable``."""
    command = ["systemctl", "is-system-running"] + (["--wait"] if wait else [])
    try:
        proc = subprocess.run(ssh_argv(key, address, command), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return "unreachable"
    if proc.returncode == 255:
        return "unreachable"
    return proc.stdout.strip() or "unknown"


def wait_ready(host: LabHost, paths: HostPaths, key: Path, timeout: float = 120) -> str:
    """Wait until sshd answers and systemd has finished booting; return the state."""

    def state(left: float) -> str:
        if nspawn_pid(paths) is None:
            tail = _tail(paths.console_log)
            raise LabError(f"lab host {host.name} stopped while booting: {tail}")
        return system_state(key, host.address, wait=True, timeout=max(5.0, left))

    polled = poll_until(state, lambda s: s in ("running", "degraded"), timeout=timeout,
                        interval=0.5)
    if polled.ok:
        return polled.value
    raise LabError(f"lab host {host.name} ({host.address}) not reachable over SSH after "
                   f"{timeout:.0f} s", hint=f"see {paths.console_log}")


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "no console output"
    return " | ".join(text[-lines:]) or "no console output"


def stop(host: LabHost, paths: HostPaths, *, timeout: float = 30) -> None:
    """Shut the host down, unmount its overlay and remove its folder and veth."""
    _shutdown(host, paths, timeout)
    if paths.base.exists():
        shutil.rmtree(paths.base)


def poweroff(host: LabHost, paths: HostPaths, *, timeout: float = 60,
             abrupt: bool = False) -> bool:
    """Shut the host down cleanly and unmount its overlay, keeping its disk; ``abrupt``:
    kill it at once instead (the power cut: no service stops cleanly).

    Returns whether the shutdown was orderly (False: it had to be killed). The host
    folder is marked ``stopped``; :func:`prepare` and :func:`start` boot it again.
    """
    paths.stopped_marker.write_text("powered off by planb lab, disk kept\n", encoding="utf-8")
    orderly = _shutdown(host, paths, timeout, abrupt=abrupt) and not abrupt
    paths.pid_file.unlink(missing_ok=True)
    return orderly


def destroy(host: LabHost, paths: HostPaths) -> bool:
    """Kill the host at once (no shutdown: as a machine that dies), unmount its overlay
    and remove its folder, disk included. Returns whether it was running."""
    running = nspawn_pid(paths) is not None
    _shutdown(host, paths, 0, abrupt=True)
    if paths.base.exists():
        shutil.rmtree(paths.base)
    return running


def _shutdown(host: LabHost, paths: HostPaths, timeout: float, *, abrupt: bool = False
              ) -> bool:
    """Stop the container (SIGTERM, then SIGKILL; ``abrupt``: SIGKILL to the whole tree
    at once) and unmount its overlay."""
    pid = nspawn_pid(paths)
    orderly = True
    if pid is not None and abrupt:
        log.info("killing %s", host.name)
        _kill_tree(pid)
        _wait_gone(pid, 10)
    elif pid is not None:
        log.info("stopping %s", host.name)
        # systemd-nspawn turns SIGTERM into an orderly shutdown of the container.
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            log.warning("%s did not shut down in %.0f s; killing it", host.name, timeout)
            orderly = False
            _kill_tree(pid)
            _wait_gone(pid, 10)
    if is_mounted(paths.root):
        proc = run(["umount", str(paths.root)], check=False)
        if proc.returncode != 0:
            run(["umount", "--lazy", str(paths.root)])
    leftover = NSPAWN_PROPAGATE / (host.machine or host.name)
    if leftover.is_dir():
        shutil.rmtree(leftover, ignore_errors=True)
    return orderly


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def _kill_tree(pid: int) -> None:
    for child in _children(pid):
        _kill_tree(child)
    _signal(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    def gone(_left: float) -> bool:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return not _alive(pid)
        return waited == pid

    return poll_until(gone, bool, timeout=timeout, interval=0.2).ok
