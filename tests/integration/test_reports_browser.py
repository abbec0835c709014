"""The HTML report, the trend page and (in French) every runbook in a real headless
Chromium: axe-core, screenshots kept under build/test-artifacts/ (or
$PLANB_TEST_ARTIFACTS), and the pages printed to PDF on A4.

Needs Debian's ``chromium`` and ``npm ci --prefix tools/a11y`` (scripts/setup.sh does
both). Where they are missing the test is skipped, except in CI (``$CI`` set), where
that is a failure.
"""

from __future__ import annotations

import html as html_text
import os
import re
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.config import SiteConfig
from planb.reports.annotate import annotate
from tests.integration.agent_browser import load_axe
from tests.unit.test_drills_scenario import make_site
from tests.unit.test_reports_render_model import signed_store, write_drills


@pytest.fixture(scope="module")
def axe() -> ModuleType:
    return load_axe()


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


# -- in French: the report, the trend page and every runbook ---------------------------

#: Where screenshots (and the printed PDFs) are kept for people to look at after a run.
ARTIFACTS = Path(os.environ.get("PLANB_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parents[2] / "build" / "test-artifacts")
A4_MM = (210, 297)


def _keep(axe: ModuleType, html: Path, name: str) -> Path:
    """Screenshot ``html`` into the artifacts folder (checked not blank) and return it."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    png = axe.screenshot(html, folder / f"{name}.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000, f"{png} is {len(data)} bytes: an empty page?"
    print(f"screenshot kept: {png}")
    return png


def _accessible_on_a4(axe: ModuleType, html: Path, name: str, page: str) -> None:
    """``lang="fr"``, axe-core clean, a screenshot kept, and every printed page A4."""
    assert '<html lang="fr">' in page
    assert re.search(r"@page\s*\{[^}]*size:\s*A4", page), f"{name}: no @page size A4 rule"
    _keep(axe, html, name)
    result = axe.run_axe(html)
    assert "error" not in result, result.get("error")
    blocking = axe.blocking(result)
    assert not blocking, axe.describe(blocking)
    (ARTIFACTS / "pdf").mkdir(parents=True, exist_ok=True)
    pdf = axe.print_pdf(html, ARTIFACTS / "pdf" / f"{name}.pdf")
    sizes = axe.page_sizes_mm(pdf)
    assert sizes and all(size == A4_MM for size in sizes), f"{name} prints on {set(sizes)}"


@pytest.mark.parametrize("page", ["report", "trend"])
def test_french_report_and_trend_pass_axe_and_print_on_a4(axe: ModuleType, site: SiteConfig,
                                                          tmp_path: Path, page: str) -> None:
    html = tmp_path / f"{page}.fr.html"
    if page == "report":
        _export(["export", "2", "--format", "html", "--language", "fr", "-o", str(html)], site)
    else:
        _export(["trend", "--language", "fr", "-o", str(html)], site)
    text = html.read_text(encoding="utf-8")
    shown = html_text.unescape(text)
    assert ("Rapport d'exercice" if page == "report" else "Tendance des exercices") in shown
    assert "DMIA" in text
    _accessible_on_a4(axe, html, f"{page}.fr", text)


RUNBOOKS = ("activate-failover", "deactivate-failover", "run-drill", "rebuild-fallback",
            "rotate-signing-key", "crisis-contacts")


@pytest.fixture(scope="module")
def french_lab_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab site as 'planb lab up' writes it (in French) and a snapshot of its agents."""
    from planb.config import LabConfig, load_config
    from planb.directory.snapshot import write_snapshot
    from planb.lab.site import write_lab_site
    from planb.lab.topology import build_topology
    from tests.unit.test_runbooks_render import lab_agents

    base = tmp_path_factory.mktemp("french-lab")
    lab = LabConfig(subnet="10.77.9.0/24", bridge="planb9", split=True)
    config = write_lab_site(base / "site", build_topology(lab.subnet, lab.bridge, split=True),
                            base / "key", lab)
    assert load_config(config).language == "fr"
    write_snapshot(lab_agents(), base / "site" / "agents.json")
    return config


@pytest.mark.parametrize("name", RUNBOOKS)
def test_every_french_runbook_passes_axe_and_prints_on_a4(
        axe: ModuleType, french_lab_site: Path, tmp_path: Path, name: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    html = tmp_path / f"{name}.fr.html"
    args = ["-c", str(french_lab_site), "runbook", "render", name, "--format", "html",
            "-o", str(html)]
    if name == "crisis-contacts":
        args += ["--from-snapshot", str(french_lab_site.parent / "agents.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = html.read_text(encoding="utf-8")
    assert "fiche réflexe" in text and "Imprimé" in text
    _accessible_on_a4(axe, html, f"runbook-{name}.fr", text)
