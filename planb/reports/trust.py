"""Which public keys a verification trusts, and until where in the chain.

Trust starts from **roots** that come from outside the journals folder:

- fingerprints pinned by the person verifying (``report verify --trust FINGERPRINT``)
  or in ``planb.yml`` (``reports.trusted_keys``): only those, when any is given;
- else the public key files given with ``--public-key``;
- else the site's current ``keys/signing.pub`` (a note says nothing is pinned).

A key found elsewhere (``keys/retired/*.pub``, a journal) is only **material**: it is
trusted when a ``key-rotation`` journal signed by a trusted key names it as the key it
replaced. That journal is the retirement record: the retired key verifies journals
*before* it in the chain and none after it ("retired key"). A key dropped into
``keys/retired/`` is therefore not trusted by itself, and a stolen retired key cannot
sign new journals. Rotations made before rotation journals existed are trusted by
pinning the old fingerprint.

``planb keys init --force`` appends the rotation journal, signed with the new key::

    {"format": "planb-key-rotation/1", "retired": {"fingerprint": "SHA256:…",
     "public_key_pem": "-----BEGIN PUBLIC KEY-----…"}, "successor": "SHA256:…",
     "retired_at": "2025-03-01T09:30:00.123Z", "by": "agnès"}
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from planb.errors import PlanbError, UsageError
from planb.reports.journal import Envelope, StoredJournal, parse_filename
from planb.reports.keys import (
    KeyPaths,
    fingerprint,
    load_public_key,
    public_pem,
    verify_signature,
)
from planb.reports.store import JournalStore, decode_signature, utc_now

log = logging.getLogger(__name__)

ROTATION_KIND = "key-rotation"
ROTATION_FORMAT = "planb-key-rotation/1"
_FINGERPRINT_RE = re.compile(r"^SHA256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Trust:
    """Roots (fingerprint -> key, or None when no key file was found for a pin) and
    other known keys that only a rotation journal can make trusted."""

    roots: Mapping[str, Ed25519PublicKey | None]
    material: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: Where each material key was found (for messages).
    sources: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, keys: Trust | Sequence[Ed25519PublicKey]) -> Trust:
        """A Trust from itself or from a list of keys that are all roots."""
        if isinstance(keys, Trust):
            return keys
        return cls(roots={fingerprint(k): k for k in keys})


def normalise_fingerprint(text: str) -> str:
    """``SHA256:<64 hex>`` from what a person typed (case, spaces, colons)."""
    value = text.strip()
    hexpart = value[7:] if value.upper().startswith("SHA256:") else value
    hexpart = hexpart.replace(":", "").replace(" ", "").lower()
    result = "SHA256:" + hexpart
    if not _FINGERPRINT_RE.match(result):
        raise UsageError(f"{text!r} is not a key fingerprint",
                         hint="SHA256: and 64 hex digits, as 'planb keys export' prints")
    return result


def resolve_trust(*, pins: Iterable[str] = (), given: Sequence[Ed25519PublicKey] = (),
                  site: KeyPaths | None = None) -> Trust:
    """The roots and material for a verification (see the module docstring)."""
    material: dict[str, Ed25519PublicKey] = {}
    sources: dict[str, str] = {}
    for key in given:
        material.setdefault(fingerprint(key), key)
        sources.setdefault(fingerprint(key), "--public-key")
    current: Ed25519PublicKey | None = None
    if site is not None:
        if site.public.is_file():
            current = load_public_key(site.public)
            material.setdefault(fingerprint(current), current)
            sources.setdefault(fingerprint(current), str(site.public))
        if site.retired.is_dir():
            for path in sorted(site.retired.glob("*.pub")):
                try:
                    key = load_public_key(path)
                except PlanbError as exc:
                    log.warning("%s", exc.message)
                    continue
                material.setdefault(fingerprint(key), key)
                sources.setdefault(fingerprint(key), str(path))
    pinned = list(dict.fromkeys(normalise_fingerprint(p) for p in pins))
    notes: list[str] = []
    if pinned:
        roots = {fp: material.get(fp) for fp in pinned}
    elif given:
        roots = {fingerprint(k): k for k in given}
    elif current is not None:
        roots = {fingerprint(current): current}
        notes.append(f"no key is pinned: trusting {site.public if site else 'signing.pub'} "
                     f"({fingerprint(current)}); pin it in planb.yml (reports.trusted_keys) "
                     "or give --trust FINGERPRINT")
    else:
        raise PlanbError("no trusted public key",
                         hint="give --public-key FILE or --trust FINGERPRINT, or create the "
                         "site key with 'planb keys init'")
    return Trust(roots=roots, material={k: v for k, v in material.items() if k not in roots},
                 notes=tuple(notes), sources=sources)


def rotation_payload(retired: Ed25519PublicKey, successor: str, *, retired_at: str,
                     by: str) -> dict[str, Any]:
    """The payload of the ``key-rotation`` journal that retires ``retired``."""
    return {"format": ROTATION_FORMAT,
            "retired": {"fingerprint": fingerprint(retired), "public_key_pem": public_pem(retired)},
            "successor": successor, "retired_at": retired_at, "by": by}


def record_rotation(store: JournalStore, retired: Ed25519PublicKey, *, by: str) -> StoredJournal:
    """Append the ``key-rotation`` journal, signed with the store's (new) key."""
    assert store.signer is not None
    return store.append(ROTATION_KIND, rotation_payload(
        retired, store.signer.fingerprint, retired_at=utc_now(), by=by))


