"""The signing key: creation, permissions, passphrases, fingerprints."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from planb.errors import PlanbError, UsageError
from planb.reports.keys import (
    PASSPHRASE_ENV,
    KeyPaths,
    PassphraseSource,
    fingerprint,
    init_keys,
    load_private_key,
    load_public_key,
    load_signer,
    site_public_keys,
)

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture
def paths(tmp_path: Path) -> KeyPaths:
    return KeyPaths.for_state_dir(tmp_path / "state")


def test_init_writes_private_key_0600_in_0700_dir_and_public_key(paths: KeyPaths) -> None:
    fp = init_keys(paths, None)
    assert stat.S_IMODE(paths.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.private.stat().st_mode) == 0o600
    assert paths.private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    public = load_public_key(paths.public)
    assert fingerprint(public) == fp
    assert fingerprint(load_private_key(paths.private, None).public_key()) == fp


def test_fingerprint_is_sha256_hex_of_raw_public_key(paths: KeyPaths) -> None:
    fp = init_keys(paths, None)
    raw = load_public_key(paths.public).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(raw) == 32
    assert fp == "SHA256:" + hashlib.sha256(raw).hexdigest()


def test_refuses_to_overwrite_without_force(paths: KeyPaths) -> None:
    first = init_keys(paths, None)
    with pytest.raises(UsageError, match="already exists"):
        init_keys(paths, None)
    assert fingerprint(load_public_key(paths.public)) == first


def test_force_replaces_key_and_keeps_old_public_key(paths: KeyPaths) -> None:
    first = init_keys(paths, None)
    second = init_keys(paths, None, force=True)
    assert first != second
    assert [fingerprint(k) for k in site_public_keys(paths)] == [second, first]


def test_passphrase_round_trip(paths: KeyPaths) -> None:
    fp = init_keys(paths, PASSPHRASE)
    assert b"ENCRYPTED PRIVATE KEY" in paths.private.read_bytes()
    assert fingerprint(load_private_key(paths.private, PASSPHRASE).public_key()) == fp


def test_wrong_passphrase_is_a_clear_error_without_the_secret(paths: KeyPaths) -> None:
    init_keys(paths, PASSPHRASE)
    wrong = b"not-the-passphrase-1234"
    with pytest.raises(PlanbError) as caught:
        load_private_key(paths.private, wrong)
    text = f"{caught.value} {caught.value.hint}"
    assert "wrong passphrase" in text
    assert wrong.decode() not in text and PASSPHRASE.decode() not in text


def test_missing_passphrase_for_encrypted_key_says_how_to_give_it(paths: KeyPaths) -> None:
    init_keys(paths, PASSPHRASE)
    with pytest.raises(PlanbError, match="encrypted and no passphrase") as caught:
        load_private_key(paths.private, None)
    assert PASSPHRASE_ENV in (caught.value.hint or "")


def test_missing_key_points_to_keys_init(paths: KeyPaths) -> None:
    with pytest.raises(PlanbError, match="no signing key") as caught:
        load_private_key(paths.private, None)
    assert "planb keys init" in (caught.value.hint or "")


def test_passphrase_from_file_strips_newline(tmp_path: Path, paths: KeyPaths) -> None:
    secret = tmp_path / "pass"
    secret.write_bytes(PASSPHRASE + b"\n")
    init_keys(paths, PassphraseSource(file=secret).read())
    assert load_private_key(paths.private, PASSPHRASE)


def test_passphrase_from_env_and_default_env(monkeypatch: pytest.MonkeyPatch,
                                             paths: KeyPaths) -> None:
    monkeypatch.setenv("MY_PASS", PASSPHRASE.decode())
    assert PassphraseSource(env="MY_PASS").read() == PASSPHRASE
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    assert PassphraseSource().read() is None
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE.decode())
    init_keys(paths, PASSPHRASE)
    assert load_signer(paths).fingerprint == fingerprint(load_public_key(paths.public))


def test_passphrase_source_errors_name_the_source_not_the_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_VAR", raising=False)
    with pytest.raises(UsageError, match="UNSET_VAR is not set"):
        PassphraseSource(env="UNSET_VAR").read()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(UsageError, match="empty"):
        PassphraseSource(file=empty).read()
    with pytest.raises(UsageError, match="not both"):
        PassphraseSource(file=empty, env="X")


def test_signer_repr_shows_no_key_material(paths: KeyPaths) -> None:
    init_keys(paths, None)
    signer = load_signer(paths, PassphraseSource())
    assert repr(signer) == f"Signer({signer.fingerprint})"


def test_public_key_file_errors(tmp_path: Path) -> None:
    with pytest.raises(PlanbError, match="not found"):
        load_public_key(tmp_path / "nope.pub")
    junk = tmp_path / "junk.pub"
    junk.write_text("hello")
    with pytest.raises(PlanbError, match="not a PEM public key"):
        load_public_key(junk)
