"""Verify a journals folder with nothing but public keys: signatures, chain and head.

The checks run on file names and bytes (:func:`verify_files` is pure; the folder
walker :func:`verify_directory` only reads files), so an auditor can verify a copy
of the folder on another machine with the exported public key.

Journals are taken in the order of the seq in their file names. Each is checked
alone (signature, then structure), then linked to the one before it. The result
names the **first** bad journal and why:

- ``unsigned``: the ``.sig`` file is missing.
- ``unknown key``: the journal names a key that is not trusted: not a root (pinned,
  given, or the site's current key) and not vouched for by a ``key-rotation`` journal
  (see :mod:`planb.reports.trust`); a key dropped into ``keys/retired/`` is not trusted.
- ``retired key``: signed with a key after the rotation journal that retired it.
- ``altered``: the signature does not match the content (one changed byte is enough).
  A journal that names a trusted key but carries another key's signature is reported
  as altered: the two cannot be told apart from an Ed25519 signature alone.
- ``missing``: a seq is skipped, a journal's predecessor is not in the folder, only a
  journal's signature is left, or ``head.json`` (the signed record of the newest
  journal) names a journal that is gone (the newest journals were removed).
- ``reordered``: a file's name and its signed seq disagree (files swapped or renamed),
  a seq repeats, or a journal chains after a journal other than the one before it.
- ``malformed``: not a journal envelope, not canonical JSON, a signature file that is
  not base64 of 64 bytes, or a file name that does not match its content.
- ``truncated`` / ``head mismatch`` (with an anchored head, ``expected_head``): the
  journal with that SHA-256 is not in the chain (journals were removed and an older
  head put back), or it is but is not the newest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from planb.errors import PlanbError
from planb.reports.canonical import is_canonical
from planb.reports.journal import HEAD_NAME, Envelope, MalformedJournal, parse_filename
from planb.reports.keys import verify_signature
from planb.reports.store import decode_signature, parse_head, sha256_hex
from planb.reports.trust import ChainTrust, Trust, chain_trust

#: The payload format of the addendum 'planb report repair' writes.
REPAIR_FORMAT = "planb-repair/1"


class Reason(StrEnum):
    """Why a journal (or the head) failed verification."""

    ALTERED = "altered"
    MISSING = "missing"
    REORDERED = "reordered"
    UNKNOWN_KEY = "unknown key"
    UNSIGNED = "unsigned"
    MALFORMED = "malformed"
    RETIRED_KEY = "retired key"
    TRUNCATED = "truncated"
    HEAD_MISMATCH = "head mismatch"


class VerificationFailed(PlanbError):
    """A journals folder did not verify; the message names the first bad journal."""


@dataclass(frozen=True)
class Problem:
    """What is wrong with one file."""

    reason: Reason
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}: {self.message}"


@dataclass(frozen=True)
class JournalCheck:
    """The verdict on one journal (or on a journal whose file is gone)."""

    file: str
    seq: int
    envelope: Envelope | None
    sha256: str | None
    signature: str  # "valid", "not checked" or a Reason value
    chain: str  # "ok", "not checked" or a Reason value
    problem: Problem | None = None
    signed_by: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class VerificationResult:
    """Every journal's verdict, the head's, and the first failure if any."""

    journals: tuple[JournalCheck, ...]
    head_problem: Problem | None
    trusted: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    head_seq: int | None = None
    #: The keys signatures were checked with (roots and keys vouched by a rotation).
    keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict, compare=False,
                                                 repr=False)

    @property
    def failure(self) -> Problem | None:
        """The first bad journal in seq order, else the head's problem."""
        for check in self.journals:
            if check.problem is not None:
                return check.problem
        return self.head_problem

    @property
    def ok(self) -> bool:
        return bool(self.journals) and self.failure is None

    @property
    def last(self) -> JournalCheck | None:
        return self.journals[-1] if self.journals else None

    @property
    def head_sha256(self) -> str | None:
        """The SHA-256 of the newest journal: the value to anchor (``--head``)."""
        last = self.last
        return last.sha256 if last is not None else None

    def as_json(self) -> dict[str, Any]:
        failure = self.failure
        return {
            "ok": self.ok,
            "trusted_keys": list(self.trusted),
            "failure": None if failure is None else {
                "file": failure.file, "reason": str(failure.reason), "message": failure.message},
            "head": {"seq": self.head_seq, "sha256": self.head_sha256,
                     "problem": None if self.head_problem is None else str(self.head_problem)},
            "notes": list(self.notes),
            "journals": [{
                "file": c.file, "seq": c.seq, "id": c.envelope.id if c.envelope else None,
                "kind": c.envelope.kind if c.envelope else None, "sha256": c.sha256,
                "signature": c.signature, "signed_by": c.signed_by, "chain": c.chain,
                "problem": None if c.problem is None else {
                    "reason": str(c.problem.reason), "message": c.problem.message},
            } for c in self.journals],
        }


