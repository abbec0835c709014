"""CSV exports as administrations produce them: encodings, separators, quotes, bad rows."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from planb.directory.csv_source import detect_delimiter, read_csv
from planb.errors import UsageError

MAPPING = {"id": "Matricule", "login": "Identifiant", "given_name": "Prénom",
           "surname": "Nom", "mail": "Courriel", "department": "Direction",
           "enabled": "Actif"}
HEADER = ["Matricule", "Identifiant", "Prénom", "Nom", "Courriel", "Direction", "Actif"]
ROWS = [
    ["A001", "jdupont", "Jean", "Dupont", "jean.dupont@grandlyon.example",
     "Finances; budget, achats", "oui"],
    ["A002", "emuller", "Élodie", "Müller", "elodie.muller@grandlyon.example",
     'Direction "Habitat"\net logement', "non"],
    ["A003", "zoe", "Zoë", "L'Hôte", "", "Voirie", "actif"],
]


def _field(value: str, sep: str) -> str:
    if any(c in value for c in (sep, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def write_export(path: Path, rows: list[list[str]], *, sep: str, encoding: str,
                 newline: str, bom: bool = False) -> Path:
    lines = [sep.join(_field(v, sep) for v in row) for row in [HEADER, *rows]]
    text = newline.join(lines) + newline
    data = text.encode(encoding)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + data)
    return path


@pytest.mark.parametrize("sep", [";", ","])
@pytest.mark.parametrize(("encoding", "bom"), [("utf-8", False), ("utf-8", True),
                                               ("cp1252", False)])
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_dialects_read_the_same_agents(tmp_path: Path, sep: str, encoding: str, bom: bool,
                                       newline: str) -> None:
    path = write_export(tmp_path / "agents.csv", ROWS, sep=sep, encoding=encoding,
                        newline=newline, bom=bom)
    result = read_csv(path, MAPPING)
    assert result.rejections == ()
    by_login = {a.login: a for a in result.agents}
    assert list(by_login) == ["jdupont", "emuller", "zoe"]
    assert by_login["jdupont"].department == "Finances; budget, achats"
    assert by_login["emuller"].given_name == "Élodie"
    # a line break inside quotes (Excel writes LF there, even in CRLF files) is kept
    assert by_login["emuller"].department == 'Direction "Habitat"\net logement'
    assert by_login["emuller"].enabled is False
    assert by_login["zoe"].surname == "L'Hôte" and by_login["zoe"].enabled


def test_explicit_encoding_and_delimiter(tmp_path: Path) -> None:
    path = write_export(tmp_path / "a.csv", ROWS, sep=",", encoding="cp1252", newline="\r\n")
    result = read_csv(path, MAPPING, encoding="cp1252", delimiter=",")
    assert [a.given_name for a in result.agents] == ["Jean", "Élodie", "Zoë"]


def test_wrong_explicit_encoding_names_file_and_line(tmp_path: Path) -> None:
    path = write_export(tmp_path / "a.csv", ROWS, sep=";", encoding="cp1252", newline="\n")
    with pytest.raises(UsageError, match=r"a\.csv:1: byte 0xe9 is not valid utf-8"):
        read_csv(path, MAPPING, encoding="utf-8")


def test_rejections_carry_the_physical_start_line(tmp_path: Path) -> None:
    rows = [
        ROWS[1],                                                   # lines 2-3 (quoted break)
        ["A010", "", "Sans", "Login", "", "RH", "oui"],            # line 4
        ["", "sansid", "Sans", "Id", "", "RH", "oui"],             # line 5
        ["A011", "EMULLER", "Autre", "Müller", "", "RH", "oui"],   # line 6: duplicate login
        ["A002", "autre", "Même", "Matricule", "", "RH", "oui"],   # line 7: duplicate id
        ["A012", "badmail", "Mal", "Formé", "pas@adresse", "RH", "oui"],  # line 8
        ["A013", "peut", "Peut", "Être", "", "RH", "peut-être"],   # line 9
        ["A014", "vide", "Actif", "Vide", "", "RH", ""],           # line 10
        ["A015", "ok", "Bon", "Agent", "", 'Multi\nligne', "oui"],  # lines 11-12
        ["A016", "court", "Trop", "Court"],                         # line 13
    ]
    path = write_export(tmp_path / "agents.csv", rows, sep=";", encoding="utf-8",
                        newline="\r\n")
    result = read_csv(path, MAPPING)
    assert [a.login for a in result.agents] == ["emuller", "ok"]
    got = {r.line: r.reason for r in result.rejections}
    assert got[4] == "missing login (nothing in 'identifiant')"
    assert got[5] == "missing id (nothing in 'matricule')"
    assert got[6] == "duplicate login 'EMULLER' (first seen at line 2)"
    assert got[7] == "duplicate id 'A002' (first seen at line 2)"
    assert got[8] == "invalid mail 'pas@adresse'"
    assert got[9].startswith("enabled: 'peut-être' is neither true")
    assert got[10] == "enabled: empty value"
    assert got[13].startswith("has 4 fields but the header has 7")
    assert sorted(got) == [4, 5, 6, 7, 8, 9, 10, 13]
    assert {r.id for r in result.rejections if r.line == 4} == {"A010"}
    assert all(r.where() == f"{path}:{r.line}" for r in result.rejections)


def test_strict_refuses_the_whole_file_naming_lines(tmp_path: Path) -> None:
    rows = [ROWS[0], ["A009", "", "Sans", "Login", "", "RH", "oui"]]
    path = write_export(tmp_path / "agents.csv", rows, sep=",", encoding="utf-8", newline="\n")
    with pytest.raises(UsageError) as info:
        read_csv(path, MAPPING, strict=True)
    message = str(info.value)
    assert "1 row(s) rejected, nothing done (--strict)" in message
    assert f"{path}:3: missing login" in message
    assert read_csv(path, MAPPING).agents[0].login == "jdupont"  # without --strict: the rest


def test_missing_mapped_column_is_a_clear_error(tmp_path: Path) -> None:
    path = write_export(tmp_path / "agents.csv", ROWS, sep=";", encoding="utf-8", newline="\n")
    with pytest.raises(UsageError, match=r"agents\.csv:1: no column 'service' for department"):
        read_csv(path, {**MAPPING, "department": "Service"})


def test_default_headers_are_the_field_names(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("id,login,mail,groups\n1,ana,ana@x.example,Tous|Cadres\n", encoding="utf-8")
    (agent,) = read_csv(path).agents
    assert (agent.login, agent.groups) == ("ana", frozenset({"Tous", "Cadres"}))


def test_broken_quotes_refuse_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text('id;login\n1;"ok"\n2;"bad"x\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"broken\.csv:3: unreadable CSV"):
        read_csv(path)


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(UsageError, match="empty"):
        read_csv(empty)
    with pytest.raises(UsageError, match="cannot read the CSV export"):
        read_csv(tmp_path / "absent.csv")


@pytest.mark.parametrize("sep", [";", ","])
def test_delimiter_falls_back_on_header_counts(sep: str) -> None:
    text = "id;login;x\n1;a\n2;b;c;d;e\n".replace(";", sep)  # csv.Sniffer gives up here
    assert detect_delimiter(text) == sep


def test_headers_match_whatever_the_unicode_form(tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_text("Matricule;Identifiant;Pre\u0301nom\n1;ana;Ana\n", encoding="utf-8")
    mapping = {"id": "Matricule", "login": "Identifiant", "given_name": "Prénom"}
    (agent,) = read_csv(path, mapping).agents
    assert agent.given_name == "Ana"


def test_a_rejected_row_marked_inactive_is_a_disabled_rejection(tmp_path: Path) -> None:
    rows = [["A020", "parti", "Parti", "Agent", "pas@adresse", "RH", "non"],
            ["A021", "reste", "Reste", "Agent", "pas@adresse", "RH", "oui"]]
    path = write_export(tmp_path / "agents.csv", rows, sep=";", encoding="utf-8", newline="\n")
    result = read_csv(path, MAPPING)
    assert {r.login: r.disabled for r in result.rejections} == {"parti": True, "reste": False}
