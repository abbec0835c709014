"""The break-glass values the runbooks print: per fallback messaging host, its address,
the SSH host key fingerprints the site recorded, and the exact ``planb-breakglass``
commands, taken from :func:`planb.actions.breakglass.breakglass_command` (the commands
the ``controller-lost`` drill runs), plus the break-glass key's fingerprint.

Nothing here contacts a host; values that are not known yet are empty strings.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from planb.actions.breakglass import breakglass_command, public_key_path
from planb.actions.controller import restore_words
from planb.config import SiteConfig
from planb.errors import PlanbError
from planb.hostkeys import fingerprint, known_hosts_path, read_known_hosts
from planb.i18n import Translator
from planb.inventory import FALLBACK_MESSAGING, InventoryHost
from planb.reports.keys import fingerprint as signing_fingerprint
from planb.reports.keys import load_public_key
from planb.statecopy.hostjournals import host_key_path

log = logging.getLogger(__name__)

#: Where the runbook tells the administrator to put the key taken out of the safe.
KEY_FILE = "~/planb-breakglass"
#: Where the runbook rebuilds the controller on a fresh machine, with which SSH key (an
#: administrator's: the break-glass key only runs planb-breakglass) and passphrase file.
RESTORED_DIR = "/root/planb-site"
ADMIN_KEY = "ADMIN_SSH_KEY"
PASSPHRASE = "PASSPHRASE_FILE"


def key_fingerprint(path: Path) -> str:
    """``SHA256:...`` of an OpenSSH public key file ('' when missing or unreadable)."""
    try:
        fields = path.read_text(encoding="utf-8").split()
    except OSError:
        return ""
    return fingerprint((fields[0], fields[1])) if len(fields) >= 2 else ""


def _signing_fingerprint(path: Path) -> str:
    """The host signing key's fingerprint ('' until deploy exported it)."""
    if not path.is_file():
        return ""
    try:
        return signing_fingerprint(load_public_key(path))
    except PlanbError as exc:
        log.warning("host signing key %s unreadable: %s", path, exc.message)
        return ""


def breakglass_values(site: SiteConfig, inventory: Sequence[InventoryHost],
                      tr: Translator) -> dict[str, Any]:
    """``breakglass`` in the runbooks' values (see activate-failover)."""
    operator, reason = tr._("YOUR NAME"), tr._("THE REASON")
    known = read_known_hosts(known_hosts_path(site))
    hosts = []
    for host in inventory:
        if FALLBACK_MESSAGING not in host.groups:
            continue
        keys = sorted(fingerprint(k) for k in known.get(host.key_target.entry, set()))
        hosts.append({
            "name": host.name, "address": host.address, "host_keys": keys,
            # The key the host signs its break-glass journals with (deploy exports it).
            "signing_public": str(host_key_path(site.state_dir, host.name)),
            "signing_fingerprint": _signing_fingerprint(host_key_path(site.state_dir,
                                                                      host.name)),
            "rotate": breakglass_command(host, "rotate-key", operator=operator,
                                         reason=reason).printable(KEY_FILE),
            "status": breakglass_command(host, "status", json_out=False).printable(KEY_FILE),
            "activate": breakglass_command(host, "activate", operator=operator,
                                           reason=reason).printable(KEY_FILE),
            "deactivate": breakglass_command(host, "deactivate", operator=operator,
                                             reason=reason).printable(KEY_FILE),
        })
    public = public_key_path(site)
    messaging = [h for h in inventory if FALLBACK_MESSAGING in h.groups]
    restore = ("planb " + shlex.join(restore_words(
        site, messaging[0], into=RESTORED_DIR, key=ADMIN_KEY, passphrase_file=PASSPHRASE))
        if messaging else "")
    return {"key_file": KEY_FILE, "public_key": str(public),
            "fingerprint": key_fingerprint(public), "hosts": hosts,
            # On a fresh machine: the copy the controller pushed to the fallback host.
            "restore": restore, "restored_planb": f"planb -c {RESTORED_DIR}/planb.yml"}
