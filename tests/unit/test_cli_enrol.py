"""'planb enrol': what the commands refuse before reaching the directory, and their help.

The commands against a real fallback directory are in the lab
(tests/integration/test_enrol_letters_lab.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.enrolment_code import KEY_PATH

runner = CliRunner()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site made by 'planb init'; returns its planb.yml."""
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "site"])
    assert result.exit_code == 0, result.output
    return tmp_path / "site" / "planb.yml"


@pytest.mark.parametrize("command", [["letters", "-o", "out.html"],
                                     ["export", "-o", "out.html"]])
def test_without_the_key_nothing_is_written_and_the_error_says_why(
        site: Path, command: list[str]) -> None:
    result = runner.invoke(app, ["--config", str(site), "enrol", *command])
    assert result.exit_code == 2, result.output
    assert "no enrolment key" in result.output and "planb sync apply" in result.output
    assert not Path("out.html").exists()
    # A damaged key is refused as well (a new one would print codes matching nothing).
    key = site.parent / ".planb" / KEY_PATH
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_bytes(b"short")
    again = runner.invoke(app, ["--config", str(site), "enrol", *command])
    assert again.exit_code == 2 and "is not an enrolment key" in again.output
    assert key.read_bytes() == b"short" and not Path("out.html").exists()  # left as it was


def test_an_unknown_language_is_a_usage_error(site: Path) -> None:
    result = runner.invoke(app, ["--config", str(site), "enrol", "letters", "--language",
                                 "de", "-o", "out.html"])
    assert result.exit_code == 2 and "use one of en, fr" in result.output
    assert not Path("out.html").exists()


def test_help_tells_what_to_do_with_the_letters() -> None:
    text = runner.invoke(app, ["enrol", "letters", "--help"]).output
    for words in ("grouped by department", "sealed", "delete the file", "planb enrol reissue"):
        assert words in " ".join(text.split()), words
    group = " ".join(runner.invoke(app, ["enrol", "--help"]).output.split())
    assert "mode 0600" in group and "never logged" in group
