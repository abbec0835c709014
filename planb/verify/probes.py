"""Functional probes: agents log in through LDAP via nginx over TLS and exchange messages.

With matrix-nio, as a Matrix client would: every agent logs in (the password is
checked against the fallback LDAP by planb's Synapse module), the first one creates a
private room and invites the others, they join, each sends one message and each
waits to receive the message of the agent before it (a ring). Then every agent
leaves the room and logs out.

Every sync is filtered (:func:`room_filter`): only the probe room, its members loaded
lazily (as Element does) and a timeline long enough for the whole ring. Without it an
agent's first sync pulls the full member list of every room it is in (the
announcement room holds every agent: 9,000 members), and an incremental sync returns
only the room's last 10 events, so a ring of more than 10 lost the first messages.

Connections go to the fallback's inventory address with the public host name for SNI
and certificate checks, trusting the planb CA.

In standby, planb's Synapse module refuses every login *before* asking the
directory, with the same answer as a wrong password (403 ``M_FORBIDDEN``): a refused
login cannot tell standby from a bad password, and the detail says both. Drills
probe after activation; ``planb verify`` in standby logs in with the probe accounts
the synapse role exempts from standby (``synapse_standby_exempt_localparts``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    LoginResponse,
    RoomCreateResponse,
    RoomPreset,
    RoomSendResponse,
    RoomVisibility,
    SyncResponse,
)

from planb.config import SiteConfig
from planb.errors import PlanbError
from planb.inventory import load_hosts
from planb.verify.endpoints import tls_context

log = logging.getLogger(__name__)

Account = tuple[str, str]
#: What a refused login answers, standby or wrong password alike (no oracle).
REFUSED = "M_FORBIDDEN"
#: Timeline events per synced room: at least this, and always more than a ring sends.
TIMELINE_LIMIT = 50


def room_filter(room_id: str, limit: int = TIMELINE_LIMIT) -> dict[str, Any]:
    """A sync filter: ``room_id`` only, members lazily, the last ``limit`` events, nothing else.

    Presence, account data, receipts and typing are left out: a probe needs none.
    """
    return {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "rooms": [room_id],
            "timeline": {"limit": limit},
            "state": {"lazy_load_members": True},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    }


@dataclass
class AgentProbe:
    """One agent's probe: whether it got through, and how long each part took."""

    login: str
    ok: bool = False
    detail: str = ""
    login_seconds: float | None = None
    send_seconds: float | None = None
    #: From the previous agent's send to this agent seeing the message.
    receive_seconds: float | None = None
    total_seconds: float = 0.0
    user_id: str = field(default="", repr=False)

    def as_json(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)
        return {"login": self.login, "ok": self.ok, "detail": self.detail,
                "login_seconds": r(self.login_seconds), "send_seconds": r(self.send_seconds),
                "receive_seconds": r(self.receive_seconds),
                "total_seconds": round(self.total_seconds, 3)}