def verify_directory(
    directory: Path, public_keys: Trust | Sequence[Ed25519PublicKey], *,
    expected_head: str | None = None,
) -> VerificationResult:
    """Read a journals folder and verify it (see :func:`verify_files`)."""
    if not directory.is_dir():
        raise PlanbError(f"{directory}: no such journals folder")
    files: dict[str, bytes] = {}
    notes: list[str] = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith("."):
            continue  # the lock file and interrupted temporary files
        if path.is_file() and (path.name == HEAD_NAME or parse_filename(path.name)):
            files[path.name] = path.read_bytes()
        else:
            notes.append(f"ignored {path.name}: not a journal file")
    result = verify_files(files, public_keys, expected_head=expected_head)
    return VerificationResult(journals=result.journals, head_problem=result.head_problem,
                              trusted=result.trusted, notes=(*notes, *result.notes),
                              head_seq=result.head_seq, keys=result.keys)


def verify_files(
    files: Mapping[str, bytes], public_keys: Trust | Sequence[Ed25519PublicKey], *,
    expected_head: str | None = None,
) -> VerificationResult:
    """Verify journals given as ``{file name: bytes}``; with no key, signatures are not checked.

    ``public_keys``: the roots of trust (a list of keys, or a :class:`Trust` that also
    holds keys only a rotation journal can make trusted). ``expected_head``: the
    SHA-256 of the newest journal as anchored elsewhere (syslog, a printed report).
    """
    trust = Trust.of(public_keys)
    chain_keys = chain_trust(files, trust)
    trusted: Mapping[str, Ed25519PublicKey] | None = chain_keys.keys if trust.roots else None
    stems: dict[str, int] = {}
    notes: list[str] = list(trust.notes)
    for name in files:
        parsed = parse_filename(name)
        if parsed is not None:
            stems[name.rsplit(".", 1)[0]] = parsed[0]
        elif name != HEAD_NAME:
            notes.append(f"ignored {name}: not a journal file")
    alone = [
        check_journal(stem + ".json", files.get(stem + ".json"), files.get(stem + ".sig"),
                      trusted)
        for stem in sorted(stems, key=lambda s: (stems[s], s))
    ]
    checks = _retirements(link_chain(alone), chain_keys)
    head_problem, head_seq, head_notes = check_head(files.get(HEAD_NAME), checks, trusted or {})
    if head_problem is None and expected_head is not None:
        head_problem = check_anchor(expected_head, checks)
    notes += [f"key {fp} retired by {name} (seq {seq}, {at}): it verifies only the journals "
              "before it" for fp, (seq, name, at) in sorted(chain_keys.retired.items())]
    return VerificationResult(journals=tuple(checks), head_problem=head_problem,
                              trusted=tuple(trusted or ()), notes=(*notes, *head_notes,
                                                                   *_repair_notes(checks)),
                              head_seq=head_seq, keys=dict(trusted or {}))


def check_anchor(expected: str, checks: Sequence[JournalCheck]) -> Problem | None:
    """Whether the chain's newest journal is the one whose SHA-256 was anchored."""
    want = expected.strip().lower().removeprefix("sha256:")
    last = checks[-1] if checks else None
    if last is not None and last.sha256 == want:
        return None
    now = (f"the chain's head is {last.file} (seq {last.seq}, sha256 {last.sha256})"
           if last is not None else "the folder has no journal")
    found = next((c for c in checks if c.sha256 == want), None)
    if found is None:
        return Problem(Reason.TRUNCATED, HEAD_NAME, f"no journal has the anchored head "
                       f"sha256 {want}: journals were removed or the chain rewritten; {now}")
    assert last is not None
    return Problem(Reason.HEAD_MISMATCH, HEAD_NAME, f"the anchored head {want} is "
                   f"{found.file} (seq {found.seq}), not the newest: {last.seq - found.seq} "
                   f"journal(s) were written after it; {now}. Check them, then anchor the "
                   "new head")


