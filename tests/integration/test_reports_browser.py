"""The HTML report and the trend page in a real headless Chromium: screenshots and axe-core.

Needs Debian's ``chromium`` and ``npm ci --prefix tools/a11y`` (scripts/setup.sh does
both). Where they are missing the test is skipped, except in CI (``$CI`` set), where
that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.config import SiteConfig
from planb.reports.annotate import annotate
from tests.unit.test_drills_scenario import make_site
from tests.unit.test_reports_render_model import signed_store, write_drills

AXE_CHECK = Path(__file__).resolve().parents[2] / "tools" / "a11y" / "axe_check.py"


def _axe_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("axe_check", AXE_CHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["axe_check"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def axe() -> ModuleType:
    module = _axe_check()
    reason = module.missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser accessibility check cannot run: {reason}")
        pytest.skip(reason)
    return module


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    """A site with three drills (pass, deviated, failed) and an addendum, signed."""
    site = make_site(tmp_path)
    journals = write_drills(site)
    annotate(signed_store(site), journals[1].id, author="Agnès Martin",
             observations=["Synapse took 40 s to start after the switch"],
             actions=["Pre-warm Synapse's caches in the activation", "Re-run in April"])
    return site


def _export(args: list[str], site: SiteConfig) -> None:
    result = CliRunner().invoke(app, ["report", *args, "--dir",
                                      str(site.state_dir / "journals"), "--public-key",
                                      str(site.state_dir / "keys" / "signing.pub")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("page", ["report", "trend"])
def test_page_renders_and_passes_axe(axe: ModuleType, site: SiteConfig, tmp_path: Path,
                                     page: str) -> None:
    html = tmp_path / f"{page}.html"
    if page == "report":
        _export(["export", "2", "--format", "html", "-o", str(html)], site)
    else:
        _export(["trend", "-o", str(html)], site)
    png = axe.screenshot(html, tmp_path / f"{page}.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000, f"{png} is {len(data)} bytes: an empty page?"
    print(f"screenshot: {png}")
    result = axe.run_axe(html)
    assert "error" not in result, result.get("error")
    if result["violations"]:
        print(axe.describe(result["violations"]))
    blocking = axe.blocking(result)
    assert not blocking, axe.describe(blocking)
