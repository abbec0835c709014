"""What goes into the bundle: the repo's lists, read and checked line by line."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import planb
from planb.bundle.client import source_digest
from planb.errors import ConfigError

BUNDLE_INPUTS = planb.PLAYBOOKS_DIR / "bundle"
DEBS_FILE = BUNDLE_INPUTS / "debs.txt"
REQUIREMENTS_FILE = BUNDLE_INPUTS / "synapse-requirements.in"
#: What planb's own wheel needs on a messaging host (the break-glass command).
HOST_REQUIREMENTS_FILE = BUNDLE_INPUTS / "planb-host-requirements.in"
#: Bumped when the way a bundle is built changes, so old bundles are rebuilt.
RECIPE_VERSION = "2"
_DEB_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


@dataclass(frozen=True)
class Inputs:
    """The lists a bundle is built from, plus what else decides its content."""

    debs: tuple[str, ...]
    requirements: str
    context: tuple[tuple[str, str], ...] = ()
    #: sha256 of the browser client's sources (lock file, build script, page).
    client: str = ""
    #: planb's own dependencies on a messaging host (the break-glass command's venv).
    host_requirements: str = ""

    def fingerprint(self) -> str:
        """sha256 over everything that decides the content; equal -> no rebuild needed."""
        data = {"recipe": RECIPE_VERSION, "debs": list(self.debs),
                "requirements": self.requirements, "context": dict(self.context),
                "client": self.client, "host_requirements": self.host_requirements}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def parse_debs(text: str, *, path: str = "debs.txt") -> tuple[str, ...]:
    """Package names, one a line; ``#`` starts a comment. Sorted, without duplicates."""
    names: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _DEB_NAME.match(line):
            raise ConfigError(
                f"{path}:{number}: '{line}' is not a Debian package name (one name a line, "
                "lower case letters, digits, '+', '-', '.')")
        names.add(line)
    if not names:
        raise ConfigError(f"{path}: no package listed")
    return tuple(sorted(names))


def parse_requirements(text: str, *, path: str = "synapse-requirements.in") -> str:
    """The requirement lines (comments and blanks dropped); each must pin with ``==``."""
    kept = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-") or "==" not in line:
            raise ConfigError(
                f"{path}:{number}: '{line}' must pin one project with == (for example "
                "matrix-synapse[postgres]==1.163.2); options are not allowed here")
        kept.append(line)
    if not kept:
        raise ConfigError(f"{path}: no requirement listed")
    return "\n".join(kept) + "\n"


def read_inputs(debs_file: Path = DEBS_FILE, requirements_file: Path = REQUIREMENTS_FILE,
                *, context: dict[str, str] | None = None,
                client: str | None = None,
                host_requirements_file: Path = HOST_REQUIREMENTS_FILE) -> Inputs:
    """Read and check the lists; :class:`ConfigError` names the file and line at fault.

    ``client`` is the digest of the browser client's sources (default: read from
    :data:`planb.bundle.client.SOURCE_DIR`).
    """
    texts = []
    for path in (debs_file, requirements_file, host_requirements_file):
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return Inputs(debs=parse_debs(texts[0], path=str(debs_file)),
                  requirements=parse_requirements(texts[1], path=str(requirements_file)),
                  host_requirements=parse_requirements(texts[2],
                                                       path=str(host_requirements_file)),
                  context=tuple(sorted((context or {}).items())),
                  client=source_digest() if client is None else client)
