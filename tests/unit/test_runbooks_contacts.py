"""The crisis contact sheet: who is in the cell, grouped by department, md/html/csv."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.config import DEFAULT_CRISIS_TITLES, CrisisCellConfig, load_config
from planb.errors import ConfigError
from planb.mode import freeze_sync
from planb.runbooks.contacts import build_sheet, in_cell
from tests.unit.test_runbooks_render import lab_agents, lab_site  # noqa: F401

runner = CliRunner()
HEADER = "id;login;given_name;surname;mail;department;title;mobile;enabled;groups\n"
ROWS = [
    # in the cell by group; a name a spreadsheet would run as a formula
    "1;eve.x;=cmd|' /C calc'!A0;Hack;eve.x@ville.fr;Direction des finances;Agent;"
    "+33 6 11 11 11 11;oui;Cellule de crise\n",
    # in the cell by title (case differs), in another department
    "2;zoe.aubert;Zoé;Aubert;zoe.aubert@ville.fr;Archives;directrice;06 22 22 22 22;oui;\n",
    # in the cell by group, same department as eve, sorts before her (Bernard < Hack)
    "3;luc.bernard;Luc;Bernard;luc.bernard@ville.fr;Direction des finances;Juriste;"
    "+33 7 33 33 33 33;oui;Cellule de crise|Juristes\n",
    # a leaver in the group: not on the sheet
    "4;old.one;Old;One;old.one@ville.fr;Archives;Directeur;+33 6 44 44 44 44;non;"
    "Cellule de crise\n",
    # not in the cell
    "5;ann.lee;Ann;Lee;ann.lee@ville.fr;Archives;Archiviste;+33 6 55 55 55 55;oui;\n",
]


@pytest.fixture
def csv_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site from 'planb init' whose primary is a CSV export, crisis cell by group (in
    English: these tests read English words)."""
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    done = runner.invoke(app, ["init", str(tmp_path / "site"), "--site", "ville",
                               "--organisation", "Ville de Test", "--language", "en"])
    assert done.exit_code == 0, done.output
    config = tmp_path / "site" / "planb.yml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("  kind: ldap ", "  csv:\n    path: agents.csv\n  kind: csv  ", 1)
    text = text.replace('  groups: []            # e.g. ["Cellule de crise"]',
                        '  groups: ["cellule de crise"]', 1)
    config.write_text(text, encoding="utf-8")
    (tmp_path / "site" / "agents.csv").write_text(HEADER + "".join(ROWS), encoding="utf-8")
    return config


def invoke(config: Path, *args: str) -> str:
    result = runner.invoke(app, ["-c", str(config), "runbook", "render", "crisis-contacts",
                                 *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_sheet_groups_the_cell_by_department_and_sorts_names(csv_site: Path) -> None:
    text = invoke(csv_site, "--from", "primary")
    assert "3 people in 2 departments" in " ".join(text.split())
    assert text.index("## Archives") < text.index("## Direction des finances")
    finances = text[text.index("## Direction des finances"):]
    assert finances.index("Luc Bernard") < finances.index("Hack")
    assert "| Zoé Aubert | directrice | 06 22 22 22 22 | zoe.aubert@ville.fr | ☐ |" in text
    assert "Old One" not in text and "Ann Lee" not in text


def test_csv_sheet_neutralises_formulas_and_is_private(csv_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.csv"
    invoke(csv_site, "--from", "primary", "--format", "csv", "-o", str(out))
    assert os.stat(out).st_mode & 0o777 == 0o600
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["department", "name", "title", "mobile", "mail"]
    assert rows[1] == ["Archives", "Zoé Aubert", "directrice", "06 22 22 22 22",
                       "zoe.aubert@ville.fr"]
    assert rows[2][1:4] == ["Luc Bernard", "Juriste", "'+33 7 33 33 33 33"]
    assert rows[3][1] == "'=cmd|' /C calc'!A0 Hack" and rows[3][3] == "'+33 6 11 11 11 11"
    assert len(rows) == 4


def test_html_sheet_is_a_printable_page_with_a_table_per_department(csv_site: Path) -> None:
    page = invoke(csv_site, "--from", "primary", "--format", "html")
    assert '<html lang="en">' in page and page.count("<section") == 2
    assert page.count('<th scope="col">Mobile</th>') == 2


def test_lab_default_titles_pick_real_people_from_a_snapshot(lab_site: Path) -> None:  # noqa: F811
    agents = lab_agents().agents
    titles = {t.casefold() for t in DEFAULT_CRISIS_TITLES}
    expected = [a for a in agents if a.enabled and a.title.casefold() in titles]
    assert expected, "the lab's agents hold none of the default crisis titles"
    text = invoke(lab_site, "--from-snapshot", str(lab_site.parent / "agents.json"))
    assert f"{len(expected)} people in" in " ".join(text.split())
    for agent in expected:
        assert agent.mobile in text and f"## {agent.department}" in text


def test_default_reads_the_fallback_directory(lab_site: Path) -> None:  # noqa: F811
    result = runner.invoke(app, ["-c", str(lab_site), "runbook", "render", "crisis-contacts"])
    assert result.exit_code != 0 and "the fallback directory" in result.output


def test_primary_is_not_read_while_failover_is_active(csv_site: Path) -> None:
    state_dir = load_config(csv_site).state_dir
    freeze_sync(state_dir, by="test", why="incident", at="2026-01-01T00:00:00+00:00")
    result = runner.invoke(app, ["-c", str(csv_site), "runbook", "render", "crisis-contacts",
                                 "--from", "primary"])
    assert result.exit_code == 2 and "--from-snapshot" in " ".join(result.output.split())


def test_an_empty_cell_is_an_error_not_an_empty_sheet(csv_site: Path) -> None:
    config = csv_site.read_text(encoding="utf-8").replace(
        'groups: ["cellule de crise"]', 'groups: ["nobody"]').replace(
        '"Directeur", "Directrice", ', "")
    csv_site.write_text(config, encoding="utf-8")
    result = runner.invoke(app, ["-c", str(csv_site), "runbook", "render", "crisis-contacts",
                                 "--from", "primary"])
    assert result.exit_code == 2 and "crisis_cell" in result.output


def test_a_cell_with_neither_groups_nor_titles_is_a_config_error(csv_site: Path) -> None:
    text = csv_site.read_text(encoding="utf-8")
    start = text.index("crisis_cell:")
    end = text.index("\npaths:")
    csv_site.write_text(text[:start] + "crisis_cell:\n  groups: []\n  titles: []\n"
                        + text[end:], encoding="utf-8")
    with pytest.raises(ConfigError, match="crisis_cell") as raised:
        load_config(csv_site)
    assert "would be empty" in str(raised.value)


def test_membership_ignores_case_and_accents_and_leavers() -> None:
    from planb.directory.model import Agent

    cell = CrisisCellConfig(groups=["Cellule de Crise"], titles=["Directrice générale"])
    assert in_cell(Agent("1", "a", title="DIRECTRICE GENERALE"), cell)
    assert in_cell(Agent("2", "b", groups=frozenset({"cellule de crise"})), cell)
    assert not in_cell(Agent("3", "c", title="Directrice générale", enabled=False), cell)
    assert not in_cell(Agent("4", "d", title="Directrice"), cell)
    sheet = build_sheet([Agent("5", "e", title="Directrice générale")], cell, "test")
    assert sheet.departments[0][0] == "(no department)" and sheet.count == 1