@dataclass(frozen=True)
class ChainTrust:
    """The keys a chain's journals are checked with, and where retired keys stop."""

    keys: Mapping[str, Ed25519PublicKey]
    #: fingerprint -> (seq of the rotation journal that retired it, its file, retired_at)
    retired: Mapping[str, tuple[int, str, str]]
    roots: frozenset[str]
    unvouched: Mapping[str, str]  # material key fingerprint -> where it was found


def chain_trust(files: Mapping[str, bytes], trust: Trust) -> ChainTrust:
    """Follow the chain's rotation journals, newest first, from the roots.

    A rotation journal counts when its signature verifies with a key trusted at its
    place in the chain and it retires another key; that key is then trusted for the
    journals before it (its public key comes from the journal itself, or material).
    """
    keys: dict[str, Ed25519PublicKey] = {fp: k for fp, k in trust.roots.items() if k is not None}
    retired: dict[str, tuple[int, str, str]] = {}
    for seq, name, envelope, data in sorted(_rotations(files), reverse=True):
        signer = envelope.key_fingerprint
        limit = retired.get(signer)
        if signer not in keys or (limit is not None and seq >= limit[0]):
            continue
        signature = decode_signature(files.get(name.removesuffix(".json") + ".sig") or b"")
        if signature is None or not verify_signature(keys[signer], signature, data):
            continue
        old = _retired_key(envelope.payload, trust.material)
        if old is None:
            log.warning("%s: not a readable key rotation record", name)
            continue
        old_fp = fingerprint(old)
        if old_fp == signer:
            continue
        if old_fp not in retired or retired[old_fp][0] > seq:
            retired[old_fp] = (seq, name, str(envelope.payload.get("retired_at")
                                              or envelope.created_at))
        keys.setdefault(old_fp, old)
    unvouched = {fp: trust.sources.get(fp, "?") for fp in trust.material if fp not in keys}
    return ChainTrust(keys=keys, retired=retired, roots=frozenset(trust.roots),
                      unvouched=unvouched)


def _rotations(files: Mapping[str, bytes]) -> list[tuple[int, str, Envelope, bytes]]:
    found = []
    for name, data in files.items():
        parsed = parse_filename(name)
        if parsed is None or parsed[1] != ROTATION_KIND or parsed[3] != "json":
            continue
        try:
            envelope = Envelope.from_json(json.loads(data.decode("utf-8")))
        except (UnicodeDecodeError, ValueError):
            continue
        if envelope.kind == ROTATION_KIND and envelope.filename == name:
            found.append((envelope.seq, name, envelope, data))
    return found


def _retired_key(payload: Mapping[str, Any], material: Mapping[str, Ed25519PublicKey]
                 ) -> Ed25519PublicKey | None:
    retired = payload.get("retired")
    if payload.get("format") != ROTATION_FORMAT or not isinstance(retired, dict):
        return None
    pem = retired.get("public_key_pem")
    if isinstance(pem, str):
        try:
            key = serialization.load_pem_public_key(pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            key = None
        if isinstance(key, Ed25519PublicKey) and fingerprint(key) == retired.get("fingerprint"):
            return key
    named = retired.get("fingerprint")
    return material.get(named) if isinstance(named, str) else None
