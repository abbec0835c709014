"""The activation announcement, posted from the messaging host without the controller.

Deploy keeps on the host what the announcement needs (``/etc/planb/breakglass/site.json``:
the site's name, organisation, server and public names, language, time zone, the
announcement room, the admin account, Synapse's loopback URL; and the site's own
template in ``templates/`` when it has one). The text is rendered by the same code and
templates as the controller's (:func:`planb.messaging.announcement.render_with`).

The credential is the host's own: the synapse role's root-only
``planb-synapse-admin-token-renew`` prints a fresh access token for planb's admin
account (made with the registration shared secret, no password). It is used for the
post and never written, logged or shown.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from planb.breakglass.host import Incident
from planb.breakglass.paths import HostPaths
from planb.errors import ConfigError, PlanbError
from planb.messaging.admin_api import AdminApi
from planb.messaging.announcement import (
    AnnouncementContext,
    SiteText,
    announcement_html,
    local_time,
    render_with,
)
from planb.messaging.rooms import check_planbs_room
from planb.schema import Secret

SITE_FORMAT = "planb-breakglass-site/1"


@dataclass(frozen=True)
class HostSite:
    """The site's values deploy keeps on the host (``site.json``); no secret."""

    site: str
    organisation: str
    server_name: str
    public_hostname: str
    language: str
    timezone: str
    announcement_room: str
    admin_localpart: str
    synapse_url: str
    token_command: str


def load_site(paths: HostPaths) -> HostSite:
    """``site.json``; :class:`ConfigError` naming it when missing or incomplete."""
    try:
        data = json.loads(paths.site_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("no site values on this host", path=str(paths.site_file),
                          hint="'planb deploy' writes them (role breakglass)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"unreadable: {exc}", path=str(paths.site_file)) from None
    if not isinstance(data, dict) or data.get("format") != SITE_FORMAT:
        raise ConfigError(f"not a {SITE_FORMAT} file", path=str(paths.site_file))
    try:
        return HostSite(**{k: str(data[k]) for k in HostSite.__dataclass_fields__})
    except KeyError as missing:
        raise ConfigError(f"{missing} is missing", path=str(paths.site_file)) from None


def render(paths: HostPaths, site: HostSite, incident: Incident) -> str:
    """The announcement of ``incident`` in the site's language (its template if any)."""
    return render_with(
        paths.templates, site.language,
        SiteText(site.organisation, site.server_name, site.public_hostname),
        AnnouncementContext(local_time(incident.started_at, site.language, site.timezone),
                            incident.id, incident.reason, incident.drill))


def admin_token(site: HostSite) -> Secret:
    """A fresh token for planb's admin account, from the host's root-only command."""
    try:
        done = subprocess.run([site.token_command], capture_output=True, text=True,
                              timeout=90, check=False)
    except OSError as exc:
        raise PlanbError(f"{site.token_command}: cannot run it: {exc.strerror}",
                         hint="run 'planb deploy' (role synapse installs it)") from None
    token = done.stdout.strip()
    if done.returncode != 0 or not token or any(c.isspace() for c in token):
        raise PlanbError(f"{site.token_command} gave no token (exit {done.returncode}): "
                         f"{done.stderr.strip()[-200:]}", hint="is Synapse running?")
    return Secret(token)


def post(paths: HostPaths, incident: Incident) -> str:
    """Render and post the announcement; what to record (the room and event)."""
    site = load_site(paths)
    text = render(paths, site, incident)
    api = AdminApi(site.synapse_url, admin_token(site), site.server_name, timeout=30)
    try:
        room_id = api.resolve_alias(site.announcement_room)
        if room_id is None:
            raise PlanbError(f"the announcement room #{site.announcement_room} does not "
                             "exist (the controller's 'planb sync apply' creates it)")
        check_planbs_room(api, site.announcement_room, room_id,
                          api.user_id(site.admin_localpart))
        event_id = api.send_text(room_id, text, html=announcement_html(text))
    finally:
        api.close()
    return f"announcement posted to #{site.announcement_room}:{site.server_name} ({event_id})"
