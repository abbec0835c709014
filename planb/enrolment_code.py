"""Enrolment codes: derived from a site key, stored only as a slow hash.

An agent whose password cannot come from the primary directory (Active Directory never
gives out hashes) or who forgot it sets one on the fallback's enrolment page with a
one-time code. A code is 12 symbols of :data:`ALPHABET` (60 bits), shown
``XXXX-XXXX-XXXX``. It is *derived* (HMAC-SHA256 of the agent's source id and a serial
under the site's enrolment key), so letters can be printed again at any time and no
plaintext code is ever stored: the fallback directory keeps only :func:`hash_code`'s
scrypt string, which :func:`verify_code` checks.

:func:`verify_code` refuses scrypt parameters outside fixed bounds, so a forged
directory entry cannot make the host hash for minutes or exhaust its memory.

This module uses only the standard library, so it can run where planb is not installed
(the enrolment page's Synapse module).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

#: 32 symbols without 0/O/1/I: 5 bits each, nothing to misread on paper.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
#: Symbols in a code (12 x 5 = 60 bits).
CODE_LENGTH = 12
#: The scrypt cost of new hashes (~40 ms and 16 MiB on one core).
SCRYPT_LN, SCRYPT_R, SCRYPT_P = 14, 8, 1
#: What :func:`verify_code` accepts, inclusive.
LN_BOUNDS, R_BOUNDS, P_BOUNDS = (10, 16), (1, 16), (1, 4)
SALT_BYTES, HASH_BYTES = 16, 32
KEY_BYTES = 32
KEY_PATH = Path("keys") / "enrolment.key"

_STORED = re.compile(
    r"^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d)\$([A-Za-z0-9+/]{1,88})\$([A-Za-z0-9+/]{1,88})$"
)
_SEPARATORS = re.compile(r"[\s\-]+")


class EnrolmentKeyError(ValueError):
    """The enrolment key file exists but is not a key (callers turn it into a PlanbError)."""


def derive_code(key: bytes, source_id: str, serial: int) -> str:
    """The code number ``serial`` of the agent ``source_id`` (12 symbols, no hyphens)."""
    if not key:
        raise ValueError("the enrolment key is empty")
    if serial < 0:
        raise ValueError("serial must not be negative")
    digest = hmac.new(key, f"{source_id}\n{serial}".encode(), hashlib.sha256).digest()
    bits = int.from_bytes(digest[:8], "big") >> (64 - 5 * CODE_LENGTH)
    symbols = [ALPHABET[(bits >> (5 * i)) & 31] for i in reversed(range(CODE_LENGTH))]
    return "".join(symbols)


def format_code(code: str) -> str:
    """``code`` as printed: ``XXXX-XXXX-XXXX``."""
    plain = normalise_code(code)
    if plain is None:
        raise ValueError("not an enrolment code")
    return "-".join(plain[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise_code(text: str) -> str | None:
    """``text`` upper-cased without spaces and hyphens; None unless that is exactly 12
    symbols of :data:`ALPHABET`."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    plain = _SEPARATORS.sub("", text).upper()
    if len(plain) != CODE_LENGTH or any(char not in ALPHABET for char in plain):
        return None
    return plain


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(code: str, salt: bytes, ln: int, r: int, p: int) -> bytes:
    n = 1 << ln
    return hashlib.scrypt(code.encode("ascii"), salt=salt, n=n, r=r, p=p,
                          maxmem=128 * r * n + (1 << 20), dklen=HASH_BYTES)


def hash_code(code: str) -> str:
    """The string the directory keeps for ``code``:
    ``$scrypt$ln=14,r=8,p=1$<salt>$<hash>`` (standard base64 without padding)."""
    plain = normalise_code(code)
    if plain is None:
        raise ValueError("not an enrolment code")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(plain, salt, SCRYPT_LN, SCRYPT_R, SCRYPT_P)
    return f"$scrypt$ln={SCRYPT_LN},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _within(value: int, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= value <= bounds[1]


def verify_code(code: str, stored: str) -> bool:
    """Whether ``code`` (as typed: any case, spaces, hyphens) matches ``stored``.

    False for a malformed ``stored``, parameters outside ln 10..16, r 1..16, p 1..4,
    or a hash that is not 32 bytes: such an entry is refused without hashing.
    """
    plain = normalise_code(code)
    match = _STORED.match(stored) if isinstance(stored, str) else None
    if plain is None or match is None:
        return False
    ln, r, p = (int(match.group(i)) for i in (1, 2, 3))
    if not (_within(ln, LN_BOUNDS) and _within(r, R_BOUNDS) and _within(p, P_BOUNDS)):
        return False
    try:
        salt, expected = _unb64(match.group(4)), _unb64(match.group(5))
    except (binascii.Error, ValueError):
        return False
    if len(expected) != HASH_BYTES or not salt:
        return False
    return hmac.compare_digest(_scrypt(plain, salt, ln, r, p), expected)


def load_or_create_key(state_dir: Path) -> bytes:
    """The site's enrolment key, ``<state_dir>/keys/enrolment.key`` (32 random bytes,
    mode 0600), created on first use. Two processes creating it at once get the same key.
    """
    path = state_dir / KEY_PATH
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        # link() never replaces: whoever links first wins, the others read that key.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise EnrolmentKeyError(f"{path} holds {len(key)} bytes, not an enrolment key of "
                         f"{KEY_BYTES}: restore it from a backup (codes already issued "
                         "depend on it) or remove it to start again")
    return key
