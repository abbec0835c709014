"""Traffic during a drill: agents exchange numbered messages, and what a restore lost.

``traffic.start {agents, interval_seconds}`` logs a few agents in (sampled as the
probes are, with another seed), makes a private room for them and starts a thread that
survives between the drill's steps (keyed by the run's id): every ``interval_seconds``
the next agent sends ``planb traffic <run> #N`` through nginx. A message counts as sent
when Synapse acknowledged it (an event id); sends that fail (the host is gone, 502
while it is rebuilt, 429) are counted apart, never retried.

``traffic.stop`` (after the restore) stops the thread and reads the room back with the
first agent's access token from before the loss (its session must have survived; if
refused, it logs in again to still measure, and says so). It measures the RPO against
the moment ``lab.destroy_host`` marked (:mod:`planb.actions.marks`):

- ``rpo_messages``: messages acknowledged before the loss that are missing now;
- ``rpo_seconds``: from the last message present (acknowledged before the loss) to
  the loss;
- ``lost_before_backup``: missing messages acknowledged before ``backup.now`` started
  (must be 0: those are in the archive).

They go back to the runner as the step's measures; the journal records them and the
report shows them against ``objectives.rpo_seconds``. Logins appear only as pseudonyms.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from planb.actions import marks, sampling
from planb.config import SiteConfig
from planb.engine.actions import ActionContext, ActionRegistry, ActionResult, NoArgs
from planb.errors import PlanbError
from planb.verify.endpoints import HttpAnswer, https_request
from planb.verify.probes import fallback_address

log = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0
PAGE = 40  # events per /messages page (an answer is read up to 64 KiB)
CLIENT = "/_matrix/client/v3"


@dataclass(frozen=True)
class TrafficArgs:
    """``traffic.start``: how many agents take turns, and the pause between two sends.

    Synapse limits each agent to 0.2 messages a second (burst 10): with ``agents`` a
    and ``interval_seconds`` i, each sends 1/(a*i) a second; keep that under 0.2 or
    the limited sends are counted as failed."""

    agents: int = 3
    interval_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not 2 <= self.agents <= 20:
            raise ValueError("agents must be between 2 and 20")
        if not 0.2 <= self.interval_seconds <= 60:
            raise ValueError("interval_seconds must be between 0.2 and 60")


@dataclass(frozen=True)
class WaitArgs:
    """``traffic.wait``: let the traffic run this long (it must deliver meanwhile)."""

    seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError("seconds must be positive")


@dataclass(frozen=True)
class Sent:
    """One send: its number, when it ended (wall clock), and whether Synapse took it."""

    number: int
    at: float
    ok: bool
    detail: str = ""


@dataclass
class _Agent:
    login: str
    password: str
    alias: str
    user_id: str = ""
    token: str = field(default="", repr=False)


@dataclass
class Traffic:
    """One run's traffic: agents, room, the sender thread and every send."""

    site: SiteConfig
    address: str
    agents: list[_Agent]
    interval: float
    tag: str
    room_id: str = ""
    sent: list[Sent] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, agent: _Agent | None, method: str, path: str,
             body: dict[str, object] | None = None, timeout: float = SEND_TIMEOUT
             ) -> HttpAnswer:
        return https_request(self.site, self.address, method, path, body, timeout=timeout,
                             token=agent.token if agent else None)

    def login(self, agent: _Agent) -> None:
        answer = self.call(None, "POST", f"{CLIENT}/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user",
                                                       "user": agent.login},
            "password": agent.password, "initial_device_display_name": "planb drill traffic"},
            timeout=30)
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.status != 200 or "access_token" not in body:
            raise PlanbError(f"traffic: {agent.alias} could not log in ({answer.status} "
                             f"{answer.errcode})")
        agent.token, agent.user_id = str(body["access_token"]), str(body["user_id"])

    def open_room(self) -> None:
        first, others = self.agents[0], self.agents[1:]
        answer = self.call(first, "POST", f"{CLIENT}/createRoom", {
            "preset": "private_chat", "name": f"planb drill traffic {self.tag}",
            "invite": [a.user_id for a in others]}, timeout=30)
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise PlanbError(f"traffic: the room was not made ({answer.status} "
                             f"{answer.errcode})")
        self.room_id = str(answer.body["room_id"])
        room = urllib.parse.quote(self.room_id)
        for agent in others:
            joined = self.call(agent, "POST", f"{CLIENT}/rooms/{room}/join", {}, timeout=30)
            if joined.status != 200:
                raise PlanbError(f"traffic: {agent.alias} could not join ({joined.status} "
                                 f"{joined.errcode})")

    def send(self, number: int) -> Sent:
        agent = self.agents[number % len(self.agents)]
        room = urllib.parse.quote(self.room_id)
        try:
            answer = self.call(agent, "PUT", f"{CLIENT}/rooms/{room}/send/m.room.message/"
                               f"planb-{self.tag}-{number}",
                               {"msgtype": "m.text", "body": f"planb traffic {self.tag} "
                                                             f"#{number}"})
            ok = answer.status == 200 and isinstance(answer.body, dict) \
                and "event_id" in answer.body
            detail = "" if ok else f"{answer.status} {answer.errcode or ''}".strip()
        except OSError as exc:  # the host is gone or not serving yet
            ok, detail = False, type(exc).__name__
        return Sent(number, time.time(), ok, detail)

    def run(self) -> None:
        number = 0
        while not self.stop_event.is_set():
            number += 1
            started = time.monotonic()
            done = self.send(number)
            with self.lock:
                self.sent.append(done)
            self.stop_event.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=SEND_TIMEOUT * 3)

    def sends(self) -> list[Sent]:
        with self.lock:
            return list(self.sent)

    def numbers_present(self, agent: _Agent) -> tuple[set[int], int]:
        """The message numbers in the room now, and the HTTP status of the first read."""
        pattern = re.compile(rf"^planb traffic {re.escape(self.tag)} #([0-9]+)$")
        room = urllib.parse.quote(self.room_id)
        found: set[int] = set()
        token: str | None = None
        first_status = 0
        for _ in range(1000):
            query = {"dir": "b", "limit": str(PAGE)} | ({"from": token} if token else {})
            answer = self.call(agent, "GET", f"{CLIENT}/rooms/{room}/messages?"
                               + urllib.parse.urlencode(query), timeout=30)
            first_status = first_status or answer.status
            if answer.status != 200 or not isinstance(answer.body, dict):
                if first_status != 200:
                    return found, first_status
                raise PlanbError(f"traffic: reading the room back failed ({answer.status})")
            chunk = answer.body.get("chunk") or []
            for event in chunk:
                body = (event.get("content") or {}).get("body", "")
                match = pattern.match(body) if isinstance(body, str) else None
                if match:
                    found.add(int(match.group(1)))
            token = answer.body.get("end")
            if not chunk or not token:
                return found, first_status
        raise PlanbError("traffic: the room's history did not end after 1000 pages")