def _retirements(checks: Sequence[JournalCheck], chain_keys: ChainTrust) -> list[JournalCheck]:
    """Fail journals signed by a retired key after the rotation journal that retired it."""
    result = []
    for check in checks:
        retired = chain_keys.retired.get(check.signed_by or "")
        if check.problem is None and retired is not None and check.seq > retired[0]:
            seq, name, at = retired
            problem = Problem(Reason.RETIRED_KEY, check.file, f"signed with {check.signed_by}, "
                              f"which {name} (seq {seq}) retired at {at}: a retired key "
                              "verifies only journals written before its retirement")
            check = JournalCheck(check.file, check.seq, check.envelope, check.sha256,
                                 str(Reason.RETIRED_KEY), check.chain, problem, check.signed_by)
        elif check.problem is not None and check.problem.reason == Reason.UNKNOWN_KEY \
                and check.envelope is not None \
                and check.envelope.key_fingerprint in chain_keys.unvouched:
            fp = check.envelope.key_fingerprint
            problem = Problem(Reason.UNKNOWN_KEY, check.file, f"signed with {fp}, found in "
                              f"{chain_keys.unvouched[fp]} but not trusted: no trusted key's "
                              "rotation journal retired it (a key dropped there is not "
                              "trusted). If it is the site's old key, pin it: --trust "
                              f"{fp} or reports.trusted_keys in planb.yml")
            check = JournalCheck(check.file, check.seq, check.envelope, check.sha256,
                                 check.signature, check.chain, problem, check.signed_by)
        result.append(check)
    return result


def _repair_notes(checks: Sequence[JournalCheck]) -> list[str]:
    """A note for each journal 'planb report repair' signed after the fact."""
    notes = []
    for check in checks:
        payload = check.envelope.payload if check.envelope is not None else {}
        repaired = payload.get("repaired")
        target = payload.get("target")
        if payload.get("format") == REPAIR_FORMAT and isinstance(repaired, dict) \
                and isinstance(target, dict):
            notes.append(f"seq {target.get('seq')} was signed after the fact by 'planb report "
                         f"repair' (by {repaired.get('by')} at {repaired.get('at')}; record "
                         f"{check.file})")
    return notes


def check_journal(
    name: str, data: bytes | None, sig_file: bytes | None,
    trusted: Mapping[str, Ed25519PublicKey] | None,
) -> JournalCheck:
    """Check one journal on its own: its signature (not checked when ``trusted`` is
    None), then its structure."""
    parsed = parse_filename(name)
    seq = parsed[0] if parsed else 0
    if data is None:
        return JournalCheck(name, seq, None, None, "not checked", "not checked", Problem(
            Reason.MISSING, name, "the journal file is gone; only its signature is left"))
    sha = sha256_hex(data)
    envelope, malformed = _parse(data)
    if envelope is not None:
        seq = envelope.seq
    signature, signed_by, problem = _check_signature(name, data, sig_file, envelope, trusted)
    if problem is None and malformed is not None:
        problem = Problem(Reason.MALFORMED, name, malformed)
    if problem is None and envelope is not None and signed_by not in (None,
                                                                      envelope.key_fingerprint):
        problem = Problem(Reason.MALFORMED, name, f"it names key {envelope.key_fingerprint} "
                          f"but is signed by {signed_by}")
    if problem is None and not is_canonical(data):
        problem = Problem(Reason.MALFORMED, name, "not canonical JSON")
    return JournalCheck(name, seq, envelope, sha, signature, "not checked", problem, signed_by)


def link_chain(checks: Sequence[JournalCheck]) -> list[JournalCheck]:
    """Check each journal's link to the one before it (seq order, previous_sha256)."""
    by_hash = {c.sha256: c for c in checks if c.sha256 is not None}
    linked: list[JournalCheck] = []
    previous: JournalCheck | None = None
    for check in checks:
        chain = "not checked"
        problem = check.problem
        if check.envelope is not None:
            link = _link_problem(check, previous, by_hash)
            if link is None:
                checked = previous is None or (previous.sha256 is not None
                                               and previous.problem is None)
                chain = "ok" if checked else chain
            else:
                chain = str(link.reason)
                problem = problem or link
        linked.append(JournalCheck(check.file, check.seq, check.envelope, check.sha256,
                                   check.signature, chain, problem, check.signed_by))
        previous = check
    return linked


