"""The copy key and the crisis cell's passphrase that wraps it.

The secrets in the copy are encrypted with a random **copy key** (Fernet: AES-128-CBC
and HMAC-SHA256, from the ``cryptography`` package) kept on the controller in
``<state>/keys/copy.key`` (0600), so a push needs no passphrase. The copy key is also
kept **wrapped** in ``<state>/keys/copy-key.json``: encrypted with a key derived from
the crisis cell's passphrase by scrypt (salt and cost in the file). That file travels
with the copy; on a fresh machine the passphrase unwraps the copy key, which decrypts
the secrets. A wrong passphrase fails Fernet's authentication: nothing is decrypted.

The passphrase is never logged, printed, or put in an exception message.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from planb.errors import PlanbError, UsageError
from planb.files import write_atomic
from planb.statecopy.content import COPY_KEY, WRAPPED_KEY

log = logging.getLogger(__name__)

WRAP_FORMAT = "planb-copy-key/1"
#: scrypt's cost: 2**17 x 8 x 128 bytes = 128 MiB and about a second, per guess.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
MIN_PASSPHRASE = 12


class PassphraseRefused(PlanbError):
    """The passphrase does not unwrap the copy key (wrong, or the file was altered)."""


@dataclass(frozen=True)
class WrappedKey:
    """The copy key encrypted under a passphrase-derived key (``copy-key.json``)."""

    salt: bytes
    n: int
    r: int
    p: int
    token: bytes

    def as_json(self) -> dict[str, object]:
        return {"format": WRAP_FORMAT, "kdf": "scrypt", "n": self.n, "r": self.r, "p": self.p,
                "salt": base64.b64encode(self.salt).decode("ascii"),
                "token": self.token.decode("ascii")}

    @classmethod
    def from_json(cls, data: object) -> WrappedKey:
        if not isinstance(data, dict) or data.get("format") != WRAP_FORMAT \
                or data.get("kdf") != "scrypt":
            raise PlanbError("not a planb copy key file (copy-key.json)")
        try:
            return cls(salt=base64.b64decode(str(data["salt"]), validate=True),
                       n=int(data["n"]), r=int(data["r"]), p=int(data["p"]),
                       token=str(data["token"]).encode("ascii"))
        except (KeyError, ValueError, TypeError):
            raise PlanbError("copy-key.json is damaged") from None

    def unwrap(self, passphrase: bytes) -> bytes:
        """The copy key; :class:`PassphraseRefused` when the passphrase is wrong."""
        if not (2 <= self.n <= 2**22 and self.r <= 64 and self.p <= 16):
            raise PlanbError("copy-key.json asks for an unreasonable scrypt cost")
        try:
            return Fernet(_derive(passphrase, self.salt, self.n, self.r, self.p)).decrypt(
                self.token)
        except InvalidToken:
            raise PassphraseRefused(
                "wrong passphrase: it does not open the copy of the controller's state",
                hint="the crisis cell's passphrase, set with 'planb controller passphrase'; "
                "nothing was written") from None


def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)
    return base64.urlsafe_b64encode(key)


def wrap(copy_key: bytes, passphrase: bytes) -> WrappedKey:
    """``copy_key`` encrypted under ``passphrase`` (scrypt, a new random salt)."""
    salt = os.urandom(16)
    token = Fernet(_derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).encrypt(copy_key)
    return WrappedKey(salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, token)


def check_passphrase(passphrase: bytes) -> None:
    """Refuse a passphrase too short to stand a guessing attack on a stolen copy."""
    if len(passphrase.decode("utf-8", "replace").strip()) < MIN_PASSPHRASE:
        raise UsageError(f"the passphrase is too short: use at least {MIN_PASSPHRASE} "
                         "characters (several words the crisis cell can write down)")


def copy_key_path(state_dir: Path) -> Path:
    return state_dir / COPY_KEY


def wrapped_key_path(state_dir: Path) -> Path:
    return state_dir / WRAPPED_KEY


def load_copy_key(state_dir: Path) -> bytes | None:
    """The copy key, or None when no passphrase was ever set."""
    path = copy_key_path(state_dir)
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    try:
        Fernet(key)
    except ValueError:
        raise PlanbError(f"{path}: not a copy key",
                         hint="set the passphrase again: 'planb controller passphrase'") from None
    return key


def set_passphrase(state_dir: Path, passphrase: bytes) -> bool:
    """Wrap the copy key (made now if there is none) under ``passphrase``; True when a
    new copy key was made. Copies pushed later need this passphrase to be opened."""
    check_passphrase(passphrase)
    key = load_copy_key(state_dir)
    made = key is None
    if key is None:
        key = Fernet.generate_key()
    keys = copy_key_path(state_dir).parent
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    wrapped = wrap(key, passphrase)
    if made:
        write_atomic(copy_key_path(state_dir), key + b"\n", 0o600)
    write_atomic(wrapped_key_path(state_dir),
                 (json.dumps(wrapped.as_json(), indent=2) + "\n").encode("ascii"), 0o644)
    log.info("copy key %s and wrapped under the crisis cell's passphrase in %s",
             "made" if made else "kept", wrapped_key_path(state_dir))
    return made


def encrypt(key: bytes, data: bytes) -> bytes:
    return Fernet(key).encrypt(data)


def decrypt(key: bytes, token: bytes, what: str) -> bytes:
    """Decrypt ``token``; an altered one is refused naming ``what``."""
    try:
        return Fernet(key).decrypt(token)
    except InvalidToken:
        raise PlanbError(f"{what} does not decrypt with the copy key: altered or "
                         "damaged", hint="take the copy from another host") from None