#: The traffic of the current run (one drill at a time per site: the runner's lock).
_runs: dict[str | None, Traffic] = {}


def start(ctx: ActionContext, args: TrafficArgs) -> ActionResult:
    """Log the agents in, make their room, and start sending numbered messages."""
    for run_id in list(_runs):  # a previous run's traffic, left by a crash: stop it
        _runs.pop(run_id).stop()
    seed = sampling.seed_for(ctx.run_id) + 1  # not the probes' sample
    sample = sampling.choose(ctx.site, args.agents, seed)
    key = sampling.pseudonym_key(ctx.site.state_dir)
    agents = [_Agent(a.login, a.password, sampling.pseudonym(key, a.login))
              for a in sample.accounts]
    traffic = Traffic(ctx.site, fallback_address(ctx.site), agents, args.interval_seconds,
                      (ctx.run_id or "manual")[:8])
    for agent in agents:
        traffic.login(agent)
    traffic.open_room()
    traffic.thread = threading.Thread(target=traffic.run, name=f"traffic-{traffic.tag}",
                                      daemon=True)
    _runs[ctx.run_id] = traffic
    traffic.thread.start()
    return ActionResult(True, f"{len(agents)} agents ({sample.source}: "
                        f"{', '.join(a.alias for a in agents)}) send a numbered message every "
                        f"{args.interval_seconds:g} s in turn, in a new private room")


def wait(ctx: ActionContext, args: WaitArgs) -> ActionResult:
    """Let the traffic run; it must deliver at least one message meanwhile."""
    traffic = _running(ctx)
    before = time.time()
    time.sleep(min(args.seconds, ctx.remaining(0.1)))
    window = [s for s in traffic.sends() if s.at >= before]
    delivered = sum(s.ok for s in window)
    return ActionResult(delivered > 0, f"{delivered}/{len(window)} messages delivered in "
                        f"{time.time() - before:.0f} s ({len(traffic.sends())} sends so far)")


