"""Python wheels for Synapse's virtualenv on the hosts (CPython 3.11, x86_64, glibc 2.36).

Wheels are made with ``pip wheel`` run by the controller's Debian ``python3`` (3.11,
the same interpreter and glibc the hosts have), so environment markers, ABI tags and
manylinux checks are those of the hosts. Packages published only as source (psycopg2)
are built into wheels here, against the controller's libpq (Debian's ``libpq-dev``).

pip is run isolated from this machine's pip settings: ``--isolated`` drops every
``PIP_*`` variable and the user's config, ``PIP_CONFIG_FILE=/dev/null`` skips the
global and site files too (``/etc/pip.conf``, ``/etc/xdg/pip/pip.conf`` with its
constraints and extra local indexes). Only PyPI (or ``$PLANB_PYPI_INDEX_URL``) is
used, so the same inputs resolve the same way on any controller.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from planb.errors import PlanbError, PrerequisiteError

log = logging.getLogger(__name__)

PYTHON_ENV = "PLANB_BUNDLE_PYTHON"
INDEX_ENV = "PLANB_PYPI_INDEX_URL"
DEFAULT_PYTHON = "/usr/bin/python3"
DEFAULT_INDEX = "https://pypi.org/simple"
#: The hosts' Python (Debian 12): wheels must suit it.
TARGET_PYTHON = (3, 11)
_PIP_TIMEOUT_S = 1800
_WHEEL_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[A-Za-z0-9_.!+]+)"
                       r"(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


@dataclass(frozen=True)
class Wheel:
    """One wheel file: its normalised project name and version."""

    file: str
    name: str
    version: str


def normalise(name: str) -> str:
    """PEP 503 project name: lower case, runs of ``-_.`` become one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_wheel_name(file: str) -> Wheel:
    """Project and version from a wheel file name (PEP 427)."""
    match = _WHEEL_RE.match(file)
    if not match:
        raise PlanbError(f"{file} is not a wheel file name (name-version-tags.whl)")
    return Wheel(file=file, name=normalise(match.group("name")),
                 version=match.group("version"))


def requirements_text(wheels: list[Wheel], hashes: dict[str, str],
                      name: str = "synapse.txt") -> str:
    """The exact pins, one per project, each with the sha256 of its wheel.

    With hashes, ``pip install --no-index --find-links WHEELS -r <name>`` installs
    exactly these files and nothing else (pip's hash-checking mode).
    """
    names = [w.name for w in wheels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PlanbError(f"two wheels of the same project: {', '.join(duplicates)}")
    lines = ["# Exact set planb's bundle holds; made by 'planb bundle build'. Install with:",
             f"#   pip install --no-index --find-links WHEELS -r {name}"]
    for wheel in sorted(wheels, key=lambda w: w.name):
        lines.append(f"{wheel.name}=={wheel.version} --hash=sha256:{hashes[wheel.file]}")
    return "\n".join(lines) + "\n"


def builder_python() -> str:
    """The interpreter that builds the wheels; it must be CPython 3.11 with pip."""
    python = os.environ.get(PYTHON_ENV, DEFAULT_PYTHON)
    hint = (f"install Debian's python3 and python3-pip (apt-get install python3-pip "
            f"python3-dev libpq-dev), or point ${PYTHON_ENV} at a CPython 3.11 with pip")
    if shutil.which(python) is None:
        raise PrerequisiteError(f"{python} not found: the bundle's wheels need CPython 3.11",
                                hint=hint)
    probe = subprocess.run(
        [python, "-c", "import sys, pip; print(sys.implementation.name, *sys.version_info[:2])"],
        capture_output=True, text=True, check=False, timeout=60)
    found = probe.stdout.split()
    if probe.returncode != 0 or found != ["cpython", *map(str, TARGET_PYTHON)]:
        raise PrerequisiteError(
            f"{python} cannot build the hosts' wheels (needs CPython "
            f"{'.'.join(map(str, TARGET_PYTHON))} with pip; found "
            f"{' '.join(found) or probe.stderr.strip()})", hint=hint)
    return python


def pip_env() -> dict[str, str]:
    """An environment with no ``PIP_*`` setting and no pip config file at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def build_wheels(
    requirements_in: Path,
    dest: Path,
    *,
    cache: Path,
    progress: Callable[[str], None] = lambda _msg: None,
) -> list[Wheel]:
    """Resolve ``requirements_in`` and put one wheel per project into ``dest`` (emptied first)."""
    python = builder_python()
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    cache.mkdir(parents=True, exist_ok=True)
    index = os.environ.get(INDEX_ENV, DEFAULT_INDEX)
    progress(f"pip wheel: resolving {requirements_in.name} from {index}")
    argv = [python, "-m", "pip", "--isolated", "--disable-pip-version-check",
            "--no-input", "wheel", "--wheel-dir", str(dest), "--cache-dir", str(cache),
            "--index-url", index, "--requirement", str(requirements_in)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=pip_env(),
                          timeout=_PIP_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        detail = "; ".join(lines[-3:]) or f"exit {proc.returncode}"
        hint = ("building psycopg2 needs pg_config and Python's headers: "
                "apt-get install libpq-dev python3-dev"
                if "pg_config" in proc.stderr or "Python.h" in proc.stderr else
                f"check that {index} is reachable and {requirements_in} is valid")
        raise PlanbError(f"pip could not make the wheels of {requirements_in.name}: {detail}",
                         hint=hint)
    wheels = [parse_wheel_name(p.name) for p in sorted(dest.glob("*.whl"))]
    log.info("%d wheels in %s", len(wheels), dest)
    return wheels
