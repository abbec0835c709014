"""Where the break-glass command keeps and finds things on a messaging host.

The roles write ``/etc/planb/mode`` (the switch planb's Synapse module reads) and
``/etc/planb/public_message`` (the welcome page's text while active); the backup role
leaves the active timer drop-in's source in ``/etc/planb/backup-timer-active.conf``.
The break-glass command's own files:

- ``/etc/planb/breakglass/`` (0700): ``site.json`` (the site's values for the
  announcement, written by deploy), ``templates/`` (the site's own announcement
  template, if any), ``signing.key`` (made on the host, never leaves it) and
  ``signing.pub`` (deploy copies it to the controller's ``keys/hosts/<host>.pub``).
- ``/var/lib/planb/breakglass/`` (0700): ``audit.log`` and ``audit-head.json`` (the
  controller's audit format), ``journals/`` (planb's journal store, its own chain),
  ``state.json`` (the last break-glass transition).
- ``/var/lib/planb/failover.lock``: held by whoever is switching (this command, or the
  controller's ``planb failover`` over SSH).

Everything hangs off ``root`` so tests run the command on a temporary folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Installed by the role breakglass; root's break-glass key runs it (forced command).
COMMAND = "/opt/planb/bin/planb-breakglass"
BACKUP_SERVICE = "planb-backup"


@dataclass(frozen=True)
class HostPaths:
    """The break-glass command's paths under ``root`` (``/`` on a real host)."""

    root: Path = Path("/")

    def _at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def mode_file(self) -> Path:
        return self._at("/etc/planb/mode")

    @property
    def public_message(self) -> Path:
        return self._at("/etc/planb/public_message")

    @property
    def config_dir(self) -> Path:
        return self._at("/etc/planb/breakglass")

    @property
    def site_file(self) -> Path:
        return self.config_dir / "site.json"

    @property
    def templates(self) -> Path:
        return self.config_dir / "templates"

    @property
    def signing_key(self) -> Path:
        return self.config_dir / "signing.key"

    @property
    def public_key(self) -> Path:
        return self.config_dir / "signing.pub"

    @property
    def state_dir(self) -> Path:
        return self._at("/var/lib/planb/breakglass")

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "audit.log"

    @property
    def journals(self) -> Path:
        return self.state_dir / "journals"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def lock(self) -> Path:
        return self._at("/var/lib/planb/failover.lock")

    @property
    def backup_dropin_source(self) -> Path:
        return self._at("/etc/planb/backup-timer-active.conf")

    @property
    def backup_dropin(self) -> Path:
        return self._at(f"/etc/systemd/system/{BACKUP_SERVICE}.timer.d/planb-active.conf")