def _running(ctx: ActionContext) -> Traffic:
    traffic = _runs.get(ctx.run_id)
    if traffic is None:
        raise PlanbError("no traffic is running for this drill", hint="traffic.start first")
    return traffic


def stop(ctx: ActionContext, args: NoArgs) -> ActionResult:
    """Stop the traffic, read the room back and measure what the loss cost (RPO)."""
    traffic = _runs.pop(ctx.run_id, None)
    if traffic is None:
        return ActionResult(True, "no traffic running for this drill: nothing to stop")
    traffic.stop()
    sends = traffic.sends()
    lost_at = marks.marked(ctx.run_id, marks.HOST_LOST)
    backup_at = marks.marked(ctx.run_id, marks.BACKUP_STARTED)
    acked = [s for s in sends if s.ok]
    lines = [f"{len(sends)} sends, {len(acked)} acknowledged, "
             f"{len(sends) - len(acked)} failed"]
    if lost_at is None:
        return ActionResult(True, "\n".join([*lines, "no host was lost in this run: the RPO "
                                             "is not measured"]))
    reader = traffic.agents[0]
    present, status = traffic.numbers_present(reader)
    sessions_kept = status == 200
    if not sessions_kept:  # the token from before the loss was refused: still measure
        lines.append(f"the session of {reader.alias} from before the loss was refused "
                     f"({status}): logged in again to read the room")
        traffic.login(reader)
        present, status = traffic.numbers_present(reader)
    return ActionResult(True, "\n".join([*lines, *rpo_lines(sends, present, lost_at,
                                                           backup_at)]),
                        measures=measures(sends, present, lost_at, backup_at, sessions_kept))


def measures(sends: list[Sent], present: set[int], lost_at: float, backup_at: float | None,
             sessions_kept: bool) -> dict[str, float | int | bool | None]:
    """The RPO figures (see the module docstring) from the sends and what is there now."""
    before = [s for s in sends if s.ok and s.at < lost_at]
    kept = [s for s in before if s.number in present]
    missing = [s for s in before if s.number not in present]
    last = max((s.at for s in kept), default=None)
    return {
        "rpo_seconds": None if last is None else round(lost_at - last, 3),
        "rpo_messages": len(missing),
        "sent_before_loss": len(before),
        "lost_before_backup": (None if backup_at is None
                               else sum(1 for s in missing if s.at < backup_at)),
        "sessions_kept": sessions_kept,
        "host_lost_at": round(lost_at, 3),
        "backup_started_at": None if backup_at is None else round(backup_at, 3),
    }


def rpo_lines(sends: list[Sent], present: set[int], lost_at: float,
              backup_at: float | None) -> list[str]:
    """What the step output says about the loss."""
    figures = measures(sends, present, lost_at, backup_at, True)
    after = [s for s in sends if s.ok and s.at >= lost_at]
    last = (f"last one present {figures['rpo_seconds']} s before the loss"
            if figures["rpo_seconds"] is not None else "none of them is there")
    lines = [f"before the loss: {figures['sent_before_loss']} acknowledged, "
             f"{figures['rpo_messages']} missing after the restore; {last}",
             "sent before the backup started and missing: "
             + (str(figures["lost_before_backup"]) if backup_at is not None
                else "not known (no backup.now in this run)")]
    if after:
        lines.append(f"first message acknowledged again {after[0].at - lost_at:.1f} s after "
                     f"the loss; {len(after)} since, {sum(s.number in present for s in after)}"
                     " of them read back")
    return lines


def register_traffic_actions(registry: ActionRegistry) -> None:
    """``traffic.start``, ``traffic.wait`` and ``traffic.stop``."""
    registry.action("traffic.start", summary="agents exchange numbered messages until "
                    "traffic.stop", args=TrafficArgs, timeout=120)(start)
    registry.action("traffic.wait", summary="let the traffic run (it must deliver)",
                    args=WaitArgs, timeout=600)(wait)
    registry.action("traffic.stop", summary="stop the traffic and measure the messages the "
                    "loss cost (RPO)", timeout=300)(stop)
