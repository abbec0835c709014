"""Applying the Matrix sections of a sync plan through the admin API.

Order: rooms to create; department rooms an older planb made invite-only opened
(:func:`planb.messaging.rooms.open_department_room`); then users (creations,
reactivations, display names, deactivations — independent per user, run
concurrently); then room memberships
(joins with the admin API, removals by kick as planb-admin); a room behind a managed
alias that planb did not create is refused and reported, its memberships left
alone, and the other rooms go on. The LDAP entries are
already written when this runs (the sync applies LDAP first), so every localpart
planb touches is one an LDAP entry holds.

Membership is the slow part: Synapse serialises membership changes per room, and
the issue measured ~6 force-joins/s into one room (a 9,000-member room takes
about half an hour). So membership is

- planned from the real state each run (:mod:`planb.directory.plan`): a run cut
  off (Ctrl-C, kill -9, Synapse restarting) leaves whole joins only, and the next
  run does what is left;
- concurrent: ``workers`` calls in flight, interleaved across rooms so that
  department rooms progress side by side instead of queueing behind one room;
- nightly: the sync runs every night, long before any incident, and after the
  first full run only the day's churn is left (1 % of 9,000 is seconds of work).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from planb.directory.fallback_apply import ApplyReport, Failure, Progress
from planb.directory.plan import Plan
from planb.errors import Interrupted
from planb.messaging.admin_api import AdminApi, MatrixApiError
from planb.messaging.rooms import (
    NotPlanbsRoom,
    RoomNames,
    check_planbs_room,
    ensure_room,
    open_department_room,
)

log = logging.getLogger(__name__)

#: The issue measured ~50 creations/s with 8 requests in flight.
DEFAULT_WORKERS = 8
NOT_IN_ROOM = "not in the room"
#: Failures logged one by one; the rest are in the report only.
LOGGED_FAILURES = 10
LEAVE_REASON = "changement de service (annuaire)"

#: One call: (kind, who); raises MatrixApiError on failure.
Job = tuple[str, str, Callable[[], None]]


def run_jobs(jobs: Iterable[Job], report: ApplyReport, progress: Progress, phase: str,
             total: int, workers: int) -> None:
    """Run ``jobs`` with ``workers`` in flight (a bounded window, so Ctrl-C cancels
    little); count successes in ``report`` and keep failures, naming who."""
    progress(phase, 0, total)
    if total == 0:
        return
    queue: Iterator[Job] = iter(jobs)
    done = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="matrix") as pool:
        pending: dict[Future[None], tuple[str, str]] = {}

        def submit(n: int) -> None:
            for kind, who, call in itertools.islice(queue, n):
                pending[pool.submit(call)] = (kind, who)

        submit(workers * 2)
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    kind, who = pending.pop(future)
                    exc = future.exception()
                    if exc is None:
                        report.count(kind)
                    elif isinstance(exc, MatrixApiError):
                        report.failures.append(Failure(kind, who, exc.message))
                        if len(report.failures) <= LOGGED_FAILURES:
                            log.warning("Matrix: %s", exc.message)
                    else:
                        raise exc
                    done += 1
                submit(len(finished))
                progress(phase, done, total)
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def interleave(per_room: list[list[Job]]) -> Iterator[Job]:
    """Spread each room's calls evenly over the whole run, in proportion to its size.

    Synapse makes one room's membership changes one after another, so the largest
    room (the announcement room: every agent) is the long pole. Plain round robin
    would leave it for last, alone; spread evenly it progresses from the first
    second while the department rooms fill side by side with the remaining slots.
    """
    keyed = [((i + 0.5) / len(jobs), r, i) for r, jobs in enumerate(per_room)
             for i in range(len(jobs))]
    for _key, room, index in sorted(keyed):
        yield per_room[room][index]


class MatrixApplier:
    """Writes a plan's Matrix sections with one :class:`AdminApi`."""

    def __init__(self, api: AdminApi, names: RoomNames, admin_id: str, *,
                 workers: int = DEFAULT_WORKERS, federate: bool = False) -> None:
        self.api, self.names, self.admin_id = api, names, admin_id
        self.workers, self.federate = max(1, workers), federate

    def apply(self, plan: Plan, progress: Progress) -> ApplyReport:
        report = ApplyReport("matrix")
        started = time.monotonic()
        try:
            rooms = self._rooms(plan, report, progress)
            self._open_rooms(plan, report, progress)
            self._users(plan, report, progress)
            self._members(plan, rooms, report, progress)
        except KeyboardInterrupt:
            raise Interrupted(
                f"Matrix apply interrupted after {sum(report.done.values())} call(s); every "
                "call made is whole and Synapse is usable",
                hint="run 'planb sync apply' again: it plans from what is there and "
                     "finishes") from None
        finally:
            report.seconds = time.monotonic() - started
        return report

    def _rooms(self, plan: Plan, report: ApplyReport, progress: Progress) -> dict[str, str]:
        """Room IDs of every room the plan names, creating the missing ones."""
        wanted = {c.alias: c.name for c in plan.room_creates}
        wanted.update({c.alias: c.name for c in plan.room_changes})
        rooms: dict[str, str] = {}
        progress("rooms", 0, len(wanted))
        for i, (alias, name) in enumerate(sorted(wanted.items()), 1):
            try:
                room_id, created = ensure_room(
                    self.api, alias, name or alias, admin_id=self.admin_id,
                    announcement=alias == self.names.announcement, federate=self.federate)
            except NotPlanbsRoom as exc:  # an agent took the alias: no one is joined
                report.failures.append(Failure("room_refused", alias, exc.message))
                log.warning("Matrix: %s", exc.message)
                continue
            except MatrixApiError as exc:
                report.failures.append(Failure("room_create", alias, exc.message))
                continue
            rooms[alias] = room_id
            if created:
                report.count("room_create")
            progress("rooms", i, len(wanted))
        return rooms

    def _open_rooms(self, plan: Plan, report: ApplyReport, progress: Progress) -> None:
        """Department rooms made invite-only by an older planb: opened (see
        :func:`planb.messaging.rooms.open_department_room`)."""
        jobs: list[Job] = [("room_open", change.alias, _call(self._open, change.alias,
                                                             change.name))
                           for change in plan.room_opens]
        run_jobs(jobs, report, progress, "rooms opened", len(jobs), self.workers)

    def _open(self, alias: str, department: str) -> None:
        room_id = self.api.resolve_alias(alias)
        if room_id is None:
            return  # gone since the plan: nothing to open
        check_planbs_room(self.api, alias, room_id, self.admin_id)
        name = department or str(self.api.room(room_id).get("name") or "")
        if not name:
            raise MatrixApiError(f"room {self.api.alias_id(alias)} has no department name")
        open_department_room(self.api, room_id, name)

    def _users(self, plan: Plan, report: ApplyReport, progress: Progress) -> None:
        api = self.api
        jobs: list[Job] = [("user_create", c.localpart,
                            _call(api.create_user, c.localpart, c.display_name))
                           for c in plan.matrix_creates]
        jobs += [("user_reactivate", c.localpart or c.login, _call(api.reactivate, c.localpart))
                 for c in plan.matrix_reactivations if c.localpart]
        jobs += [("display_name", c.localpart, _call(api.set_display_name, c.localpart, c.new))
                 for c in plan.display_names]
        jobs += [("user_deactivate", c.localpart or c.login, _call(api.deactivate, c.localpart))
                 for c in plan.matrix_deactivations if c.localpart]
        run_jobs(jobs, report, progress, "users", len(jobs), self.workers)

    def _members(self, plan: Plan, rooms: dict[str, str], report: ApplyReport,
                 progress: Progress) -> None:
        per_room: list[list[Job]] = []
        for change in plan.room_changes:
            room_id = rooms.get(change.alias)
            if room_id is None:
                continue  # its creation failed: reported above
            jobs: list[Job] = [("room_leave", f"{lp} ({change.alias})",
                                _call(self._leave, room_id, lp)) for lp in change.leaves]
            jobs += [("room_join", f"{lp} ({change.alias})", _call(self.api.join, room_id, lp))
                     for lp in change.joins]
            per_room.append(jobs)
        total = sum(len(j) for j in per_room)
        run_jobs(interleave(per_room), report, progress, "members", total, self.workers)

    def _leave(self, room_id: str, localpart: str) -> None:
        try:
            self.api.kick(room_id, localpart, LEAVE_REASON)
        except MatrixApiError as exc:
            if exc.status == 403 and NOT_IN_ROOM in exc.message.lower():
                return  # already gone: what we wanted
            raise


def _call(fn: Callable[..., None], *args: object) -> Callable[[], None]:
    return lambda: fn(*args)
