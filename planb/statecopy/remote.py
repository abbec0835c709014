"""Whether each host's copy is the controller's state now (``planb controller status``,
and the ``controller.copy`` check of ``planb verify``)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from planb.config import SiteConfig
from planb.inventory import InventoryHost
from planb.statecopy.archive import MANIFEST, digests
from planb.statecopy.crypto import load_copy_key
from planb.statecopy.push import REMOTE_COPY, copy_targets, ssh, ssh_error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyStatus:
    """One host's copy, compared with the controller's state."""

    host: str
    present: bool
    created_at: str | None = None
    encrypted: bool = False
    current: bool = False
    detail: str = ""

    def as_json(self) -> dict[str, object]:
        return {"host": self.host, "present": self.present, "created_at": self.created_at,
                "encrypted": self.encrypted, "current": self.current, "detail": self.detail}


def remote_manifest(host: InventoryHost, timeout: float = 60) -> dict[str, object] | None:
    """The manifest of the copy ``host`` keeps, or None when it keeps none."""
    proc = ssh(host, f"test -f {REMOTE_COPY} || exit 3; tar -xOf {REMOTE_COPY} {MANIFEST}",
               timeout=timeout)
    if proc.returncode == 3:
        return None
    if proc.returncode != 0:
        raise OSError(ssh_error(host, proc))
    data = json.loads(proc.stdout)
    return data if isinstance(data, dict) else None


def compare(host: str, manifest: dict[str, object] | None, now: dict[str, str | None],
            passphrase_set: bool) -> CopyStatus:
    """A host's copy against the digests of the state now."""
    if manifest is None:
        return CopyStatus(host, False, detail="no copy of the controller's state on this host "
                          "('planb controller push')")
    created = str(manifest.get("created_at"))
    encrypted = bool(manifest.get("encrypted"))
    same = manifest.get("public_digest") == now["public_digest"] and \
        manifest.get("secrets_digest") == now["secrets_digest"]
    if same:
        detail = "the controller's state now" + ("" if encrypted else
                                                 ": public part only (no passphrase set: "
                                                 "'planb controller passphrase')")
    elif passphrase_set and not encrypted:
        detail = "public part only: made before the passphrase was set"
    else:
        detail = "older than the controller's state (the next planb command that changes "\
                 "it pushes, or 'planb controller push')"
    return CopyStatus(host, True, created, encrypted, same, detail)


def copy_status(site: SiteConfig) -> list[CopyStatus]:
    """Every host that keeps a copy, compared with the state now."""
    now = digests(site)
    passphrase_set = load_copy_key(site.state_dir) is not None
    rows = []
    for host in copy_targets(site):
        try:
            manifest = remote_manifest(host)
        except (OSError, ValueError) as exc:
            rows.append(CopyStatus(host.name, False, detail=f"cannot read its copy: {exc}"))
            continue
        rows.append(compare(host.name, manifest, now, passphrase_set))
    return rows