class _PinnedResolver(AbstractResolver):
    """Resolves the public host name to the fallback's address; nothing else."""

    def __init__(self, name: str, address: str) -> None:
        self._name, self._address = name, address

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host != self._name:
            raise OSError(f"planb probes only connect to {self._name}, not {host}")
        fam = socket.AF_INET6 if ":" in self._address else socket.AF_INET
        return [ResolveResult(hostname=host, host=self._address, port=port, family=fam,
                              proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        return None


def fallback_address(site: SiteConfig) -> str:
    """Where agents reach the fallback: its service address when the site has one
    (``fallback.standby.service_address``, held by keepalived on the serving host), else
    the address of the fallback's proxy host (nginx), from the inventory."""
    if site.fallback.standby.service_address:
        return site.fallback.standby.service_address
    proxies = [h for h in load_hosts(site) if "fallback_proxy" in h.groups]
    if not proxies:
        raise PlanbError("the inventory has no host in fallback_proxy to probe")
    return proxies[0].address


def run_probes(site: SiteConfig, agents: Sequence[Account], *, address: str | None = None,
               timeout: float = 60.0) -> list[AgentProbe]:
    """Probe with ``agents`` (login, password) through the fallback; one result per agent.

    ``address``: where the public host name is reached (default: the first host of
    ``fallback_proxy``). Needs at least two agents. Never raises for a failed probe.
    """
    if len(agents) < 2:
        raise PlanbError("probes need at least two agents (login, password)")
    target = address or fallback_address(site)
    nio_log = logging.getLogger("nio")
    if nio_log.level == logging.NOTSET:  # nio logs refused logins as schema errors
        nio_log.setLevel(logging.ERROR)
    return asyncio.run(_probe_all(site, list(agents), target, timeout))


async def _probe_all(site: SiteConfig, agents: list[Account], address: str,
                     timeout: float) -> list[AgentProbe]:
    name = site.matrix.public_hostname
    results = [AgentProbe(login) for login, _ in agents]
    clients: list[AsyncClient] = []
    start = time.monotonic()
    context = tls_context(site)
    for login, _ in agents:
        client = AsyncClient(f"https://{name}", login, ssl=context,
                             config=AsyncClientConfig(request_timeout=min(timeout, 30),
                                                      max_timeouts=1, max_limit_exceeded=2))
        client.client_session = ClientSession(
            connector=TCPConnector(resolver=_PinnedResolver(name, address)),
            timeout=ClientTimeout(total=min(timeout, 30)))
        clients.append(client)
    try:
        await asyncio.wait_for(_exchange(clients, agents, results), timeout)
    except TimeoutError:
        for r in results:
            if not r.ok and not r.detail:
                r.detail = f"no answer within {timeout:.0f} s"
    finally:
        await asyncio.gather(*(close_client(c) for c in clients), return_exceptions=True)
    for r in results:
        r.total_seconds = time.monotonic() - start
    return results


async def _login(client: AsyncClient, password: str, result: AgentProbe) -> bool:
    t0 = time.monotonic()
    answer = await client.login(password, device_name="planb probe")
    result.login_seconds = time.monotonic() - t0
    if isinstance(answer, LoginResponse):
        result.user_id = answer.user_id
        return True
    code = getattr(answer, "status_code", None)
    if code == REFUSED:
        result.detail = ("login refused (403 M_FORBIDDEN): wrong password, or the fallback "
                         "is in standby and this account is not exempt")
    else:
        result.detail = f"login refused: {code or ''} {getattr(answer, 'message', answer)}".strip()
    return False


async def _exchange(clients: list[AsyncClient], agents: list[Account],
                    results: list[AgentProbe]) -> None:
    logged = await asyncio.gather(*(_login(c, p, r) for c, (_, p), r
                                    in zip(clients, agents, results, strict=True)))
    if not all(logged):
        return
    owner = clients[0]
    room = await owner.room_create(visibility=RoomVisibility.private, name="planb probe",
                                   preset=RoomPreset.private_chat,
                                   invite=[r.user_id for r in results[1:]])
    if not isinstance(room, RoomCreateResponse):
        results[0].detail = f"cannot create the probe room: {room}"
        return
    room_id = room.room_id
    for client, result in zip(clients[1:], results[1:], strict=True):
        joined = await client.join(room_id)
        if not isinstance(joined, JoinResponse):
            result.detail = f"cannot join the probe room: {joined}"
            return
    only = room_filter(room_id, max(TIMELINE_LIMIT, 2 * len(clients)))
    for client, result in zip(clients, results, strict=True):
        # Before anyone sends: each receiver's next sync starts from here.
        first = await client.sync(timeout=0, sync_filter=only)
        if not isinstance(first, SyncResponse):
            result.detail = f"sync failed: {first}"
            return
    nonce = secrets.token_hex(6)
    sent_at: list[float] = []
    for i, (client, result) in enumerate(zip(clients, results, strict=True)):
        t0 = time.monotonic()
        sent = await client.room_send(room_id, "m.room.message", {
            "msgtype": "m.notice", "body": f"planb probe {nonce} #{i}"})
        result.send_seconds = time.monotonic() - t0
        sent_at.append(time.monotonic())
        if not isinstance(sent, RoomSendResponse):
            result.detail = f"cannot send: {sent}"
            return
    await asyncio.gather(*(_receive(c, room_id, f"planb probe {nonce} #{(i - 1) % len(clients)}",
                                    sent_at[(i - 1) % len(clients)], r, only)
                           for i, (c, r) in enumerate(zip(clients, results, strict=True))))
    for client in clients:
        await client.room_leave(room_id)


async def _receive(client: AsyncClient, room_id: str, body: str, sent_at: float,
                   result: AgentProbe, only: dict[str, Any]) -> None:
    """Sync (from the last token on) until ``body`` arrives in the room.

    A timeline the server cut short (``limited``) is paged back from its ``prev_batch``
    so that no message between two syncs is skipped.
    """
    while True:
        answer = await client.sync(timeout=5000, sync_filter=only)
        if not isinstance(answer, SyncResponse):
            result.detail = f"sync failed: {answer}"
            return
        room = answer.rooms.join.get(room_id)
        events = list(room.timeline.events) if room else []
        if room and room.timeline.limited and room.timeline.prev_batch and not any(
                getattr(e, "body", None) == body for e in events):
            older = await client.room_messages(room_id, start=room.timeline.prev_batch,
                                               limit=only["room"]["timeline"]["limit"])
            events += list(getattr(older, "chunk", []))
        if any(getattr(e, "body", None) == body for e in events):
            result.receive_seconds = time.monotonic() - sent_at
            result.ok = True
            result.detail = (f"logged in in {result.login_seconds:.2f} s, sent in "
                             f"{result.send_seconds or 0:.2f} s, received in "
                             f"{result.receive_seconds:.2f} s")
            return


async def close_client(client: AsyncClient) -> None:
    """Log out (if logged in) and close ``client``'s session, whatever happens."""
    try:
        if client.access_token:
            await client.logout()
    finally:
        await client.close()
