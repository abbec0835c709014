"""One announcement that reaches every active agent: the failover activation notice.

How it reaches 9,000 agents, and why this way:

- **The announcement room, joined nightly.** The sync keeps every active agent a
  member of one room (``#annonces:<server>``: read-only for agents, not in the
  directory, history visible to members). Joins are the slow part (Synapse
  serialises them per room: ~6/s, so ~25-30 min for 9,000 the first time), which is
  why they are done by the nightly sync, resumable, long before any incident;
  afterwards a night only adds the day's hires. On activation day the announcement
  is then **one message** (one request, well under a second): Synapse fans it out
  to every member, and it is in each agent's room list with an unread badge the
  first time they log in.
- **Catch-up at activation.** Agents not in the room yet (hired since the last
  sync, or the first sync still running) are force-joined right after the
  message, for at most ``catch_up_seconds``; history is visible to members, so
  they read the announcement posted before they joined. Whoever is still missing
  is reported by name (the nightly sync will join them).
- **Not server notices.** Synapse's ``server_notices`` (``POST
  /_synapse/admin/v1/send_server_notice``) delivers into a per-user notices room
  that Synapse creates on a user's first notice, then invites them to (auto-join
  only with ``auto_join``): at activation that is ~9,000 room creations plus
  invites, each several events — far slower (and heavier on a small server) than
  one message into a room the night already filled, and it would need
  homeserver.yaml changes. It remains a possible channel for one-to-one notices.

What an agent sees: on first login to the fallback, a room "Annonces" is already
in their list, with the activation notice from planb-admin as its last message;
they cannot post there; their department's room is next to it. When the alias
points to a room planb did not create (an agent took it first), nothing is posted
and no one is joined: the failure names the room's creator.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from planb.config import SiteConfig
from planb.directory.fallback_apply import ApplyReport, Failure
from planb.messaging.admin_api import AdminApi, MatrixApiError
from planb.messaging.announcement import announcement_html
from planb.messaging.apply import DEFAULT_WORKERS, Job, run_jobs
from planb.messaging.rooms import check_planbs_room
from planb.messaging.sync_target import ANNOUNCEMENT_ROOM, target_for

log = logging.getLogger(__name__)

#: Fits within the 60 s the failover step gives messaging.announce.
CATCH_UP_SECONDS = 40.0


@dataclass
class AnnounceReport:
    """What an announcement reached: counts, who was missed and why, and timings."""

    room: str
    event_id: str = ""
    active_agents: int = 0
    #: Active agents who are members of the room with the announcement in it.
    delivered: int = 0
    #: Of ``delivered``: joined at activation (catch-up), not by the nightly sync.
    joined_now: int = 0
    failures: list[Failure] = field(default_factory=list)
    send_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Posted, and every active agent can read it."""
        return bool(self.event_id) and self.delivered == self.active_agents

    def summary(self) -> str:
        missed = self.active_agents - self.delivered
        text = (f"announcement posted to #{self.room} in {self.send_seconds:.2f} s: "
                f"{self.delivered}/{self.active_agents} active agents reached")
        if self.joined_now:
            text += f" ({self.joined_now} joined just now)"
        if missed:
            text += f"; {missed} not reached (see failures)"
        return text + f"; {self.seconds:.1f} s in all"


def active_agents(api: AdminApi, admin_localpart: str) -> set[str]:
    """Localparts of the users who are agents: active, ordinary (not support, not admin)."""
    agents = set()
    for user in api.users():
        localpart = api.localpart(user.user_id)
        if localpart is None or localpart == admin_localpart or user.deactivated \
                or user.admin or user.user_type is not None:
            continue
        agents.add(localpart)
    return agents


def announce_with(api: AdminApi, text: str, *, room: str = ANNOUNCEMENT_ROOM,
                  admin_localpart: str = "planb-admin",
                  catch_up_seconds: float = CATCH_UP_SECONDS,
                  workers: int = DEFAULT_WORKERS,
                  clock: Callable[[], float] = time.monotonic) -> AnnounceReport:
    """Post ``text`` to the announcement room with ``api``, then join whoever is missing."""
    started = clock()
    report = AnnounceReport(room)
    try:
        room_id = api.resolve_alias(room)
        if room_id is None:
            report.failures.append(Failure(
                "announce", f"#{room}", "the announcement room does not exist: run "
                "'planb sync apply' (it creates it and joins every agent)"))
            return report
        # A room an agent made under the alias first is theirs: never post or join there.
        check_planbs_room(api, room, room_id, api.user_id(admin_localpart))
        agents = active_agents(api, admin_localpart)
        members = {lp for uid in api.members(room_id) if (lp := api.localpart(uid))}
        report.active_agents = len(agents)
        t0 = clock()
        report.event_id = api.send_text(room_id, text, html=announcement_html(text))
        report.send_seconds = clock() - t0
        report.delivered = len(agents & members)
        missing = sorted(agents - members)
        if missing:
            _catch_up(api, room_id, missing, report, clock() + catch_up_seconds, workers,
                      clock)
    except MatrixApiError as exc:
        report.failures.append(Failure("announce", f"#{room}", exc.message))
    finally:
        report.seconds = clock() - started
    log.info("%s", report.summary())
    return report


def _catch_up(api: AdminApi, room_id: str, missing: list[str], report: AnnounceReport,
              deadline: float, workers: int, clock: Callable[[], float]) -> None:
    def join(localpart: str) -> None:
        if clock() > deadline:
            raise MatrixApiError("not in the announcement room yet (no time left at "
                                 "activation; the next sync joins them)")
        api.join(room_id, localpart)

    jobs: list[Job] = [("announce_join", lp, partial(join, lp)) for lp in missing]
    joins = ApplyReport("announce")
    run_jobs(jobs, joins, lambda *_: None, "announce", len(jobs), workers)
    report.joined_now = joins.done.get("announce_join", 0)
    report.delivered += report.joined_now
    report.failures.extend(joins.failures)


def announce(site: SiteConfig, text: str, *,
             catch_up_seconds: float = CATCH_UP_SECONDS) -> AnnounceReport:
    """Post ``text`` (the activation announcement) so that every active agent gets it.

    Reaches Synapse through the admin tunnel; never touches the primary system.
    Never raises for a delivery problem: the report says what was missed.
    """
    target = target_for(site)
    if target is None:
        report = AnnounceReport(ANNOUNCEMENT_ROOM)
        report.failures.append(Failure("announce", site.site, "no Matrix target: the "
                                       "site has no messaging host or no admin token "
                                       "(run 'planb deploy')"))
        return report
    with target.api() as api:
        return announce_with(api, text, room=target.names.announcement or ANNOUNCEMENT_ROOM,
                             catch_up_seconds=catch_up_seconds, workers=target.workers)
