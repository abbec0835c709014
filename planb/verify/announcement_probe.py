"""Did the activation announcement reach an agent? Log in as them and look (matrix-nio).

Each account logs in through nginx over TLS (as :mod:`planb.verify.probes` does),
resolves the announcement room's alias, syncs that room only and looks for a message
holding the incident id (the announcement template ends with it). Used by
``probes.run`` and by ``bench/drill.py`` (delivery latency).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import ClientSession, ClientTimeout, TCPConnector
from nio import (
    AsyncClient,
    AsyncClientConfig,
    LoginResponse,
    RoomResolveAliasResponse,
    SyncResponse,
)

from planb.config import SiteConfig
from planb.verify.endpoints import tls_context
from planb.verify.probes import TIMELINE_LIMIT, _PinnedResolver, fallback_address, room_filter

log = logging.getLogger(__name__)

DEFAULT_ROOM = "annonces"


@dataclass(frozen=True)
class Seen:
    """Whether one agent sees the announcement, and how long looking took."""

    login: str
    ok: bool
    seconds: float
    detail: str


def client_for(site: SiteConfig, login: str, address: str, timeout: float) -> AsyncClient:
    """A nio client for ``login`` reaching the public name at ``address`` (verified TLS)."""
    name = site.matrix.public_hostname
    client = AsyncClient(f"https://{name}", login, ssl=tls_context(site),
                         config=AsyncClientConfig(request_timeout=timeout, max_timeouts=1,
                                                  max_limit_exceeded=2))
    client.client_session = ClientSession(
        connector=TCPConnector(resolver=_PinnedResolver(name, address)),
        timeout=ClientTimeout(total=timeout))
    return client


def room_alias(site: SiteConfig, room: str = DEFAULT_ROOM) -> str:
    return f"#{room}:{site.matrix.server_name}"


def find_marker(answer: SyncResponse, room_id: str, marker: str) -> bool:
    """Whether the synced timeline of ``room_id`` holds a message containing ``marker``."""
    joined = answer.rooms.join.get(room_id)
    events = joined.timeline.events if joined else []
    return any(marker in (getattr(e, "body", None) or "") for e in events)


async def _one(site: SiteConfig, address: str, login: str, password: str, marker: str,
               alias: str, timeout: float) -> Seen:
    start = time.monotonic()
    client = client_for(site, login, address, min(timeout, 30))
    try:
        answer = await client.login(password, device_name="planb announcement probe")
        if not isinstance(answer, LoginResponse):
            return Seen(login, False, time.monotonic() - start,
                        f"login refused: {getattr(answer, 'message', answer)}")
        resolved = await client.room_resolve_alias(alias)
        if not isinstance(resolved, RoomResolveAliasResponse):
            return Seen(login, False, time.monotonic() - start,
                        f"{alias} not found: {getattr(resolved, 'message', resolved)}")
        room_id = resolved.room_id
        # Only this room, members lazily (as Element does): a full member list of a room
        # every agent is in (9,000 members) would make each probe a heavy sync.
        synced = await client.sync(timeout=0, sync_filter=room_filter(room_id))
        if not isinstance(synced, SyncResponse):
            return Seen(login, False, time.monotonic() - start, f"sync failed: {synced}")
        if room_id not in synced.rooms.join:
            return Seen(login, False, time.monotonic() - start,
                        f"not a member of {alias}")
        if not find_marker(synced, room_id, marker):
            return Seen(login, False, time.monotonic() - start,
                        f"member of {alias}, but the announcement is not in its last "
                        f"{TIMELINE_LIMIT} messages")
        return Seen(login, True, time.monotonic() - start, f"sees the announcement in {alias}")
    finally:
        try:
            if client.access_token:
                await client.logout()
        finally:
            await client.close()


async def _all(site: SiteConfig, accounts: Sequence[tuple[str, str]], marker: str,
               alias: str, address: str, timeout: float) -> list[Seen]:
    tasks = [asyncio.wait_for(_one(site, address, login, password, marker, alias, timeout),
                              timeout) for login, password in accounts]
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    seen = []
    for (login, _), answer in zip(accounts, answers, strict=True):
        if isinstance(answer, Seen):
            seen.append(answer)
        elif isinstance(answer, BaseException) and not isinstance(answer, Exception):
            raise answer
        else:
            kind = "no answer in time" if isinstance(answer, TimeoutError) else \
                f"{type(answer).__name__}: {answer}"
            seen.append(Seen(login, False, timeout, kind))
    return seen


def check_announcement(site: SiteConfig, accounts: Sequence[tuple[str, str]], marker: str, *,
                       room: str = DEFAULT_ROOM, timeout: float = 30.0) -> list[Seen]:
    """For each (login, password): do they see a message holding ``marker`` in the room?"""
    address = fallback_address(site)
    return asyncio.run(_all(site, accounts, marker, room_alias(site, room), address, timeout))
