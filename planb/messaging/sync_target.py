"""The account sync's Matrix target: Synapse, through the admin API.

:func:`target_for` is what :mod:`planb.directory.sync` discovers: it returns a
:class:`SynapseTarget` when the site has a ``fallback_messaging`` host and the
admin token the deploy wrote (``<state_dir>/synapse/admin-token``), else None (the
sync then plans LDAP only and says so). Each call of ``read_state`` / ``apply``
opens its own SSH tunnel (:mod:`planb.messaging.tunnel`) and closes it after; a
token Synapse no longer accepts (they expire) is renewed on the host first
(:mod:`planb.messaging.admin_token`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from planb.config import SiteConfig
from planb.directory.fallback_apply import ApplyReport, Progress
from planb.directory.plan import Plan, PlanOptions
from planb.directory.targets import MatrixState, MatrixUser
from planb.inventory import SshTarget
from planb.messaging.admin_api import AdminApi, MatrixApiError, quote
from planb.messaging.admin_token import read_token, renew_token, token_file
from planb.messaging.apply import DEFAULT_WORKERS, MatrixApplier
from planb.messaging.rooms import RoomNames, managed_rooms, room_members, rooms_to_open
from planb.messaging.tunnel import admin_tunnel, messaging_host

log = logging.getLogger(__name__)

ADMIN_LOCALPART = "planb-admin"
#: Alias localparts: department rooms ``#dept-<slug>``, the announcement room ``#annonces``.
ROOM_PREFIX = "dept-"
ANNOUNCEMENT_ROOM = "annonces"
ANNOUNCEMENT_NAME = "Annonces"


class SynapseTarget:
    """The Matrix target of one site (see :class:`planb.directory.sync.MatrixTarget`)."""

    name = "synapse"

    def __init__(self, site: SiteConfig, ssh: SshTarget, *, workers: int = DEFAULT_WORKERS,
                 names: RoomNames | None = None) -> None:
        self.site, self.ssh, self.workers = site, ssh, workers
        self.names = names or RoomNames(ROOM_PREFIX, ANNOUNCEMENT_ROOM)
        self.admin_id = f"@{ADMIN_LOCALPART}:{site.matrix.server_name}"

    def plan_options(self) -> PlanOptions:
        return PlanOptions(room_prefix=self.names.prefix,
                           announcement_room=self.names.announcement,
                           announcement_name=ANNOUNCEMENT_NAME)

    @contextlib.contextmanager
    def api(self) -> Iterator[AdminApi]:
        """An admin API client through a fresh tunnel, closed after use."""
        with admin_tunnel(self.ssh) as url:
            api = self._authorised(url)
            try:
                yield api
            finally:
                api.close()

    def _authorised(self, url: str) -> AdminApi:
        """A client with a token Synapse accepts: the stored one, else a renewed one."""
        api = AdminApi(url, read_token(self.site), self.site.matrix.server_name)
        try:
            api.request("GET", f"/_synapse/admin/v2/users/{quote(self.admin_id)}",
                        what=f"check the admin token of {self.admin_id}")
        except MatrixApiError as exc:
            api.close()
            if exc.status != 401:
                raise
            api = AdminApi(url, renew_token(self.site, self.ssh),
                           self.site.matrix.server_name)
        return api

    def read_state(self) -> MatrixState:
        """Every local user and the members of every room planb manages."""
        with self.api() as api:
            users = []
            for info in api.users():
                localpart = api.localpart(info.user_id)
                if localpart is not None:
                    users.append(MatrixUser(localpart, info.display_name, info.deactivated,
                                            service=info.admin or info.user_type is not None))
            managed = managed_rooms(api, self.names, self.admin_id)
            rooms = room_members(api, managed)
            closed = rooms_to_open(api, self.names, self.admin_id)
        return MatrixState.build(users, rooms,
                                 [alias for alias, rid in managed.items() if rid in closed])

    def apply(self, plan: Plan, progress: Progress) -> ApplyReport:
        """Apply the plan's Matrix sections (resumable: see :mod:`planb.messaging.apply`)."""
        with self.api() as api:
            applier = MatrixApplier(api, self.names, self.admin_id, workers=self.workers,
                                    federate=self.site.matrix.federation)
            return applier.apply(plan, progress)


def target_for(site: SiteConfig) -> SynapseTarget | None:
    """The site's Matrix target, or None (logged) when it has no messaging host or token."""
    if not token_file(site).is_file():
        log.info("Matrix target not configured: no admin token at %s (run 'planb deploy')",
                 token_file(site))
        return None
    host = messaging_host(site)
    if host is None:
        log.info("Matrix target not configured: the inventory has no fallback_messaging host")
        return None
    return SynapseTarget(site, host.ssh)
