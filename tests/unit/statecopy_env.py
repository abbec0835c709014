"""The isolated environment both state-copy unit modules run planb's CLI in."""

from __future__ import annotations

from pathlib import Path

import pytest


def isolate_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No site found by accident, no key passphrase, no automatic push, wide output."""
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    monkeypatch.delenv("PLANB_KEY_PASSPHRASE", raising=False)
    monkeypatch.setenv("PLANB_STATE_COPY", "off")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
