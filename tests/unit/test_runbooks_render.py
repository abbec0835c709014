"""Runbooks rendered with a lab site's values: complete, strict, overridable, printable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.config import LabConfig, SiteConfig, load_config
from planb.directory.model import Agent, SourceResult
from planb.directory.snapshot import write_snapshot
from planb.errors import ConfigError
from planb.lab.agents import generate
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.runbooks import catalog, html, values

runner = CliRunner()
RUNBOOKS = ("activate-failover", "deactivate-failover", "run-drill", "rebuild-fallback",
            "rotate-signing-key", "crisis-contacts")
LEFTOVERS = ("{{", "}}", "{%", "%}", "{#", "None", "Undefined")


def lab_agents(count: int = 300) -> SourceResult:
    """The lab's synthetic agents (what 'planb lab up' seeds the primary with)."""
    agents = tuple(
        Agent(id=a.entry_uuid, login=a.login, given_name=a.given_name, surname=a.surname,
              display_name=a.display_name, mail=a.mail, department=a.department.name,
              title=a.title, mobile=a.mobile, employee_number=a.employee_number,
              enabled=not a.leaver, groups=frozenset({a.department.name}))
        for a in generate(count))
    return SourceResult("the lab primary", agents)


@pytest.fixture
def lab_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lab site (as 'planb lab up' writes it, split hosts) and a snapshot of its agents."""
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    lab = LabConfig(subnet="10.77.9.0/24", bridge="planb9", split=True)
    config = write_lab_site(tmp_path / "site", build_topology(lab.subnet, lab.bridge,
                                                              split=True),
                            tmp_path / "key", lab)
    write_snapshot(lab_agents(), tmp_path / "site" / "agents.json")
    # These tests read the English runbooks (a lab site is written in French).
    text = config.read_text(encoding="utf-8")
    assert "\nlanguage: fr\n" in text
    config.write_text(text.replace("\nlanguage: fr\n", "\nlanguage: en\n"), encoding="utf-8")
    return config


def render_cli(config: Path, name: str, *extra: str) -> str:
    args = ["-c", str(config), "runbook", "render", name, *extra]
    if name == "crisis-contacts":
        args += ["--from-snapshot", str(config.parent / "agents.json")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_list_names_every_runbook_with_title_and_source(lab_site: Path) -> None:
    result = runner.invoke(app, ["-c", str(lab_site), "runbook", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {r["name"]: r for r in json.loads(result.output)}
    assert set(listed) == set(RUNBOOKS)
    assert all(r["source"] == "shipped" and r["title"] != r["name"] for r in listed.values())
    table = runner.invoke(app, ["-c", str(lab_site), "runbook", "list"])
    assert table.exit_code == 0 and "rotate-signing-key" in table.output


@pytest.mark.parametrize("name", RUNBOOKS)
@pytest.mark.parametrize("fmt", ["md", "html"])
def test_every_runbook_renders_with_the_lab_site_values(lab_site: Path, name: str,
                                                        fmt: str) -> None:
    text = render_cli(lab_site, name, "--format", fmt)
    for leftover in LEFTOVERS:
        assert leftover not in text, f"{name}.{fmt}: {leftover!r} left"
    site = load_config(lab_site)
    expected = [site.matrix.server_name, site.organisation.split(" ")[0], "☐",
                f"https://{site.matrix.public_hostname}"]
    if name == "crisis-contacts":
        expected += ["+33 ", "@metropole.lab"]
    else:
        expected += [str(site.source), "10.77.9.1", "____ : ____"]
    for value in expected:
        assert value in text, f"{name}.{fmt}: {value!r} missing"


def test_procedures_name_this_sites_hosts_objective_and_state_dir(lab_site: Path) -> None:
    site = load_config(lab_site)
    rebuild = render_cli(lab_site, "rebuild-fallback")
    for host, address in (("directory", "10.77.9.12"), ("messaging", "10.77.9.13"),
                          ("fallback", "10.77.9.11")):
        assert f"`{host}` {address}" in rebuild
    assert "lab up" in rebuild and "planb9" in rebuild
    drill = " ".join(render_cli(lab_site, "run-drill").split())
    assert f"objective **{site.objectives.rto_seconds} seconds**" in drill
    assert "`primary-outage`" in drill and "`messaging-crash`" in drill
    assert str(site.state_dir / "failover" / "audit.log") in render_cli(
        lab_site, "activate-failover")


def test_production_rebuild_lists_hosts_to_install_not_the_lab(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    done = runner.invoke(app, ["init", str(tmp_path / "prod"), "--site", "prod",
                               "--organisation", "Ville <b>& Co</b>"])
    assert done.exit_code == 0, done.output
    config = tmp_path / "prod" / "planb.yml"
    text = render_cli(config, "rebuild-fallback")
    assert "| `fallback1` | `192.0.2.10` |" in text and "lab up" not in text
    assert "planb init" in text and "--organisation 'Ville <b>& Co</b>'" in text
    page = render_cli(config, "rebuild-fallback", "--format", "html")
    assert "<b>" not in page and "Ville &lt;b&gt;&amp; Co&lt;/b&gt;" in page


def test_key_fingerprint_is_printed_once_the_key_exists(lab_site: Path) -> None:
    assert "none yet" in render_cli(lab_site, "rotate-signing-key")
    done = runner.invoke(app, ["-c", str(lab_site), "keys", "init"])
    assert done.exit_code == 0, done.output
    fingerprint = re.search(r"SHA256:[0-9a-f]{64}", done.output)
    assert fingerprint is not None
    assert fingerprint.group(0) in render_cli(lab_site, "rotate-signing-key")


def test_html_is_one_accessible_printable_page(lab_site: Path) -> None:
    page = render_cli(lab_site, "activate-failover", "--format", "html")
    assert page.startswith("<!DOCTYPE html>") and '<html lang="en">' in page
    for landmark in ("<header>", "<main>", "</main>", "<footer>"):
        assert landmark in page
    assert page.count("<h1>") == 1 and '<section aria-labelledby="section-1">' in page
    assert '<th scope="col">' in page
    assert "@media print" in page and "size: A4" in page and "break-inside" in page
    assert not re.search(r"<(script|link|img)\b|src=|https?://[^\s<\"]*\.(css|js)", page)


def test_markdown_html_escapes_raw_html_and_refuses_javascript_links() -> None:
    body = html.markdown_to_html("# T\n\n<script>alert(1)</script> [x](javascript:alert(1))\n")
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert 'href="javascript' not in body


@pytest.mark.parametrize("breaker", ["\r", "\n", "\r\n"])
def test_a_line_break_in_a_directory_value_cannot_leave_its_table_cell(breaker: str) -> None:
    """A title holding CR (as well as LF) must not end the printed row and add a
    heading or a row of its own (a false number to call in a crisis)."""
    title = f"Agent{breaker}## Appelez le 06 66 66 66 66{breaker}| Faux | 06 66 |"
    row = f"| Marie Martin | {catalog.md_escape(title)} | 06 12 34 56 78 |"
    page = html.markdown_to_html(f"| Name | Title | Mobile |\n|---|---|---|\n{row}\n")
    assert "<h2" not in page
    assert page.count("<tr>") == 2  # the header and Marie's row, nothing more
    assert "Agent ## Appelez le 06 66 66 66 66 | Faux | 06 66 |" in page


def test_missing_value_is_an_error_naming_template_line_and_variable(lab_site: Path) -> None:
    local = lab_site.parent / "runbooks"
    local.mkdir()
    (local / "activate-failover.md.j2").write_text(
        "{# title: Local activation #}\n# {{ site.name }}\n\nCall {{ site.duty_phone }}\n",
        encoding="utf-8")
    result = runner.invoke(app, ["-c", str(lab_site), "runbook", "render", "activate-failover"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "activate-failover.md.j2:4" in message and "duty_phone" in message


def test_state_dir_template_wins_over_site_dir_which_wins_over_shipped(lab_site: Path) -> None:
    site = load_config(lab_site)
    site_dir, state_dir = site.base_dir / "runbooks", site.state_dir / "runbooks"
    for folder, label in ((site_dir, "site"), (state_dir, "state")):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "run-drill.md.j2").write_text(
            f"{{# title: {label} drill #}}\n# {label} drill for {{{{ site.name }}}}\n",
            encoding="utf-8")
    (site_dir / "call-tree.md.j2").write_text("# Call tree of {{ site.organisation }}\n",
                                              encoding="utf-8")
    listed = {i.name: i for i in catalog.list_runbooks(site)}
    assert listed["run-drill"].origin == "state" and listed["run-drill"].title == "state drill"
    assert listed["call-tree"].origin == "site" and listed["activate-failover"].origin == "shipped"
    assert render_cli(lab_site, "run-drill") == "# state drill for lab\n"
    assert "Call tree of Métropole" in render_cli(lab_site, "call-tree")


def test_unknown_runbook_and_misplaced_options_are_usage_errors(lab_site: Path) -> None:
    base = ["-c", str(lab_site), "runbook", "render"]
    unknown = runner.invoke(app, [*base, "nope"])
    assert unknown.exit_code == 2 and "activate-failover" in unknown.output
    assert runner.invoke(app, [*base, "run-drill", "--format", "csv"]).exit_code == 2
    assert runner.invoke(app, [*base, "run-drill", "--from", "primary"]).exit_code == 2


def test_rendering_needs_the_inventory(lab_site: Path) -> None:
    site: SiteConfig = load_config(lab_site)
    (site.inventory_dir / "hosts.yml").unlink()
    with pytest.raises(ConfigError, match="no host in group fallback_directory"):
        values.site_values(site)
    result = runner.invoke(app, ["-c", str(lab_site), "runbook", "render", "run-drill"])
    assert result.exit_code == 2 and "fallback_directory" in result.output
