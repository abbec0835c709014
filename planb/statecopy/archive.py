"""The copy as one file (``copy.tar``): made on the controller, opened on a fresh machine.

Members of the tar::

    manifest.json        format, site, when, from which controller, each public file's
                         SHA-256 and mode, whether secrets are in it, and digests
    public/<name>        the public files as they are (journals, audit log, config...)
    secrets.fernet       (when a passphrase was set) a Fernet token, under the copy key,
                         of a tar.gz holding secret/<name> for each secret file and
                         integrity.json: every file's SHA-256, public ones included

A restore with the passphrase checks every public file against ``integrity.json``,
which only the copy key could have written, so a copy altered on the host is refused.
The public manifest never holds a secret file's hash (a weak password's hash could be
guessed back); the secrets' digest in it is an HMAC under the copy key.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import socket
import tarfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from planb.config import SiteConfig
from planb.errors import PlanbError, UsageError
from planb.reports.store import utc_now
from planb.statecopy.content import WRAPPED_KEY, Entry, content_digest, site_entries
from planb.statecopy.crypto import WrappedKey, decrypt, encrypt, load_copy_key

log = logging.getLogger(__name__)

COPY_FORMAT = "planb-controller-copy/1"
MANIFEST = "manifest.json"
SECRETS = "secrets.fernet"
INTEGRITY = "integrity.json"
_NAME = re.compile(r"^(site|state|inventory)/[^\0]+$")
#: A copy larger than this is refused when opened (a hostile host could send anything).
MAX_COPY_BYTES = 512 * 1024 * 1024


class CopyError(PlanbError):
    """The copy cannot be opened: damaged, altered, or not a planb copy."""


@dataclass(frozen=True)
class BuiltCopy:
    """A copy ready to push: the tar's bytes and what it says about itself."""

    data: bytes
    manifest: dict[str, object]

    @property
    def encrypted(self) -> bool:
        return bool(self.manifest.get("encrypted"))


@dataclass(frozen=True)
class OpenedCopy:
    """A copy's files, checked: name -> (bytes, mode)."""

    manifest: dict[str, object]
    files: dict[str, tuple[bytes, int]] = field(repr=False)
    copy_key: bytes | None = field(default=None, repr=False)

    @property
    def secrets_included(self) -> bool:
        return self.copy_key is not None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def secrets_digest(copy_key: bytes, hashes: dict[str, str]) -> str:
    """The secrets' digest as the manifest shows it: an HMAC under the copy key."""
    return hmac.new(copy_key, content_digest(hashes).encode("ascii"), "sha256").hexdigest()


