"""The built wheel works without a checkout: installed in a fresh venv, it runs a playbook.

The wheel is built from this checkout, installed (not editable) into a temporary venv,
and that venv's ``planb`` runs from a folder with no checkout: ``planb init`` writes a
site, and ``planb deploy`` runs the shipped ``site.yml`` (every role, template and file,
and the bundle lists that decide whether the bundle is current) on the session lab,
already deployed from the checkout. If the package data left out any of them, or
shipped them different from the checkout, the deploy would fail or change something.

(A real re-deploy, not ``deploy --check``: in check mode the pki role's controller-side
commands do not run, so a full site cannot be checked in check mode.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import planb
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab

CHECKOUT = Path(__file__).resolve().parents[2]


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of the installed planb: no PYTHONPATH or venv leaking the checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PLANB_CONFIG")}
    env.update(extra)
    return env


def _run(args: list[str | Path], *, cwd: Path, timeout: float,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env or _clean_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


_NOT_SOURCE_TOP = {".git", ".venv", "build", "dist", ".planb", "lab", "node_modules"}


def _not_source(folder: str, names: list[str]) -> set[str]:
    """What copytree leaves out: caches everywhere, and build or state folders at the top."""
    left_out = {n for n in names if n == "__pycache__" or n.endswith((".egg-info", "_cache"))}
    if Path(folder).resolve() == CHECKOUT:
        left_out |= _NOT_SOURCE_TOP & set(names)
    return left_out


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv, outside the checkout, with the wheel built from the checkout installed."""
    work = tmp_path_factory.mktemp("packaging")
    # Built from a copy: a build/ folder left in the checkout by an earlier build would
    # let stale files into the wheel and hide a package-data mistake.
    source = work / "source"
    shutil.copytree(CHECKOUT, source, symlinks=True, ignore=_not_source)
    wheels = work / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, source],
         cwd=work, timeout=600)
    built = sorted(wheels.glob("planb-*.whl"))
    assert len(built) == 1, built
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=work, timeout=300)
    # Dependencies come from the package index (pip's cache makes repeats quick).
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", built[0]],
         cwd=work, timeout=1200)
    return venv


def test_installed_planb_is_the_wheel_not_the_checkout(installed_venv: Path,
                                                       tmp_path: Path) -> None:
    proc = _run([installed_venv / "bin" / "python", "-c",
                 "import planb; print(planb.__file__); print(planb.PLAYBOOKS_DIR)"],
                cwd=tmp_path, timeout=60)
    module, playbooks = (Path(line) for line in proc.stdout.splitlines())
    assert module.is_relative_to(installed_venv), module
    assert not module.is_relative_to(CHECKOUT), module
    assert playbooks.is_relative_to(installed_venv), playbooks
    assert (playbooks / "site.yml").is_file()


def test_installed_planb_init_writes_a_site(installed_venv: Path, tmp_path: Path) -> None:
    env = _clean_env(PLANB_HOME=str(tmp_path / "home"))
    _run([installed_venv / "bin" / "planb", "init", "newsite", "--site", "demo"],
         cwd=tmp_path, timeout=120, env=env)
    assert (tmp_path / "newsite" / "planb.yml").is_file()
    assert (tmp_path / "newsite" / "inventories" / "demo" / "hosts.yml").is_file()


def test_installed_planb_runs_the_shipped_site_playbook(installed_venv: Path,
                                                         deployed_lab: LabSession,
                                                         tmp_path: Path) -> None:
    config = deployed_lab.site.base_dir / "planb.yml"
    proc = _run([installed_venv / "bin" / "planb", "-c", config, "deploy", "--json"],
                cwd=tmp_path, timeout=1800)
    result = json.loads(proc.stdout)
    assert result["ok"], result
    # The playbook that ran is the wheel's copy, not the checkout's.
    playbook = Path(result["playbook"])
    assert playbook.is_relative_to(installed_venv), playbook
    assert playbook != planb.PLAYBOOKS_DIR / "site.yml"
    assert set(result["hosts"]) == {"primary", "fallback"}
    for host, stats in result["hosts"].items():
        assert stats["ok"] > 0 and stats["failed"] == 0 and stats["unreachable"] == 0, \
            (host, stats)
    # The wheel's roles are the checkout's: on a lab the checkout deployed, nothing changes.
    assert result["changed_total"] == 0, result["hosts"]
