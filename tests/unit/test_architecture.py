"""The layers of docs/architecture.md hold: no import points upwards.

import-linter reads every import of the package, including those inside function
bodies, and checks the contract in ``.importlinter``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_imports_only_point_down_the_layers() -> None:
    tool = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(tool), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_the_contract_names_every_package() -> None:
    """A new top-level package or module must be placed in a layer, not slip past."""
    contract = (ROOT / ".importlinter").read_text(encoding="utf-8")
    named = {part.strip() for line in contract.splitlines() if line.startswith("    planb.")
             for part in line.split("|")}
    package = ROOT / "planb"
    found = {f"planb.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    found |= {f"planb.{p.name}" for p in package.iterdir()
              if p.is_dir() and (p / "__init__.py").exists()}
    assert found - named == set(), f"not in any layer of .importlinter: {found - named}"
