"""The lab as a whole: bring its hosts up, report on them, tear everything down.

State is kept in ``<state_dir>/lab/``: ``lab.json`` (the topology that is up), the
SSH key Ansible uses, and ``hosts/<name>/`` per running host. The rootfs image is
shared by all sites (see :mod:`planb.lab.image`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from planb import state
from planb.config import SiteConfig
from planb.errors import LabError, UsageError
from planb.files import write_atomic
from planb.hostkeys import Key, KeyTarget, known_hosts_path, read_known_hosts, trust
from planb.lab import image, machines, network
from planb.lab.system import check_prerequisites, run
from planb.lab.topology import PROXY, LabHost, Topology, build_topology

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class HostStatus:
    """What ``planb lab status`` shows for one host."""

    name: str
    address: str
    groups: tuple[str, ...]
    process: str  # running | stopped
    #: systemctl is-system-running, or unreachable / stopped / powered off (disk kept)
    system: str


@dataclass(frozen=True)
class Rebuilt:
    """A host stood up afresh by :meth:`Lab.rebuild_host`."""

    host: LabHost
    #: systemd's state once booted (running or degraded).
    system: str
    #: What happened to its known_hosts entry: replaced, recorded or unchanged.
    known_hosts: str
    old_keys: tuple[Key, ...]
    new_keys: tuple[Key, ...]


class Lab:
    """The lab of one site."""

    def __init__(self, site: SiteConfig) -> None:
        if site.lab is None:
            raise UsageError(
                f"site {site.site!r} ({site.source}) has no 'lab:' section: planb lab only "
                "manages lab sites",
                hint="run 'planb lab up' in an empty folder to create a lab site",
            )
        self.site = site
        self.config = site.lab
        self.dir = site.state_dir / "lab"
        self.key = self.dir / "id_ed25519"

    # -- state ---------------------------------------------------------------------

    @property
    def _state_file(self) -> Path:
        return self.dir / "lab.json"

    def topology(self, split: bool | None = None) -> Topology:
        """The topology that is up, else the one the config (or ``split``) asks for."""
        recorded = self._recorded()
        if recorded is not None:
            return recorded
        chosen = self.config.split if split is None else split
        return build_topology(self.config.subnet, self.config.bridge, split=chosen,
                              backup=self.site.backup.enabled, ha=self.config.ha)

    def _recorded(self) -> Topology | None:
        try:
            data = json.loads(self._state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        hosts = tuple(LabHost(h["name"], h["address"], tuple(h["groups"]), h.get("machine", ""))
                      for h in data["hosts"])
        return Topology(subnet=data["subnet"], bridge=data["bridge"], hosts=hosts)

    def _record(self, topology: Topology) -> None:
        write_atomic(self._state_file, json.dumps(asdict(topology), indent=2) + "\n")

    def host_paths(self, name: str) -> machines.HostPaths:
        return machines.HostPaths(self.dir / "hosts" / name)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LabError("another 'planb lab' command is running for this site") from None
            yield

    # -- up ------------------------------------------------------------------------

    def up(self, *, split: bool | None = None, progress: Progress = log.info) -> Topology:
        """Boot every host (safe to repeat: running hosts are left as they are)."""
        check_prerequisites()
        with self._locked():
            recorded = self._recorded()
            wanted = build_topology(self.config.subnet, self.config.bridge,
                                    split=self.config.split if split is None else split,
                                    backup=self.site.backup.enabled, ha=self.config.ha)
            if recorded is not None and recorded != wanted and (
                split is not None or (recorded.bridge, recorded.subnet)
                != (wanted.bridge, wanted.subnet)
            ):
                raise UsageError(
                    f"the lab is already up on {recorded.bridge} ({recorded.subnet}) with hosts "
                    f"{', '.join(h.name for h in recorded.hosts)}, not as now asked",
                    hint="run 'planb lab down' first to change its shape or network",
                )
            topology = recorded or wanted
            self._claim_bridge(topology.bridge)
            if not image.is_built():
                progress("building the Debian 12 image with debootstrap (once, about a minute)")
            rootfs = image.ensure_image()
            self._ensure_key()
            network.ensure_bridge(topology)
            self._record(topology)
            public_key = self.key.with_suffix(".pub").read_text(encoding="utf-8")
            etc_hosts = self._etc_hosts(topology)
            for host in topology.hosts:
                paths = self.host_paths(host.name)
                if machines.nspawn_pid(paths) is not None:
                    continue
                progress(f"booting {host.name} ({host.address})")
                if not paths.stopped_marker.exists():  # a host powered off keeps its disk
                    machines.stop(host, paths)  # clear what a crashed run left behind
                network.delete_link(host.veth)
                machines.prepare(host, topology, rootfs, paths, public_key, etc_hosts)
                machines.start(host, topology, paths)
            for host in topology.hosts:
                progress(f"waiting for {host.name} to finish booting")
                paths = self.host_paths(host.name)
                state = machines.wait_ready(host, paths, self.key)
                paths.stopped_marker.unlink(missing_ok=True)
                log.info("%s is %s", host.name, state)
            self._trust(topology)
            return topology

    def _trust(self, topology: Topology) -> None:
        """Record the hosts' SSH keys in the site's known_hosts, as production does on
        first contact; a host booted afresh has new keys, which replace the old."""
        results = trust(known_hosts_path(self.site),
                        [KeyTarget(h.name, h.address) for h in topology.hosts], replace=True)
        silent = [r.target.name for r in results if r.outcome == "unreachable"]
        if silent:
            raise LabError(f"no SSH host key read from {', '.join(silent)}",
                           hint="see 'planb lab status'")

    # -- one host: power off and on, disk kept ----------------------------------------

    def _up_host(self, name: str) -> tuple[Topology, LabHost]:
        topology = self._recorded()
        if topology is None:
            raise LabError("the lab is not up", hint="run 'planb lab up'")
        try:
            return topology, topology.host(name)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None

    def stop_host(self, name: str, *, timeout: float = 60, abrupt: bool = False) -> bool:
        """Power a host off cleanly (as 'poweroff' would), keeping its disk and address;
        ``abrupt``: at once, as a power cut (the container killed, nothing shut down).

        Returns False when it was not running (nothing done). Its folder is marked
        stopped, so 'status' shows it stopped and 'start_host' or 'up' boots it again
        with its files as they were; 'down' removes it like any host.
        """
        _, host = self._up_host(name)
        check_prerequisites()
        with self._locked():
            paths = self.host_paths(name)
            if machines.nspawn_pid(paths) is None:
                return False
            if not machines.poweroff(host, paths, timeout=timeout, abrupt=abrupt) \
                    and not abrupt:
                log.warning("%s was killed after %.0f s instead of shutting down", name, timeout)
            network.delete_link(host.veth)
            return True

    def start_host(self, name: str, *, timeout: float = 120) -> str:
        """Boot a stopped host again (same disk, same address); wait until it is ready.

        Returns systemd's state ('running' or 'degraded'); a running host is left as
        it is. A host whose folder is gone (never booted, or 'down') is refused.
        """
        topology, host = self._up_host(name)
        check_prerequisites()
        with self._locked():
            paths = self.host_paths(name)
            if machines.nspawn_pid(paths) is None:
                if not paths.upper.is_dir():
                    raise LabError(f"lab host {name} has no disk to start from",
                                   hint="run 'planb lab up' to boot it afresh")
                public_key = self.key.with_suffix(".pub").read_text(encoding="utf-8")
                network.ensure_bridge(topology)
                network.delete_link(host.veth)
                machines.prepare(host, topology, image.ensure_image(), paths, public_key,
                                 self._etc_hosts(topology))
                machines.start(host, topology, paths)
            state = machines.wait_ready(host, paths, self.key, timeout=timeout)
            paths.stopped_marker.unlink(missing_ok=True)
            return state

    # -- one host: lost, then rebuilt from nothing ------------------------------------

    def destroy_host(self, name: str) -> bool:
        """Kill a host at once and remove its disk: a lost machine (not a power-off).

        Returns whether it was running. Its name and address stay in the topology, so
        :meth:`rebuild_host` can stand up a new one in its place.
        """
        _, host = self._up_host(name)
        check_prerequisites()
        with self._locked():
            running = machines.destroy(host, self.host_paths(name))
            network.delete_link(host.veth)
            return running

    def rebuild_host(self, name: str, *, timeout: float = 120) -> Rebuilt:
        """Boot a new host from the lab image in place of a destroyed one: same name and
        address, a new disk and NEW SSH host keys, which replace the old ones in the
        site's known_hosts (as 'planb hosts trust --replace NAME' does on a real site).

        A host that still runs (or was powered off with its disk) is refused.
        """
        topology, host = self._up_host(name)
        check_prerequisites()
        path = known_hosts_path(self.site)
        old = read_known_hosts(path).get(host.address, set())
        with self._locked():
            paths = self.host_paths(name)
            if machines.nspawn_pid(paths) is not None or paths.upper.is_dir():
                raise LabError(f"lab host {name} still has its disk: destroy it first",
                               hint="the drill 'fallback-lost' destroys it with "
                                    "lab.destroy_host")
            public_key = self.key.with_suffix(".pub").read_text(encoding="utf-8")
            network.ensure_bridge(topology)
            network.delete_link(host.veth)
            machines.prepare(host, topology, image.ensure_image(), paths, public_key,
                             self._etc_hosts(topology))
            machines.start(host, topology, paths)
            state = machines.wait_ready(host, paths, self.key, timeout=timeout)
        [result] = trust(path, [KeyTarget(host.name, host.address)], replace=True)
        if result.outcome == "unreachable":
            raise LabError(f"no SSH host key read from the new {name}")
        return Rebuilt(host, state, result.outcome, tuple(sorted(old)), result.keys)

    def _bridge_owner_file(self, bridge: str) -> Path:
        return state.planb_home() / "bridges" / bridge

    def _claim_bridge(self, bridge: str) -> None:
        """Refuse to share a bridge with another site's running lab; else record ours."""
        owner_file = self._bridge_owner_file(bridge)
        try:
            owner = Path(owner_file.read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            owner = None
        if owner is not None and owner != self.dir and (owner / "lab.json").exists():
            raise LabError(
                f"bridge {bridge} is used by another lab ({owner.parent.parent})",
                hint="run 'planb lab down' there, or give this lab its own lab.bridge and "
                "lab.subnet in planb.yml",
            )
        owner_file.parent.mkdir(parents=True, exist_ok=True)
        owner_file.write_text(f"{self.dir}\n", encoding="utf-8")

    def _ensure_key(self) -> None:
        if self.key.exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"planb-lab-{self.site.site}",
             "-f", str(self.key)])

    def _etc_hosts(self, topology: Topology) -> str:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for host in topology.hosts:
            lines.append(f"{host.address}\t{host.name}.lab {host.name}")
        proxy = next(h for h in topology.hosts if PROXY in h.groups)
        lines.append(f"{proxy.address}\t{self.site.matrix.public_hostname} "
                     f"{self.site.matrix.server_name}")
        return "\n".join(lines) + "\n"

    # -- status ----------------------------------------------------------------------

    def status(self) -> list[HostStatus]:
        """Each host: address, whether its container runs, and what systemd says."""
        recorded = self._recorded()
        if recorded is None:
            return []
        result = []
        for host in recorded.hosts:
            paths = self.host_paths(host.name)
            running = machines.nspawn_pid(paths) is not None
            if running:
                system = machines.system_state(self.key, host.address)
            else:
                system = "powered off (disk kept)" if paths.stopped_marker.exists() else "stopped"
            result.append(HostStatus(host.name, host.address, host.groups,
                                     "running" if running else "stopped", system))
        return result

    # -- down ------------------------------------------------------------------------

    def down(self, *, progress: Progress = log.info) -> None:
        """Stop every host and remove the bridge, veths, mounts and host folders."""
        check_prerequisites()
        with self._locked():
            topology = self.topology()
            names = {h.name: h for h in topology.hosts}
            # Also sweep host folders a changed topology may have left.
            prefix = f"p{topology.bridge[-1]}-"
            for leftover in sorted((self.dir / "hosts").glob("*")):
                names.setdefault(leftover.name,
                                 LabHost(leftover.name, "", (), f"{prefix}{leftover.name}"))
            for host in names.values():
                progress(f"stopping {host.name}")
                machines.stop(host, self.host_paths(host.name))
                network.delete_link(host.veth)
            network.delete_bridge(topology.bridge)
            owner_file = self._bridge_owner_file(topology.bridge)
            if owner_file.exists() and Path(owner_file.read_text().strip()) == self.dir:
                owner_file.unlink()
            hosts_dir = self.dir / "hosts"
            if hosts_dir.exists():
                hosts_dir.rmdir()
            self._state_file.unlink(missing_ok=True)

    # -- ssh -------------------------------------------------------------------------

    def ssh_argv(self, name: str, command: list[str] | None = None) -> list[str]:
        """The ssh command that opens a root shell (or runs ``command``) on a lab host."""
        topology = self._recorded()
        if topology is None:
            raise LabError("the lab is not up", hint="run 'planb lab up'")
        try:
            host = topology.host(name)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        argv = machines.ssh_argv(self.key, host.address, command)
        if command is None:
            argv.insert(1, "-t")
        return argv

    def run_on(self, name: str, command: list[str], timeout: float = 60
               ) -> subprocess.CompletedProcess[str]:
        """Run a command on a lab host over SSH and return its result (no check)."""
        return subprocess.run(self.ssh_argv(name, command), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
