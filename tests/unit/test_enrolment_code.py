"""Enrolment codes: derivation, normalisation, the slow hash and its bounds, the key."""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import stat
import time
from pathlib import Path

import pytest

from planb import enrolment_code as ec

KEY = bytes(range(32))


def test_a_code_is_12_symbols_of_the_alphabet_and_deterministic() -> None:
    code = ec.derive_code(KEY, "uid-0001", 1)
    assert len(code) == 12 and set(code) <= set(ec.ALPHABET)
    assert ec.derive_code(KEY, "uid-0001", 1) == code
    assert ec.derive_code(KEY, "uid-0001", 2) != code
    assert ec.derive_code(KEY, "uid-0002", 1) != code
    assert ec.derive_code(bytes(32), "uid-0001", 1) != code


def test_the_alphabet_has_32_symbols_none_misreadable() -> None:
    assert len(set(ec.ALPHABET)) == 32
    assert not set("01OI") & set(ec.ALPHABET)


def test_the_code_is_hmac_sha256_of_source_id_and_serial() -> None:
    """The contract's derivation, so letters printed by any version agree."""
    import hmac
    digest = hmac.new(KEY, b"uid-7\n3", hashlib.sha256).digest()
    bits = int.from_bytes(digest[:8], "big") >> 4
    expected = "".join(ec.ALPHABET[(bits >> (5 * (11 - i))) & 31] for i in range(12))
    assert ec.derive_code(KEY, "uid-7", 3) == expected


def test_codes_spread_over_the_whole_alphabet_in_every_position() -> None:
    codes = [ec.derive_code(KEY, f"uid-{i}", 1) for i in range(2000)]
    for position in range(12):
        assert {code[position] for code in codes} == set(ec.ALPHABET)
    assert len(set(codes)) == len(codes)


def test_derive_refuses_an_empty_key_or_negative_serial() -> None:
    with pytest.raises(ValueError):
        ec.derive_code(b"", "uid", 1)
    with pytest.raises(ValueError):
        ec.derive_code(KEY, "uid", -1)


@pytest.mark.parametrize("typed", ["abcd-efgh-jkmn", " ABCD EFGH JKMN ", "abcdefghjkmn",
                                   "AB-CD-EF-GH-JK-MN", "abcd\tefgh\njkmn"])
def test_normalise_accepts_what_people_type(typed: str) -> None:
    assert ec.normalise_code(typed) == "ABCDEFGHJKMN"


@pytest.mark.parametrize("typed", ["", "ABCD-EFGH-JKM", "ABCD-EFGH-JKMNP", "ABCD-EFGH-JKM0",
                                   "ABCD-EFGH-JKMO", "ABCD-EFGH-JKM1", "ABCD-EFGH-JKMI",
                                   "ABCD_EFGH_JKMN", "ABCD-EFGH-JKMÉ", "A" * 1000])
def test_normalise_refuses_anything_else(typed: str) -> None:
    assert ec.normalise_code(typed) is None


def test_format_groups_by_four() -> None:
    assert ec.format_code("abcdefghjkmn") == "ABCD-EFGH-JKMN"


def test_hash_has_the_contract_format_and_verifies() -> None:
    code = ec.derive_code(KEY, "uid-1", 1)
    stored = ec.hash_code(code)
    head, salt, digest = stored.rsplit("$", 2)
    assert head == "$scrypt$ln=14,r=8,p=1"
    assert "=" not in salt + digest
    assert len(base64.b64decode(salt + "==")) == 16
    raw = base64.b64decode(digest + "=" * (-len(digest) % 4))
    assert raw == hashlib.scrypt(code.encode(), salt=base64.b64decode(salt + "=="),
                                 n=1 << 14, r=8, p=1, dklen=32)
    assert ec.verify_code(code, stored)
    assert ec.verify_code(ec.format_code(code).lower(), stored)
    assert not ec.verify_code(ec.derive_code(KEY, "uid-1", 2), stored)
    assert code not in stored


def test_the_same_code_hashes_differently_each_time() -> None:
    code = ec.derive_code(KEY, "uid-1", 1)
    assert ec.hash_code(code) != ec.hash_code(code)


def _stored(code: str, ln: int, r: int, p: int) -> str:
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(code.encode(), salt=salt, n=1 << ln, r=r, p=p,
                            maxmem=128 * r * (1 << ln) + (1 << 20), dklen=32)
    return f"$scrypt$ln={ln},r={r},p={p}${ec._b64(salt)}${ec._b64(digest)}"


@pytest.mark.parametrize(("ln", "r", "p"), [(10, 1, 1), (10, 16, 1), (10, 1, 4), (12, 8, 2)])
def test_parameters_within_bounds_verify(ln: int, r: int, p: int) -> None:
    code = ec.derive_code(KEY, "uid", 1)
    assert ec.verify_code(code, _stored(code, ln, r, p))


@pytest.mark.parametrize("params", ["ln=9,r=8,p=1", "ln=17,r=8,p=1", "ln=30,r=8,p=1",
                                    "ln=14,r=0,p=1", "ln=14,r=17,p=1", "ln=14,r=99,p=1",
                                    "ln=14,r=8,p=0", "ln=14,r=8,p=5", "ln=14,r=8,p=9"])
def test_parameters_outside_bounds_are_refused_without_hashing(params: str) -> None:
    """A forged entry asking for ln=30 would take the host minutes and gigabytes."""
    code = ec.derive_code(KEY, "uid", 1)
    good = ec.hash_code(code)
    forged = good.replace("ln=14,r=8,p=1", params)
    started = time.monotonic()
    assert not ec.verify_code(code, forged)
    assert time.monotonic() - started < 0.01


@pytest.mark.parametrize("stored", ["", "plain", "{SSHA}abc", "$scrypt$ln=14,r=8,p=1$$",
                                    "$scrypt$ln=14,r=8,p=1$c2FsdA$!!!",
                                    "$scrypt$ln=14,r=8,p=1$c2FsdA$c2hvcnQ",
                                    "$scrypt$ln=14,r=8,p=1$c2FsdA",
                                    "$scrypt$ln=14,r=8,p=1$c2FsdA$c2FsdA$c2FsdA"])
def test_malformed_stored_values_never_verify(stored: str) -> None:
    assert not ec.verify_code(ec.derive_code(KEY, "uid", 1), stored)


def test_a_malformed_typed_code_never_verifies() -> None:
    stored = ec.hash_code(ec.derive_code(KEY, "uid", 1))
    assert not ec.verify_code("", stored)
    assert not ec.verify_code("nonsense", stored)


def test_the_key_is_created_once_private_and_kept(tmp_path: Path) -> None:
    key = ec.load_or_create_key(tmp_path)
    path = tmp_path / "keys" / "enrolment.key"
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ec.load_or_create_key(tmp_path) == key
    assert list(path.parent.iterdir()) == [path]


def test_two_sites_get_different_keys(tmp_path: Path) -> None:
    assert ec.load_or_create_key(tmp_path / "a") != ec.load_or_create_key(tmp_path / "b")


def _load(state_dir: str) -> bytes:
    return ec.load_or_create_key(Path(state_dir))


def test_processes_racing_to_create_the_key_all_get_the_same(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        keys = pool.map(_load, [str(tmp_path)] * 16)
    assert len(set(keys)) == 1


def test_a_damaged_key_file_is_an_error_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "enrolment.key"
    path.parent.mkdir()
    path.write_bytes(b"short")
    with pytest.raises(ec.EnrolmentKeyError, match="5 bytes"):
        ec.load_or_create_key(tmp_path)
    assert path.read_bytes() == b"short"
