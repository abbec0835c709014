"""The browser client's part of the bundle: sources, lock file, versions, npm isolation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from planb.bundle.client import (
    CLIENT_PATH,
    SOURCE_DIR,
    SOURCE_FILES,
    ClientBuild,
    client_version,
    locked_versions,
    manifest_version,
    npm_env,
    source_digest,
)
from planb.bundle.inputs import read_inputs
from planb.bundle.manifest import Item, make_manifest, parse_manifest
from planb.errors import PlanbError

LOCK = (SOURCE_DIR / "package-lock.json").read_text(encoding="utf-8")


def test_every_package_is_pinned_with_its_integrity_hash() -> None:
    """npm ci installs exactly the lock file: each package has a version and a sha512."""
    lock = json.loads(LOCK)
    assert lock["lockfileVersion"] >= 2
    packages = {p: info for p, info in lock["packages"].items() if p}
    assert packages
    for path, info in packages.items():
        assert info.get("version"), path
        assert str(info.get("integrity", "")).startswith("sha512-"), path
        # npm records no 'resolved' for some optional platform packages: then the
        # registry is asked by name and version, and the integrity hash still decides.
        assert str(info.get("resolved", "https://registry.npmjs.org/")).startswith(
            "https://registry.npmjs.org/"), path
    declared = json.loads((SOURCE_DIR / "package.json").read_text(encoding="utf-8"))
    for name, version in {**declared["dependencies"], **declared["devDependencies"]}.items():
        assert version[0].isdigit(), f"{name} {version}: package.json pins exact versions"
        assert locked_versions(LOCK)[name] == version


def test_the_client_version_comes_from_the_lock_file() -> None:
    assert client_version(LOCK) == "hydrogen-view-sdk 0.3.1, olm 3.2.15"
    with pytest.raises(PlanbError, match="pins no hydrogen-view-sdk"):
        client_version(json.dumps({"packages": {"node_modules/x": {"version": "1"}}}))
    with pytest.raises(PlanbError, match="not an npm lock file"):
        locked_versions("[]")


def test_the_page_loads_nothing_from_elsewhere_and_has_no_inline_script() -> None:
    """The CSP allows 'self' only: every URL in the page is relative, no inline code."""
    page = (SOURCE_DIR / "index.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "//" not in page.replace(
        "<!--", "")
    assert "<script>" not in page and "style=" not in page and " on" not in page.lower(
        ).replace(" one", "")
    assert '<script src="./app.js"></script>' in page
    assert '<!--# include virtual="/_planb_client/banner" -->' in page
    main = (SOURCE_DIR / "src" / "main.js").read_text(encoding="utf-8")
    assert 'configURL: "./config.json"' in main
    assert "http" not in main.replace("hydrogen-view-sdk", "")


def test_the_homeserver_field_is_hidden_not_typed() -> None:
    css = (SOURCE_DIR / "planb-client.css").read_text(encoding="utf-8")
    assert '#homeserver' in css and "display: none" in css
    assert CLIENT_PATH == "/app/"


def test_any_source_file_changes_the_digest_and_the_bundle_inputs(tmp_path: Path) -> None:
    copy = tmp_path / "client"
    shutil.copytree(SOURCE_DIR, copy, ignore=shutil.ignore_patterns("node_modules"))
    base = source_digest(copy)
    assert base == source_digest(SOURCE_DIR)
    seen = {base}
    for name in SOURCE_FILES:
        path = copy / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        seen.add(source_digest(copy))
        path.write_bytes(original)
    assert len(seen) == len(SOURCE_FILES) + 1
    one = read_inputs(client="a").fingerprint()
    assert one != read_inputs(client="b").fingerprint()
    (copy / "build.mjs").unlink()
    with pytest.raises(PlanbError, match="build.mjs"):
        source_digest(copy)


def test_npm_runs_without_the_callers_settings(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("npm_config_registry", "https://evil.example/")
    monkeypatch.setenv("NPM_CONFIG_IGNORE_SCRIPTS", "false")
    monkeypatch.setenv("PLANB_NPM_REGISTRY", "https://mirror.example/npm/")
    env = npm_env(tmp_path / "npm")
    assert "NPM_CONFIG_IGNORE_SCRIPTS" not in env
    assert env["npm_config_registry"] == "https://mirror.example/npm/"
    for key in ("npm_config_userconfig", "npm_config_globalconfig"):
        assert Path(env[key]).read_text(encoding="utf-8") == ""
    assert env["npm_config_userconfig"] != env["npm_config_globalconfig"]
    assert env["npm_config_cache"] == str(tmp_path / "npm")


def test_manifest_items_name_the_package_and_version() -> None:
    build = ClientBuild(("client/app.js", "client/olm/olm.wasm"), "0.3.1", "3.2.15")
    assert build.component("client/app.js") == ("hydrogen-view-sdk", "0.3.1")
    assert build.component("client/olm/olm.wasm") == ("olm", "3.2.15")
    items = [Item("client", *build.component(f), f, "0" * 64, 1) for f in build.files]
    items.append(Item("deb", "nginx", "1.22", "debs/nginx.deb", "1" * 64, 2))
    manifest = parse_manifest(make_manifest(items, created="t", inputs="i").to_json())
    assert manifest.count("client") == 2
    assert manifest_version(manifest) == "hydrogen-view-sdk 0.3.1, olm 3.2.15"
    assert manifest_version(make_manifest(items[-1:], created="t", inputs="i")) is None
