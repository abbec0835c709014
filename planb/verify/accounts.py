"""Probe accounts for ``planb verify``: a file of ``login password`` lines, kept private.

Default place: ``<state_dir>/verify/probe-accounts`` (mode 0600). Blank lines and
lines starting with ``#`` are ignored. Passwords never appear in messages.
"""

from __future__ import annotations

from pathlib import Path

from planb.config import SiteConfig
from planb.errors import ConfigError


def default_probe_file(site: SiteConfig) -> Path:
    return site.state_dir / "verify" / "probe-accounts"


def load_probe_accounts(path: Path) -> list[tuple[str, str]]:
    """The (login, password) pairs in ``path``; :class:`ConfigError` naming the line if bad."""
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read probe accounts: {exc.strerror}", path=str(path)) from None
    if mode & 0o077:
        raise ConfigError(f"holds passwords but is mode {mode:04o}", path=str(path),
                          hint=f"chmod 600 {path}")
    accounts = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ConfigError("expected 'login password' (one account per line)",
                              path=str(path), line=number)
        accounts.append((parts[0], parts[1]))
    return accounts
