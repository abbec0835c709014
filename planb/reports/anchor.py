"""Anchor a chain head outside its folder: the controller's syslog or systemd journal.

Whoever can write the journals folder can delete the newest journals and put back an
older ``head.json`` (it was signed, so it still verifies). The defence is a copy of
each new head kept where that person cannot reach it: a line in the system log of
the controller (forwarded, in most sites, to a log server), the ``report verify``
output and the printed runbooks. ``planb report verify --head HASH`` then fails when
the chain's head is not ``HASH``.

Logging is best effort: a controller without ``/dev/log`` and without a running
journald logs nothing, and never fails the write it anchors. One line per head::

    planb journal head: site=<folder> seq=12 sha256=<64 hex> file=000012-drill-0b6f1c2a.json
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Where syslog listens on a Linux host.
DEV_LOG = Path("/dev/log")
#: journald's stream socket; systemd-cat needs it.
JOURNALD_STDOUT = Path("/run/systemd/journal/stdout")
SYSLOG_TAG = "planb"
_LOG_USER, _LOG_NOTICE = 1, 5  # RFC 5424 facility "user", severity "notice"


@dataclass(frozen=True)
class SyslogAnchor:
    """Send head records to syslog (``address``, default ``/dev/log``), else systemd-cat.

    ``address`` names a Unix datagram socket; tests give their own.
    """

    address: Path | None = None

    def __call__(self, what: str, **fields: object) -> bool:
        """Log ``planb <what>: k=v ...``; True when some system log took the line."""
        text = f"{what}: " + " ".join(f"{key}={value}" for key, value in fields.items())
        target = self.address or DEV_LOG
        if target.exists():
            return _to_syslog(target, text)
        if self.address is None and JOURNALD_STDOUT.exists() and shutil.which("systemd-cat"):
            return _to_systemd_cat(text)
        log.debug("no system log on this host (%s, journald): head not anchored there", target)
        return False


def _to_syslog(address: Path, text: str) -> bool:
    """One RFC 3164 datagram (facility user, severity notice), as logger(1) sends it."""
    priority = _LOG_USER * 8 + _LOG_NOTICE
    message = f"<{priority}>{SYSLOG_TAG}[{os.getpid()}]: {text}".encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            sock.connect(str(address))
            sock.send(message)
    except OSError as exc:
        log.warning("could not log the head to %s: %s", address, exc)
        return False
    return True


def _to_systemd_cat(text: str) -> bool:
    try:
        done = subprocess.run(["systemd-cat", "-t", SYSLOG_TAG, "-p", "notice"],
                              input=text.encode("utf-8"), capture_output=True, timeout=5,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("could not log the head with systemd-cat: %s", exc)
        return False
    if done.returncode != 0:
        log.warning("systemd-cat failed (%d): %s", done.returncode,
                    done.stderr.decode("utf-8", "replace").strip()[:200])
        return False
    return True
