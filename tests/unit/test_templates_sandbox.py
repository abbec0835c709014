"""A site's own templates (runbooks, the announcement) fill in values and run nothing.

Whoever can write ``<site>/runbooks/`` or ``<state_dir>/templates/`` must not get to
run code as the operator rendering them: the templates render in Jinja2's immutable
sandbox, and an escape attempt is a ConfigError naming the template (and its line).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from planb.config import SiteConfig
from planb.errors import ConfigError
from planb.messaging.announcement import (
    AnnouncementContext,
    render_announcement,
    site_template_path,
)
from planb.runbooks import catalog
from tests.unit.test_drills_scenario import make_site


def escapes(marker: Path) -> list[str]:
    """Template lines that reach Python internals; the first runs a shell command."""
    command = shlex.quote(f"touch {marker}")
    return [
        f"{{{{ cycler.__init__.__globals__.os.system({command!r}) }}}}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ organisation.__class__ }}",
        "{% set _ = people.append('intruder') %}{{ people }}",
    ]


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return make_site(tmp_path)


@pytest.mark.parametrize("attempt", range(4))
def test_a_runbook_template_cannot_escape_the_sandbox(site: SiteConfig, tmp_path: Path,
                                                      attempt: int) -> None:
    marker = tmp_path / "pwned"
    folder = site.base_dir / "runbooks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "local.md.j2"
    path.write_text("{# title: Local #}\n# {{ organisation }}\n\n"
                    f"{escapes(marker)[attempt]}\n", encoding="utf-8")
    info = catalog.find_runbook(site, "local")
    with pytest.raises(ConfigError) as refused:
        catalog.render(site, info, {"organisation": "Ville", "people": ["a"]})
    assert f"{path}:4:" in refused.value.message
    assert "sandbox forbids" in refused.value.message
    assert not marker.exists()


def test_a_runbook_template_still_fills_in_values(site: SiteConfig) -> None:
    folder = site.base_dir / "runbooks"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "local.md.j2").write_text(
        "{# title: Local #}\n# {{ organisation | md }}\n{% for p in people %}- {{ p | sh }}\n"
        "{% endfor %}", encoding="utf-8")
    rendered = catalog.render(site, catalog.find_runbook(site, "local"),
                              {"organisation": "Ville *de* Test", "people": ["a b"]})
    assert rendered.markdown == "# Ville \\*de\\* Test\n- 'a b'\n"


@pytest.mark.parametrize("attempt", range(3))
def test_an_announcement_template_cannot_escape_the_sandbox(site: SiteConfig, tmp_path: Path,
                                                            attempt: int) -> None:
    marker = tmp_path / "pwned"
    path = site_template_path(site)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Bonjour\n{escapes(marker)[attempt]}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        render_announcement(site, AnnouncementContext("01/03/2025 à 09 h 30", "abc"))
    assert str(path) in refused.value.message
    assert "sandbox forbids" in refused.value.message
    assert not marker.exists()