def digests(site: SiteConfig, entries: list[Entry] | None = None) -> dict[str, str | None]:
    """The public and secret digests of the site's state now (what a copy would say)."""
    entries = site_entries(site) if entries is None else entries
    key = load_copy_key(site.state_dir)
    public = {e.name: _sha(e.read()) for e in entries if not e.secret}
    secret = {e.name: _sha(e.read()) for e in entries if e.secret}
    return {"public_digest": content_digest(public),
            "secrets_digest": secrets_digest(key, secret) if key is not None else None}


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def build_copy(site: SiteConfig) -> BuiltCopy:
    """The copy of ``site``'s state: public files plain, secrets encrypted (or left out
    when no passphrase was ever set)."""
    entries = site_entries(site)
    key = load_copy_key(site.state_dir)
    contents = {e.name: (e.read(), e.mode) for e in entries}
    hashes = {name: _sha(data) for name, (data, _) in contents.items()}
    public = {e.name: {"sha256": hashes[e.name], "mode": contents[e.name][1]}
              for e in entries if not e.secret}
    secret_names = [e.name for e in entries if e.secret]
    manifest: dict[str, object] = {
        "format": COPY_FORMAT, "site": site.site, "created_at": utc_now(),
        "controller": socket.gethostname(), "base_dir": str(site.base_dir.resolve()),
        "public": public, "public_digest": content_digest({n: hashes[n] for n in public}),
        "encrypted": key is not None, "secret_files": len(secret_names) if key else 0,
        "secrets_digest": secrets_digest(key, {n: hashes[n] for n in secret_names})
        if key is not None else None,
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
        for name in public:
            data, mode = contents[name]
            _add(tar, f"public/{name}", data, mode)
        if key is not None:
            _add(tar, SECRETS, encrypt(key, _secret_tar(contents, secret_names, hashes)), 0o600)
    if key is None and secret_names:
        log.info("no passphrase set: %d secret file(s) left out of the copy", len(secret_names))
    return BuiltCopy(out.getvalue(), manifest)


def _secret_tar(contents: dict[str, tuple[bytes, int]], names: list[str],
                hashes: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        integrity = {"files": {n: {"sha256": hashes[n], "mode": contents[n][1]}
                               for n in contents}}
        _add(tar, INTEGRITY, json.dumps(integrity, sort_keys=True).encode("utf-8"), 0o600)
        for name in names:
            data, mode = contents[name]
            _add(tar, f"secret/{name}", data, mode)
    return out.getvalue()


def _members(data: bytes, what: str) -> dict[str, bytes]:
    """Regular files of a tar (gzip or not), by name; anything else is refused."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar:
                if not member.isfile():
                    raise CopyError(f"{what}: {member.name!r} is not a regular file")
                extracted = tar.extractfile(member)
                assert extracted is not None
                found[member.name] = extracted.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CopyError(f"{what} is not a readable copy ({type(exc).__name__})",
                        hint="the copy was cut short or damaged") from None
    return found


def _check_name(name: str) -> str:
    parts = PurePosixPath(name).parts
    if not _NAME.match(name) or ".." in parts or name.startswith("/"):
        raise CopyError(f"the copy names a file {name!r} outside a site: refused")
    return name


def read_manifest(data: bytes, what: str = "the copy") -> dict[str, object]:
    """The manifest of a copy (no decryption)."""
    if len(data) > MAX_COPY_BYTES:
        raise CopyError(f"{what} is larger than {MAX_COPY_BYTES // 2**20} MiB: refused")
    members = _members(data, what)
    try:
        manifest = json.loads(members[MANIFEST])
    except (KeyError, ValueError):
        raise CopyError(f"{what} has no readable {MANIFEST}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != COPY_FORMAT:
        raise CopyError(f"{what} is not a planb controller copy ({COPY_FORMAT})")
    return manifest


def open_copy(data: bytes, passphrase: bytes | None, *, public_only: bool = False,
              what: str = "the copy") -> OpenedCopy:
    """Check and open a copy; with the passphrase, its secrets too.

    Raises :class:`~planb.statecopy.crypto.PassphraseRefused` for a wrong passphrase,
    :class:`CopyError` for a damaged or altered copy. Nothing is written.
    """
    manifest = read_manifest(data, what)
    members = _members(data, what)
    listed = manifest.get("public")
    if not isinstance(listed, dict):
        raise CopyError(f"{what}: the manifest lists no files")
    files: dict[str, tuple[bytes, int]] = {}
    for name, info in listed.items():
        body = members.get(f"public/{_check_name(name)}")
        if body is None or not isinstance(info, dict) or _sha(body) != info.get("sha256"):
            raise CopyError(f"{what}: {name} is missing or does not match the manifest")
        files[name] = (body, int(info.get("mode") or 0o644) & 0o777)
    if not manifest.get("encrypted") or public_only:
        return OpenedCopy(manifest, files)
    if passphrase is None:
        raise UsageError(f"{what} holds the site's secrets, encrypted: give the crisis "
                         "cell's passphrase (--passphrase-file FILE)",
                         hint="or --public-only for the journals, audit log and "
                         "configuration without the secrets")
    wrapped_file = files.get(f"state/{WRAPPED_KEY}")
    if wrapped_file is None:
        raise CopyError(f"{what} has encrypted secrets but no wrapped copy key")
    try:
        wrapped = WrappedKey.from_json(json.loads(wrapped_file[0]))
    except ValueError:
        raise CopyError(f"{what}: the wrapped copy key is not JSON") from None
    key = wrapped.unwrap(passphrase)
    if SECRETS not in members:
        raise CopyError(f"{what}: the encrypted secrets are missing")
    inner = _members(decrypt(key, members[SECRETS], f"{what}'s secrets"), f"{what}'s secrets")
    try:
        integrity = json.loads(inner[INTEGRITY])["files"]
    except (KeyError, ValueError, TypeError):
        raise CopyError(f"{what}: the secrets hold no integrity record") from None
    for name, info in integrity.items():
        _check_name(name)
        if name in files:
            if _sha(files[name][0]) != info.get("sha256"):
                raise CopyError(f"{what}: {name} was changed after the copy was made "
                                "(it differs from the encrypted record): refused")
            continue
        body = inner.get(f"secret/{name}")
        if body is None or _sha(body) != info.get("sha256"):
            raise CopyError(f"{what}: the secret file {name} is missing or damaged")
        files[name] = (body, int(info.get("mode") or 0o600) & 0o777)
    extra = set(files) - set(integrity)
    if extra:
        raise CopyError(f"{what}: {', '.join(sorted(extra))} added after the copy was "
                        "made: refused")
    return OpenedCopy(manifest, files, key)
