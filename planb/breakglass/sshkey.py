"""The break-glass SSH key pair: the private part goes to the crisis cell's safe.

``planb keys breakglass --out DIR`` makes an Ed25519 pair in OpenSSH's formats
(``DIR/planb-breakglass`` mode 0600, ``DIR/planb-breakglass.pub``) and keeps the public
part on the controller (``<state>/keys/breakglass.pub``), which deploy puts in root's
``authorized_keys`` on each messaging host, restricted to the break-glass command::

    restrict,command="/opt/planb/bin/planb-breakglass" ssh-ed25519 AAAA... planb-breakglass

The fingerprint is ``ssh-keygen -l``'s (``SHA256:`` + base64), to compare on paper.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from planb.errors import UsageError
from planb.files import write_atomic
from planb.hostkeys import fingerprint
from planb.provisioning.deploy import BREAKGLASS_PUBLIC_KEY

log = logging.getLogger(__name__)

KEY_NAME = "planb-breakglass"


@dataclass(frozen=True)
class BreakglassKey:
    """Where the pair was written, and its fingerprint."""

    private: Path
    public: Path
    controller_copy: Path
    fingerprint: str


def controller_public_key(state_dir: Path) -> Path:
    """The public part the controller keeps for deploy."""
    return state_dir / BREAKGLASS_PUBLIC_KEY


def make_breakglass_key(out: Path, state_dir: Path, *, site: str,
                        force: bool = False) -> BreakglassKey:
    """Write a new pair into ``out`` and its public part to the controller's keys."""
    private, public = out / KEY_NAME, out / f"{KEY_NAME}.pub"
    kept = controller_public_key(state_dir)
    if not force:
        existing = [p for p in (private, kept) if p.exists()]
        if existing:
            raise UsageError(f"{existing[0]} already exists; not replacing the break-glass key",
                             hint="--force makes a new pair: the next 'planb deploy' then "
                                  "lets only the new one in (put it in the safe first)")
    key = Ed25519PrivateKey.generate()
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode("ascii")
    text = f"{line} {KEY_NAME}@{site}\n"
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(private, key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.OpenSSH,
                                            serialization.NoEncryption()), 0o600)
    write_atomic(public, text, 0o644)
    kept.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(kept, text, 0o644)
    kind, blob = line.split()[:2]
    log.info("break-glass key written to %s; public part kept in %s", private, kept)
    return BreakglassKey(private, public, kept, fingerprint((kind, blob)))
