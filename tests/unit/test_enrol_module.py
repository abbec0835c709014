"""The enrolment page's form handler (roles/synapse/files/planb_enrol.py), by path.

The module runs inside Synapse; here its pure parts run for real (the form parser, the
password policy, the code check against hashes made by planb.enrolment_code, the
buckets, the pages, the audit line) and :class:`Enrolment` decides with a stand-in
directory that records what reached it. The LDAP exchange itself, nginx and Synapse
are tested on the lab (tests/integration/test_enrolment_page_lab.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest

import planb
from planb import enrolment_code
from planb.enrol_page import LOGIN_MARK, MESSAGE_MARK, MESSAGES

FILES = planb.data_path("playbooks") / "roles" / "synapse" / "files"
CODE = "ABCD-EFGH-JKLM"
GOOD = "Tr0mbone-Vert"


@pytest.fixture(scope="module")
def mod() -> Iterator[ModuleType]:
    sys.path.insert(0, str(FILES))
    try:
        yield importlib.import_module("planb_enrol")
    finally:
        sys.path.remove(str(FILES))


def body(**fields: str) -> bytes:
    base = {"login": "jdupont", "code": CODE, "password": GOOD, "password2": GOOD}
    base.update(fields)
    return urlencode(base).encode()


# --- the code ----------------------------------------------------------------------

def test_the_host_checks_the_hashes_planb_writes(mod: ModuleType) -> None:
    stored = enrolment_code.hash_code(CODE)
    code = mod.normalise_code(" abcd efgh-jklm ")
    assert code == enrolment_code.normalise_code(CODE) == "ABCDEFGHJKLM"
    assert mod.verify_code(code, stored)
    assert not mod.verify_code("ABCDEFGHJKLN", stored)
    # Same alphabet and length rules as planb's: 0, O, 1 and I are never code symbols.
    assert mod.ALPHABET == enrolment_code.ALPHABET
    for bad in ("ABCD-EFGH-JKL", "ABCD-EFGH-JKLMN", "ABCD-EFGH-JKL0", "ABCD-EFGH-JKLI", ""):
        assert mod.normalise_code(bad) is None, bad


def scrypt_hash(code: str, ln: int, r: int, p: int) -> str:
    """A true hash of ``code`` with these parameters (only the bounds can refuse it)."""
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(code.encode(), salt=salt, n=1 << ln, r=r, p=p, dklen=32,
                            maxmem=256 * r * (1 << ln) + (1 << 20))
    b64 = lambda raw: base64.b64encode(raw).decode().rstrip("=")  # noqa: E731
    return f"$scrypt$ln={ln},r={r},p={p}${b64(salt)}${b64(digest)}"


@pytest.mark.parametrize(("ln", "r", "p"), [(17, 2, 1), (9, 8, 1), (10, 17, 1),
                                            (10, 1, 5), (10, 0, 1)])
def test_a_hash_outside_the_bounds_is_refused_even_when_true(mod: ModuleType, ln: int,
                                                             r: int, p: int) -> None:
    code = "ABCDEFGHJKLM"
    if r > 0:
        assert not mod.verify_code(code, scrypt_hash(code, ln, r, p))
    else:
        assert not mod.verify_code(code, scrypt_hash(code, ln, 1, p).replace("r=1", "r=0"))
    assert mod.verify_code(code, scrypt_hash(code, 10, 1, 1))  # the same, within bounds
    assert not mod.verify_code(code, "not a hash")
    # Within the bounds but refused by OpenSSL (N >= 2**(16 r)): an answer, not a crash.
    assert not mod.verify_code(code, scrypt_hash(code, 10, 1, 1).replace("ln=10", "ln=16"))


# --- the form and the policy -------------------------------------------------------

def test_form_parser_wants_each_field_exactly_once(mod: ModuleType) -> None:
    form = mod.parse_form(body())
    assert form.login == "jdupont" and form.code == CODE and form.password == GOOD
    assert GOOD not in repr(form) and CODE not in repr(form)
    assert mod.parse_form(body() + b"&login=other") is None           # twice
    assert mod.parse_form(b"login=a&code=b&password=c") is None        # missing
    assert mod.parse_form(body() + b"&extra=1") is None                 # unknown field
    assert mod.parse_form(b"login=%ff&code=b&password=c&password2=c") is None  # not UTF-8
    assert mod.parse_form(b"") is None and mod.parse_form(b"garbage") is None
    assert mod.parse_form(body(login="x" * 5000)) is None               # too big


@pytest.mark.parametrize(("password", "again", "outcome"), [
    (GOOD, GOOD + "x", "mismatch"),
    ("Tr0mbone-", "Tr0mbone-", "too_short"),
    ("A1-" + "x" * 200, "A1-" + "x" * 200, "too_long"),
    ("trombonevert", "trombonevert", "too_few_classes"),
    ("trombone-vert", "trombone-vert", "too_few_classes"),
    ("Xx1-JDupont-99", "Xx1-JDupont-99", "contains_login"),
    (GOOD, GOOD, None),
    ("trombone vert 2026", "trombone vert 2026", None),  # lower, digit, other
])
def test_password_policy(mod: ModuleType, password: str, again: str, outcome: str | None) -> None:
    assert mod.policy_refusal("jdupont", password, again, 12) == outcome


def test_every_outcome_has_a_message_the_controller_renders(mod: ModuleType) -> None:
    assert set(mod.MESSAGE_OF.values()) == set(MESSAGES)
    assert mod.MESSAGE_MARK == MESSAGE_MARK and mod.LOGIN_MARK == LOGIN_MARK
    # Whatever tells a login exists shows the one refusal.
    for outcome in ("unknown_login", "no_code", "wrong_code", "locked", "leaver"):
        assert mod.MESSAGE_OF[outcome] == mod.REFUSED


# --- decisions around the directory ------------------------------------------------

@dataclass
class Directory:
    """Stand-in for planb_enrol_directory.EnrolDirectory: canned outcome, calls kept."""

    outcome: str = "wrong_code"
    calls: list[tuple[str, str]] = field(default_factory=list)

    def attempt(self, login: str, code: str, password: str, verify: Any, burn: Any) -> str:
        self.calls.append((login, code))
        return self.outcome


async def inline(fn: Any, *args: Any) -> Any:
    return fn(*args)


def enrolment(mod: ModuleType, tmp_path: Path, directory: Directory,
              per_address: tuple[float, float] = (0.0, 100.0),
              per_login: tuple[float, float] = (0.0, 10.0)) -> Any:
    settings = mod.EnrolSettings(directory=None, password_min_length=12,
                                 pages_file=str(tmp_path / "pages.json"),
                                 audit_log=str(tmp_path / "enrolment.log"),
                                 per_address=per_address, per_login=per_login)
    return mod.Enrolment(settings, directory, inline)


def test_weak_password_never_reaches_the_directory(mod: ModuleType, tmp_path: Path) -> None:
    d = Directory()
    e = enrolment(mod, tmp_path, d)
    assert asyncio.run(e.handle(body(password="short", password2="short"), "1.2.3.4")) \
        == ("too_short", "jdupont")
    assert asyncio.run(e.handle(body(code="not a code"), "1.2.3.4"))[0] == "bad_form"
    assert asyncio.run(e.handle(body(login="j(dupont)*"), "1.2.3.4"))[0] == "bad_form"
    assert d.calls == []


def test_address_bucket(mod: ModuleType, tmp_path: Path) -> None:
    d = Directory()
    e = enrolment(mod, tmp_path, d, per_address=(0.0, 3.0))
    outcomes = [asyncio.run(e.handle(body(login=f"agent{i}"), "1.2.3.4"))[0] for i in range(5)]
    assert outcomes == ["wrong_code"] * 3 + ["rate_limited"] * 2
    assert len(d.calls) == 3
    # Another address is not charged for it.
    assert asyncio.run(e.handle(body(login="agent9"), "5.6.7.8"))[0] == "wrong_code"


def test_login_bucket_across_addresses(mod: ModuleType, tmp_path: Path) -> None:
    d = Directory(outcome="unknown_login")
    e = enrolment(mod, tmp_path, d, per_login=(0.0, 2.0))
    outcomes = [asyncio.run(e.handle(body(login="JDupont" if i % 2 else "jdupont"),
                                     f"10.0.0.{i}"))[0] for i in range(4)]
    assert outcomes == ["unknown_login"] * 2 + ["rate_limited"] * 2
    assert len(d.calls) == 2


def test_success_and_policy_refusals_do_not_charge_the_buckets(mod: ModuleType,
                                                                tmp_path: Path) -> None:
    d = Directory(outcome="enrolled")
    e = enrolment(mod, tmp_path, d, per_address=(0.0, 1.0), per_login=(0.0, 1.0))
    for _ in range(3):
        assert asyncio.run(e.handle(body(), "1.2.3.4"))[0] == "enrolled"
        assert asyncio.run(e.handle(body(password2="x"), "1.2.3.4"))[0] == "mismatch"


def test_a_directory_crash_is_an_answer(mod: ModuleType, tmp_path: Path) -> None:
    class Broken(Directory):
        def attempt(self, *args: Any) -> str:
            raise RuntimeError(f"boom {args}")

    e = enrolment(mod, tmp_path, Broken())
    assert asyncio.run(e.handle(body(), "1.2.3.4"))[0] == "unavailable"


def test_audit_log_lines_hold_no_code_or_password(mod: ModuleType, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    e = enrolment(mod, tmp_path, Directory(outcome="wrong_code"))
    caplog.set_level("DEBUG")
    asyncio.run(e.handle(body(), "192.0.2.7"))
    asyncio.run(e.handle(body(login=GOOD + "-typed-here?"), "192.0.2.7"))  # not a login
    lines = (tmp_path / "enrolment.log").read_text().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["login"] == "jdupont" and first["address"] == "192.0.2.7"
    assert first["outcome"] == "wrong_code" and set(first) == {"time", "login", "address",
                                                               "outcome"}
    assert second["login"] == "" and second["outcome"] == "bad_form"
    for text in (Path(tmp_path / "enrolment.log").read_text(), caplog.text):
        for secret in (GOOD, CODE, "ABCDEFGHJKLM"):
            assert secret not in text


# --- pages ---------------------------------------------------------------------------

def test_pages_show_the_message_and_escape_the_login(mod: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "pages.json"
    path.write_text(json.dumps({
        "form": f"<main>{MESSAGE_MARK}<input value=\"{LOGIN_MARK}\"></main>",
        "success": "<p>Votre mot de passe est enregistré.</p>",
        "messages": {"refused": "Identifiant ou code <incorrect>", "too_short": "Trop court"}}))
    pages = mod.Pages(str(path))
    refused = pages.render("wrong_code", "jdupont")
    assert 'role="alert">Identifiant ou code &lt;incorrect&gt;</p>' in refused
    assert 'value="jdupont"' in refused
    assert pages.render("unknown_login", "jdupont") == refused  # the very same page
    hostile = pages.render("too_short", '"><script>alert(1)</script>')
    assert "<script>" not in hostile and 'value=""' in hostile
    assert pages.render("enrolled", "jdupont") == "<p>Votre mot de passe est enregistré.</p>"


def test_status_codes(mod: ModuleType) -> None:
    assert mod.STATUS["enrolled"] == 200 and mod.STATUS["rate_limited"] == 429
    assert mod.STATUS.get("wrong_code", 403) == mod.STATUS.get("unknown_login", 403) == 403
