"""``planb enrol letters|export|reissue`` against a really synced lab (issue 12 §2).

After a real sync has issued codes into the lab's fallback directory (slapd):

- the letters hold one letter per agent with a live code, and every letter's code
  verifies against the hash the directory keeps for that agent; the file is mode 0600
  and the command says so; the CSV carries the same codes;
- 'reissue' gives an agent a new code: the old letter's code stops verifying, the
  reprinted letter's (PDF too) verifies;
- a key that is not the one that issued the codes writes nothing and says why;
- no code appears in the commands' output nor in planb's logs.
"""

from __future__ import annotations

import csv
import html
import io
import logging
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.config import SiteConfig
from planb.directory.fallback_endpoint import fallback_endpoint
from planb.directory.ldap_source import paged_entries
from planb.enrolment_code import KEY_PATH, verify_code
from tests.integration.conftest import LabSession
from tests.integration.lab_state import ldap_only

pytestmark = pytest.mark.lab
runner = CliRunner()
LETTER = re.compile(r'<span class="login">([^<]*)</span>.*?<span class="value">([^<]*)</span>',
                    re.S)


def cli(site: SiteConfig, *args: str) -> tuple[int, str]:
    done = runner.invoke(app, ["--config", str(site.source), *args])
    return done.exit_code, done.output


@pytest.fixture(scope="module")
def logged() -> Iterator[list[str]]:
    """Everything planb logs (DEBUG) while the module runs."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler, planb_log = Keep(logging.DEBUG), logging.getLogger("planb")
    old = planb_log.level
    planb_log.addHandler(handler)
    planb_log.setLevel(logging.DEBUG)
    yield lines
    planb_log.removeHandler(handler)
    planb_log.setLevel(old)


@pytest.fixture(scope="module")
def lab(standby_lab: LabSession, logged: list[str]) -> LabSession:
    """The standby lab with the fallback LDAP synced: every active agent has a code."""
    with ldap_only(standby_lab.site):
        code, out = cli(standby_lab.site, "sync", "apply", "--yes", "--ldap-only", "--adopt")
    assert code == 0, out
    return standby_lab


def stored_codes(site: SiteConfig) -> dict[str, str]:
    """login -> the code hash the fallback directory holds (as the sync account reads it)."""
    conn = fallback_endpoint(site).connect(read_only=True)
    try:
        found = {}
        for _, attrs in paged_entries(conn, f"ou=people,{site.fallback.ldap_suffix}",
                                      "(&(objectClass=planbAgent)(planbEnrolmentCode=*))",
                                      ["uid", "planbEnrolmentCode"], 1000, "fallback"):
            found[str(attrs["uid"][0])] = str(attrs["planbEnrolmentCode"][0])
        return found
    finally:
        conn.unbind()


def letters_in(path: Path) -> dict[str, str]:
    """login -> code, from the letters' HTML."""
    text = path.read_text(encoding="utf-8")
    return {html.unescape(login): code for login, code in LETTER.findall(text)}


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def no_code_in(texts: list[str], codes: set[str]) -> None:
    joined = "\n".join(texts)
    for code in codes:
        assert code not in joined and code.replace("-", "") not in joined


def test_every_letters_code_verifies_against_the_directory_and_the_csv_agrees(
        lab: LabSession, tmp_path: Path, logged: list[str]) -> None:
    site = lab.site
    stored = stored_codes(site)
    assert len(stored) > 50, "the sync issued no codes"
    out = tmp_path / "letters.html"
    code, output = cli(site, "enrol", "letters", "-o", str(out))
    assert code == 0, output
    assert private(out) and "(mode 0600)" in output and "delete it" in output
    letters = letters_in(out)
    assert set(letters) == set(stored), set(letters) ^ set(stored)
    wrong = [login for login, c in letters.items() if not verify_code(c, stored[login])]
    assert wrong == []
    assert '<html lang="fr">' in out.read_text(encoding="utf-8")
    sheet = tmp_path / "codes.csv"
    code, exported = cli(site, "enrol", "export", "-o", str(sheet))
    assert code == 0, exported
    assert private(sheet) and "(mode 0600)" in exported
    rows = list(csv.DictReader(io.StringIO(sheet.read_text(encoding="utf-8"), newline="")))
    by_login = {r["login"].removeprefix("'"): r for r in rows}
    assert {k: r["code"] for k, r in by_login.items()} == letters
    assert all(r["enrol_url"] == f"https://{site.matrix.public_hostname}/enrol/"
               for r in rows)
    no_code_in([output, exported, *logged], set(letters.values()))


def test_reissue_replaces_the_code_and_the_reprinted_letter_carries_the_new_one(
        lab: LabSession, tmp_path: Path, logged: list[str]) -> None:
    site = lab.site
    login = sorted(stored_codes(site))[3]
    before = tmp_path / "before.html"
    assert cli(site, "enrol", "letters", "--login", login, "-o", str(before))[0] == 0
    old = letters_in(before)
    assert list(old) == [login]
    code, output = cli(site, "enrol", "reissue", login)
    assert code == 0, output
    assert f"planb enrol letters --login {login}" in output
    stored = stored_codes(site)[login]
    assert not verify_code(old[login], stored)  # the old letter is dead
    after = tmp_path / "after.html"
    assert cli(site, "enrol", "letters", "--login", login, "-o", str(after))[0] == 0
    new = letters_in(after)
    assert new[login] != old[login] and verify_code(new[login], stored)
    pdf = tmp_path / "after.pdf"
    code, printed = cli(site, "enrol", "letters", "--login", login, "-o", str(pdf))
    assert code == 0, printed
    assert pdf.read_bytes().startswith(b"%PDF") and private(pdf)
    code, refused = cli(site, "enrol", "reissue", "nobody-here")
    assert code == 1 and "no new code" in refused
    no_code_in([output, printed, refused, *logged], {old[login], new[login]})


def test_another_key_writes_nothing(lab: LabSession, tmp_path: Path) -> None:
    site = lab.site
    key = site.state_dir / KEY_PATH
    saved = key.read_bytes()
    out = tmp_path / "letters.html"
    try:
        key.write_bytes(bytes(len(saved)))
        code, output = cli(site, "enrol", "letters", "-o", str(out))
    finally:
        key.write_bytes(saved)
    assert code == 1 and "does not give the code" in output, output
    assert not out.exists()
