"""The browser client in the bundle: Hydrogen, built once on the controller by esbuild.

``planb/data/client/`` holds what decides the client: ``package.json`` and
``package-lock.json`` (every npm package pinned with its integrity hash),
``build.mjs`` (the esbuild call), ``src/main.js`` (Hydrogen's whole app mounted with
the site's homeserver from ``config.json``), ``index.html`` and ``planb-client.css``.
:func:`build_client` copies them to a work folder, runs ``npm ci`` there (the lock
file only: a package whose hash differs stops the build) and ``node build.mjs``, and
puts the static site into the bundle's ``client/`` folder: ``app.js``, Hydrogen's
assets (theme, fonts, icons, service worker) and olm's ``olm.js``/``olm.wasm``.

The hosts never fetch anything: the nginx role serves these files at ``/app/`` from
the bundle it unpacked, and writes nothing into them (``config.json``, the one
site-specific answer, is returned by nginx itself), so ``planb verify`` can compare
each served file with the manifest.

npm runs isolated from this machine's npm settings (no user or global ``.npmrc``,
no ``npm_config_*`` variable), against ``$PLANB_NPM_REGISTRY`` (default the public
registry), with its download cache under the bundle's cache folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import planb
from planb.bundle.manifest import Manifest
from planb.errors import PlanbError, PrerequisiteError

log = logging.getLogger(__name__)

#: Where nginx serves the client (the welcome page links to it).
CLIENT_PATH = "/app/"
#: The client's folder inside the bundle.
CLIENT_DIR = "client"
SOURCE_DIR = planb.data_path("client")
#: The files of SOURCE_DIR that decide the build (the fingerprint is over these).
SOURCE_FILES = ("package.json", "package-lock.json", "build.mjs", "src/main.js",
                "index.html", "planb-client.css")
REGISTRY_ENV = "PLANB_NPM_REGISTRY"
DEFAULT_REGISTRY = "https://registry.npmjs.org/"
#: Node.js major version the build needs (esbuild's and npm ci's lock file v3).
MIN_NODE = 18
_TIMEOUT_S = 900
#: What the bundle takes from node_modules, as (source, destination in client/).
_COPIED = (("hydrogen-view-sdk/asset-build/assets", "assets"),
           ("hydrogen-view-sdk/lib-build/sw.js", "sw.js"),
           ("@matrix-org/olm/olm.js", "olm/olm.js"),
           ("@matrix-org/olm/olm.wasm", "olm/olm.wasm"),
           ("@matrix-org/olm/olm_legacy.js", "olm/olm_legacy.js"),
           ("hydrogen-view-sdk/package.json", "LICENSES/hydrogen-view-sdk.package.json"),
           ("@matrix-org/olm/package.json", "LICENSES/olm.package.json"))
_PLANB_FILES = ("index.html", "planb-client.css")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ClientBuild:
    """The built client: its files (relative to the bundle) and what each comes from."""

    files: tuple[str, ...]
    hydrogen_version: str
    olm_version: str

    def component(self, file: str) -> tuple[str, str]:
        """(name, version) a bundle manifest item records for ``file``."""
        if file.startswith(f"{CLIENT_DIR}/olm/") or file.endswith("olm.package.json"):
            return "olm", self.olm_version
        return "hydrogen-view-sdk", self.hydrogen_version


def source_digest(source: Path = SOURCE_DIR) -> str:
    """sha256 over the client's source files (part of the bundle's inputs)."""
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        try:
            digest.update(f"{name}\0".encode() + (source / name).read_bytes() + b"\0")
        except OSError as exc:
            raise PlanbError(f"cannot read the browser client's {source / name}: "
                             f"{exc.strerror}") from None
    return digest.hexdigest()


def locked_versions(lock_text: str) -> dict[str, str]:
    """The exact versions a ``package-lock.json`` (v2/v3) pins, by package name."""
    try:
        packages = json.loads(lock_text)["packages"]
    except (ValueError, KeyError, TypeError):
        raise PlanbError("the browser client's package-lock.json is not an npm lock file "
                         "(v2 or v3, with 'packages')") from None
    versions = {}
    for path, info in packages.items():
        if path.startswith("node_modules/") and isinstance(info, dict) and "version" in info:
            versions[path.removeprefix("node_modules/")] = str(info["version"])
    return versions


def client_version(lock_text: str) -> str:
    """What the journals record: ``hydrogen-view-sdk <v>, olm <v>`` from the lock file."""
    versions = locked_versions(lock_text)
    missing = [n for n in ("hydrogen-view-sdk", "@matrix-org/olm") if n not in versions]
    if missing:
        raise PlanbError(f"the browser client's package-lock.json pins no {', '.join(missing)}")
    return (f"hydrogen-view-sdk {versions['hydrogen-view-sdk']}, "
            f"olm {versions['@matrix-org/olm']}")


def manifest_version(manifest: Manifest) -> str | None:
    """``hydrogen-view-sdk 0.3.1, olm 3.2.15`` from a bundle's ``client`` items (None:
    a bundle without the client)."""
    found = {item.name: item.version for item in manifest.items if item.kind == "client"}
    if not found:
        return None
    return ", ".join(f"{name} {found[name]}" for name in sorted(found))


def npm_env(cache: Path) -> dict[str, str]:
    """No ``npm_config_*`` from the caller, no user or global npmrc (two empty files in
    ``cache``: npm refuses one file for both), a private download cache."""
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    cache.mkdir(parents=True, exist_ok=True)
    for name in ("user.npmrc", "global.npmrc"):
        (cache / name).write_text("", encoding="utf-8")
    env.update({"npm_config_userconfig": str(cache / "user.npmrc"),
                "npm_config_globalconfig": str(cache / "global.npmrc"),
                "npm_config_cache": str(cache), "npm_config_update_notifier": "false",
                "npm_config_fund": "false", "npm_config_audit": "false",
                "npm_config_registry": os.environ.get(REGISTRY_ENV, DEFAULT_REGISTRY)})
    return env


def _tools() -> tuple[str, str]:
    hint = ("install Node.js and npm (Debian 12: apt-get install nodejs npm), which "
            "'planb bundle build' uses to build the browser client")
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PrerequisiteError("node or npm not found: the bundle's browser client needs "
                                f"Node.js {MIN_NODE} or later", hint=hint)
    probe = subprocess.run([node, "-p", "process.versions.node"], capture_output=True,
                           text=True, check=False, timeout=60)
    major = probe.stdout.strip().split(".")[0]
    if probe.returncode != 0 or not major.isdigit() or int(major) < MIN_NODE:
        raise PrerequisiteError(f"{node} is Node.js {probe.stdout.strip() or '?'}; the "
                                f"browser client needs {MIN_NODE} or later", hint=hint)
    return node, npm


def _run(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          check=False, timeout=_TIMEOUT_S)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        detail = "; ".join(lines[-4:]) or f"exit {proc.returncode}"
        raise PlanbError(f"{what} failed: {detail}",
                         hint=f"check that the npm registry ({env['npm_config_registry']}) "
                              f"is reachable and {SOURCE_DIR}/package-lock.json is valid")


def build_client(bundle: Path, *, cache: Path, source: Path = SOURCE_DIR,
                 progress: Progress = lambda _msg: None) -> ClientBuild:
    """Build the client into ``bundle/client/`` (emptied first); list its files."""
    node, npm = _tools()
    work = cache / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name in SOURCE_FILES:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, work / name)
    env = npm_env(cache / "npm")
    progress("npm ci: the browser client's packages (package-lock.json)")
    # --ignore-scripts: no package runs code at install (esbuild's binary comes as an
    # optional dependency, its install script only checks it).
    _run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], work, env, "npm ci")
    dest = bundle / CLIENT_DIR
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    progress("esbuild: bundling the browser client (Hydrogen)")
    _run([node, "build.mjs", str(dest)], work, env, "esbuild")
    modules = work / "node_modules"
    for src, target in _COPIED:
        path = modules / src
        (dest / target).parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, dest / target)
        else:
            shutil.copyfile(path, dest / target)
    for name in _PLANB_FILES:
        shutil.copyfile(work / name, dest / name)
    versions = locked_versions((work / "package-lock.json").read_text(encoding="utf-8"))
    installed = json.loads((modules / "hydrogen-view-sdk" / "package.json").read_text())
    if installed.get("version") != versions.get("hydrogen-view-sdk"):
        raise PlanbError("npm ci installed hydrogen-view-sdk "
                         f"{installed.get('version')}, not the locked "
                         f"{versions.get('hydrogen-view-sdk')}")
    files = tuple(sorted(p.relative_to(bundle).as_posix()
                         for p in dest.rglob("*") if p.is_file()))
    shutil.rmtree(work, ignore_errors=True)
    log.info("browser client: %d files, hydrogen-view-sdk %s", len(files),
             versions["hydrogen-view-sdk"])
    return ClientBuild(files, versions["hydrogen-view-sdk"], versions["@matrix-org/olm"])
