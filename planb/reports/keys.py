"""The site's Ed25519 signing key: create it, load it, export its public half.

Layout, in the site state dir::

    keys/               mode 0700
      signing.key       private key, PEM PKCS#8, mode 0600, encrypted with a passphrase if given
      signing.pub       public key, PEM SubjectPublicKeyInfo, mode 0644
      retired/          public keys replaced by ``keys init --force`` (journals signed with
                        them still verify with them)

Fingerprint: ``SHA256:`` followed by the lower-case hex SHA-256 of the raw 32-byte
Ed25519 public key (64 hex digits). Hex rather than base64 so it reads aloud and
compares on paper without case or ``+/`` ambiguity. The same text is written in every
journal (``key_fingerprint``) and shown by ``planb keys export``.

Passphrases come from a file (``--passphrase-file``, trailing newline removed) or an
environment variable (``--passphrase-env VAR``; ``PLANB_KEY_PASSPHRASE`` when neither
option is given). They are never logged, printed, or put in an exception message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from planb.errors import PlanbError, UsageError
from planb.files import write_atomic

log = logging.getLogger(__name__)

PASSPHRASE_ENV = "PLANB_KEY_PASSPHRASE"
FINGERPRINT_PREFIX = "SHA256:"


class SigningKeyError(PlanbError):
    """A signing or public key is missing, unreadable or cannot be decrypted."""


@dataclass(frozen=True)
class KeyPaths:
    """Where a site's keys live."""

    directory: Path

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> KeyPaths:
        return cls(state_dir / "keys")

    @property
    def private(self) -> Path:
        return self.directory / "signing.key"

    @property
    def public(self) -> Path:
        return self.directory / "signing.pub"

    @property
    def retired(self) -> Path:
        return self.directory / "retired"


@dataclass(frozen=True)
class PassphraseSource:
    """Where to read a passphrase from: a file, a named environment variable, or neither.

    With neither, :data:`PASSPHRASE_ENV` is used if it is set and not empty.
    """

    file: Path | None = None
    env: str | None = None

    def __post_init__(self) -> None:
        if self.file is not None and self.env is not None:
            raise UsageError("give either --passphrase-file or --passphrase-env, not both")

    def read(self) -> bytes | None:
        """The passphrase as bytes, or None when no source gives one."""
        if self.file is not None:
            try:
                raw = self.file.read_bytes()
            except OSError as exc:
                raise UsageError(
                    f"{self.file}: cannot read the passphrase file: {exc.strerror}"
                ) from None
            value = raw.removesuffix(b"\n").removesuffix(b"\r")
            if not value:
                raise UsageError(f"{self.file}: the passphrase file is empty")
            return value
        if self.env is not None:
            text = os.environ.get(self.env)
            if not text:
                raise UsageError(f"environment variable {self.env} is not set or empty",
                                 hint="export it, or use --passphrase-file")
            return text.encode("utf-8")
        default = os.environ.get(PASSPHRASE_ENV)
        return default.encode("utf-8") if default else None


@dataclass(frozen=True)
class Signer:
    """A loaded private key that signs journals."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature over ``data``."""
        return self.private_key.sign(data)

    def __repr__(self) -> str:
        return f"Signer({self.fingerprint})"


def load_signer(paths: KeyPaths, passphrase: PassphraseSource | None = None) -> Signer:
    """The site's signer, decrypting its key with ``passphrase`` (default: the environment)."""
    source = passphrase or PassphraseSource()
    return Signer(load_private_key(paths.private, source.read()))


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``SHA256:`` + lower-case hex SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return FINGERPRINT_PREFIX + hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> str:
    """The public key as PEM text (SubjectPublicKeyInfo)."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def init_keys(paths: KeyPaths, passphrase: bytes | None, *, force: bool = False) -> str:
    """Create a new signing key pair; return its fingerprint.

    Refuses to replace an existing private key unless ``force``; with ``force`` the
    old public key is kept in ``retired/`` so journals it signed stay verifiable.
    """
    if paths.private.exists() and not force:
        raise UsageError(
            f"{paths.private} already exists; not overwriting the signing key",
            hint="journals are signed with it; use --force to replace it "
            "(its public key is kept in keys/retired/)",
        )
    _make_private_dir(paths.directory)
    if force and paths.public.exists():
        _retire(paths)
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption()
    )
    private_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    write_atomic(paths.private, private_bytes, 0o600)
    write_atomic(paths.public, public_pem(key.public_key()).encode("ascii"), 0o644)
    fp = fingerprint(key.public_key())
    log.info("created signing key %s in %s (encrypted: %s)", fp, paths.directory,
             bool(passphrase))
    return fp


def load_private_key(path: Path, passphrase: bytes | None) -> Ed25519PrivateKey:
    """Read the signing key; wrong or missing passphrases give a clear error (no secret)."""
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SigningKeyError(f"{path}: no signing key",
                        hint="create one with 'planb keys init'") from None
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read the signing key: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by others (mode %o); chmod 600 it", path, mode & 0o777)
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        if passphrase is None:
            raise SigningKeyError(
                f"{path}: the signing key is encrypted and no passphrase was given",
                hint=f"use --passphrase-file FILE or --passphrase-env VAR, or set {PASSPHRASE_ENV}",
            ) from None
        # A passphrase was supplied (perhaps only through the environment) for a key
        # stored without one: the key is usable as it is.
        log.warning("%s is not encrypted; the passphrase given was not needed", path)
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        if passphrase is None:
            raise SigningKeyError(f"{path}: not a readable PEM private key") from None
        raise SigningKeyError(
            f"{path}: cannot decrypt the signing key: wrong passphrase (or not a key file)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: not an Ed25519 key ({type(key).__name__})")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a PEM public key (``signing.pub`` or an exported copy)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"{path}: public key file not found",
                        hint="create the site key with 'planb keys init', or give "
                        "--public-key FILE") from None
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read the public key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise SigningKeyError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path}: not an Ed25519 public key ({type(key).__name__})")
    return key


def site_public_keys(paths: KeyPaths) -> list[Ed25519PublicKey]:
    """The current public key, then retired ones (for journals signed before a rotation)."""
    keys = [load_public_key(paths.public)]
    if paths.retired.is_dir():
        keys.extend(load_public_key(p) for p in sorted(paths.retired.glob("*.pub")))
    return keys


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s Ed25519 signature over ``data``."""
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _retire(paths: KeyPaths) -> None:
    old = load_public_key(paths.public)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    paths.retired.mkdir(mode=0o700, exist_ok=True)
    target = paths.retired / f"signing-{fingerprint(old)[7:19]}-{stamp}.pub"
    write_atomic(target, paths.public.read_bytes(), 0o644)
    log.info("kept the replaced public key as %s", target)


def _make_private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