def check_head(
    data: bytes | None, checks: Sequence[JournalCheck], trusted: Mapping[str, Ed25519PublicKey]
) -> tuple[Problem | None, int | None, list[str]]:
    """Check head.json against the newest journal: ``(problem, head seq, notes)``."""
    if data is None:
        if not checks:
            return None, None, []
        return Problem(Reason.MISSING, HEAD_NAME, "head.json is missing: cannot tell whether "
                       "the newest journals were removed"), None, []
    try:
        head = parse_head(data)
    except MalformedJournal as exc:
        return Problem(Reason.MALFORMED, HEAD_NAME, str(exc)), None, []
    if trusted:
        key = trusted.get(head.key_fingerprint)
        if key is None:
            return Problem(Reason.UNKNOWN_KEY, HEAD_NAME,
                           f"signed with {head.key_fingerprint}, not a trusted key"), head.seq, []
        if not head.verifies_with(key):
            return Problem(Reason.ALTERED, HEAD_NAME,
                           "its signature does not match its content"), head.seq, []
    last = checks[-1] if checks else None
    last_seq = last.seq if last else 0
    if head.seq > last_seq:
        first = last_seq + 1
        gone = f"seq {first}" if first == head.seq else f"seq {first} to {head.seq}"
        return Problem(Reason.MISSING, HEAD_NAME, f"the newest journal(s), {gone}, are gone "
                       f"(head.json records {head.file})"), head.seq, []
    if head.seq == last_seq and last is not None and last.sha256 != head.sha256:
        return Problem(Reason.MISSING, HEAD_NAME, f"the newest journal recorded, {head.file}, "
                       f"is not here: {last.file} is a different file"), head.seq, []
    if head.seq < last_seq:
        return None, head.seq, [f"head.json records seq {head.seq}, behind the newest journal "
                                f"(seq {last_seq}): a write was interrupted before the head moved"]
    return None, head.seq, []


def _parse(data: bytes) -> tuple[Envelope | None, str | None]:
    try:
        return Envelope.from_json(json.loads(data.decode("utf-8"))), None
    except (UnicodeDecodeError, ValueError) as exc:
        # MalformedJournal is a ValueError, as are JSON syntax errors.
        reason = str(exc) if isinstance(exc, MalformedJournal) else f"not JSON: {exc}"
        return None, reason


def _check_signature(
    name: str, data: bytes, sig_file: bytes | None, envelope: Envelope | None,
    trusted: Mapping[str, Ed25519PublicKey] | None,
) -> tuple[str, str | None, Problem | None]:
    """``(signature state, fingerprint of the key that verified it, problem)``."""
    if sig_file is None:
        sig_name = name.removesuffix(".json") + ".sig"
        return Reason.UNSIGNED, None, Problem(Reason.UNSIGNED, name, f"{sig_name} is missing")
    signature = decode_signature(sig_file)
    if signature is None:
        return Reason.MALFORMED, None, Problem(
            Reason.MALFORMED, name, "its .sig file is not base64 of a 64-byte signature")
    if trusted is None:
        return "not checked", None, None
    named = envelope.key_fingerprint if envelope is not None else None
    candidates = [named] if named is not None and named in trusted else []
    candidates += [fp for fp in trusted if fp != named]
    for fp in candidates:
        if verify_signature(trusted[fp], signature, data):
            return "valid", fp, None
    if named is not None and named not in trusted:
        return Reason.UNKNOWN_KEY, None, Problem(
            Reason.UNKNOWN_KEY, name,
            f"signed with {named}, not a trusted key ({', '.join(trusted) or 'none'})")
    return Reason.ALTERED, None, Problem(
        Reason.ALTERED, name, "its signature does not match its content")


def _link_problem(
    check: JournalCheck, previous: JournalCheck | None, by_hash: Mapping[str, JournalCheck]
) -> Problem | None:
    envelope = check.envelope
    assert envelope is not None
    name = check.file
    parsed = parse_filename(name)
    name_seq = parsed[0] if parsed else None
    if name_seq != envelope.seq:
        return Problem(Reason.REORDERED, name, f"its file name says seq {name_seq} but its "
                       f"signed content is seq {envelope.seq} ({envelope.filename})")
    if envelope.filename != name:
        return Problem(Reason.MALFORMED, name, f"renamed: its content is {envelope.filename}")
    expected = previous.seq + 1 if previous is not None else 1
    if envelope.seq > expected:
        gone = (f"seq {expected}" if expected == envelope.seq - 1
                else f"seq {expected} to {envelope.seq - 1}")
        after = f"after {previous.file}" if previous is not None else "at the start"
        return Problem(Reason.MISSING, name, f"{gone} is missing {after}")
    if envelope.seq < expected:
        assert previous is not None
        return Problem(Reason.REORDERED, name, f"seq {envelope.seq} comes after {previous.file}")
    if previous is None or previous.sha256 is None or previous.problem is not None:
        return None  # the first journal, or a predecessor that already failed
    if envelope.previous_sha256 == previous.sha256:
        return None
    assert envelope.previous_sha256 is not None
    other = by_hash.get(envelope.previous_sha256)
    if other is not None:
        return Problem(Reason.REORDERED, name,
                       f"it chains after {other.file}, not after {previous.file}")
    return Problem(Reason.MISSING, name, f"the journal it follows (sha256 "
                   f"{envelope.previous_sha256[:12]}…) is not here; {previous.file} is another")
