"""Enrolment codes on the fallback directory: hashing issued codes, and reissuing.

The sync plans which codes to issue, renew and revoke (:mod:`.enrolment_plan`);
:func:`hash_issues` makes what apply writes for each issued code: the code derived
from the site's key (:func:`planb.enrolment_code.derive_code`), hashed with scrypt
(~40 ms each, on purpose). 9,000 codes would take six minutes on one core, so they
are hashed in a pool of processes, one per core, with progress. The codes exist
only in those processes' memory while they are hashed: never in the plan, a log or
an exception.

:func:`reissue_codes` gives chosen agents a new code at once (a forgotten password
or a code locked by wrong tries): serial + 1, a new hash, failures cleared. It is
what ``planb enrol reissue LOGIN...`` runs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ldap3 import MODIFY_REPLACE

from planb.config import SiteConfig
from planb.directory import enrolment_plan as codes
from planb.directory.enrolment_plan import CodeIssue, generalized_time
from planb.directory.fallback_endpoint import fallback_endpoint
from planb.directory.fallback_ldap import IssuedCode, Layout, locked_for_good
from planb.directory.identifiers import escape_filter_value
from planb.directory.ldap_conn import LdapEndpoint
from planb.directory.sync_lock import sync_lock
from planb.enrolment_code import EnrolmentKeyError, derive_code, hash_code, load_or_create_key
from planb.errors import PlanbError

log = logging.getLogger(__name__)

#: (phase, done, total), like the sync's progress.
Progress = Callable[[str, int, int], None]
PHASE = "codes"
#: Codes per task sent to a worker process (progress granularity vs overhead).
CHUNK = 16
#: Below this many codes, hash in this process (starting a pool costs more).
POOL_THRESHOLD = 8


def site_key(site: SiteConfig) -> bytes:
    """The site's enrolment key (made on first use); PlanbError if its file is damaged."""
    try:
        return load_or_create_key(site.state_dir)
    except EnrolmentKeyError as exc:
        raise PlanbError(str(exc), hint="restore keys/enrolment.key from the state dir's "
                                        "backup") from None


def expiry(site: SiteConfig, now: datetime | None = None) -> str:
    """When a code issued ``now`` expires, as GeneralizedTime."""
    now = now or datetime.now(UTC)
    return generalized_time(now + timedelta(days=site.enrolment.code_valid_days))


def _hash_chunk(key: bytes, items: Sequence[tuple[str, str, int]]) -> list[tuple[str, str]]:
    """(id, stored hash) for each (id, source id, serial): runs in a worker process."""
    return [(agent_id, hash_code(derive_code(key, source_id, serial)))
            for agent_id, source_id, serial in items]


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


def hash_issues(key: bytes, issues: Sequence[CodeIssue], expires: str, *,
                progress: Progress | None = None, workers: int | None = None
                ) -> dict[str, IssuedCode]:
    """What apply writes for each issue, by agent id (the id is the source id).

    Hashed in ``workers`` processes (default: one per core), ``CHUNK`` codes a task.
    """
    progress = progress or _no_progress
    items = [(i.id, i.id, i.serial) for i in issues]
    serials = {i.id: i.serial for i in issues}
    total, done = len(items), 0
    progress(PHASE, 0, total)
    hashed: dict[str, IssuedCode] = {}
    workers = max(1, workers or os.cpu_count() or 1)
    if total < POOL_THRESHOLD or workers == 1:
        for item in items:
            for agent_id, stored in _hash_chunk(key, [item]):
                hashed[agent_id] = IssuedCode(stored, serials[agent_id], expires)
            done += 1
            progress(PHASE, done, total)
        return hashed
    chunks = [items[i:i + CHUNK] for i in range(0, total, CHUNK)]
    context = multiprocessing.get_context("spawn")  # no fork of a threaded process
    with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
        pending: set[Future[list[tuple[str, str]]]] = {
            pool.submit(_hash_chunk, key, chunk) for chunk in chunks}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    for agent_id, stored in future.result():
                        hashed[agent_id] = IssuedCode(stored, serials[agent_id], expires)
                        done += 1
                progress(PHASE, done, total)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return hashed


@dataclass(frozen=True)
class Reissued:
    """A new code given to one agent: derive it with (source_id, serial)."""

    login: str
    source_id: str
    serial: int
    expires: datetime


@dataclass
class ReissueReport:
    """What :func:`reissue_codes` did: codes given, and logins refused with why."""

    issued: list[Reissued] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


NOT_FOUND = "no agent with this login in the fallback directory"
DISABLED = "deactivated (a leaver): no code"


def reissue_codes(site: SiteConfig, logins: Iterable[str], *,
                  endpoint: LdapEndpoint | None = None, now: datetime | None = None,
                  key: bytes | None = None) -> ReissueReport:
    """Give each agent of ``logins`` a new enrolment code now: serial + 1, a new hash,
    expiry in ``enrolment.code_valid_days``, failures cleared (a locked code is
    unlocked by being replaced). Leavers and unknown logins are refused, not errors.

    Holds the site's sync lock (a sync must not issue the same serial meanwhile).
    """
    now = now or datetime.now(UTC)
    key = key if key is not None else site_key(site)
    endpoint = endpoint or fallback_endpoint(site)
    layout = Layout(site.fallback.ldap_suffix)
    report = ReissueReport()
    wanted = list(dict.fromkeys(logins))
    with sync_lock(site.state_dir, command="planb enrol reissue"):
        conn = endpoint.connect()
        try:
            for login in wanted:
                conn.search(layout.people,
                            f"(&(objectClass=planbAgent)(uid={escape_filter_value(login)}))",
                            attributes=["uid", "planbSourceId", codes.SERIAL,
                                        "pwdAccountLockedTime"])
                found = [e for e in conn.response or () if e.get("type") == "searchResEntry"]
                if len(found) != 1:
                    report.refused[login] = NOT_FOUND
                    continue
                attrs = {k.casefold(): v for k, v in found[0]["attributes"].items()}
                if locked_for_good(_first(attrs.get("pwdaccountlockedtime"))):
                    report.refused[login] = DISABLED
                    continue
                source_id = _first(attrs.get("planbsourceid"))
                serial = codes.code_state({codes.SERIAL.casefold(): _first(
                    attrs.get(codes.SERIAL.casefold()))}).serial + 1
                stored = hash_code(derive_code(key, source_id, serial))
                until = now + timedelta(days=site.enrolment.code_valid_days)
                conn.modify(found[0]["dn"], {
                    codes.CODE: [(MODIFY_REPLACE, [stored])],
                    codes.SERIAL: [(MODIFY_REPLACE, [str(serial)])],
                    codes.EXPIRES: [(MODIFY_REPLACE, [generalized_time(until)])],
                    codes.FAILURES: [(MODIFY_REPLACE, [])]})
                if conn.result.get("result") != 0:
                    report.refused[login] = (f"the directory refused: "
                                             f"{conn.result.get('description')}")
                    continue
                log.info("enrolment code %d reissued for %s", serial, login)
                report.issued.append(Reissued(login, source_id, serial, until))
        finally:
            conn.unbind()
    return report


def _first(value: object) -> str:
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return "" if value is None else str(value)
