"""The activation announcement: a Jinja2 template in French, replaceable per site.

The shipped template is ``planb/data/templates/announcement.fr.md.j2``; a site
overrides it with ``<state_dir>/templates/announcement.<lang>.md.j2``. The same text
is posted to the announcement room and printed for administrators ("what to tell
agents"), so both always say the same thing. It renders in Jinja2's immutable
sandbox: a site's template fills in values and cannot reach Python internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from planb.config import SiteConfig
from planb.engine.actions import Incident
from planb.errors import ConfigError

SITE_TEMPLATES_DIR = "templates"


@dataclass(frozen=True)
class AnnouncementContext:
    """What the announcement may say (no personal data)."""

    activated_at: str
    incident_id: str
    reason: str = ""
    drill: bool = False


def template_name(lang: str = "fr") -> str:
    return f"announcement.{lang}.md.j2"


def _environment(site: SiteConfig) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [
        jinja2.FileSystemLoader(str(site.state_dir / SITE_TEMPLATES_DIR)),
        jinja2.PackageLoader("planb", "data/templates"),
    ]
    return ImmutableSandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False)


def render_announcement(site: SiteConfig, context: AnnouncementContext, lang: str = "fr") -> str:
    """The announcement text (Markdown); ConfigError naming the template if it is broken."""
    name = template_name(lang)
    env = _environment(site)
    try:
        template = env.get_template(name)
        return template.render(
            organisation=site.organisation, server_name=site.matrix.server_name,
            public_hostname=site.matrix.public_hostname,
            url=f"https://{site.matrix.public_hostname}/",
            activated_at=context.activated_at, incident_id=context.incident_id,
            reason=context.reason, drill=context.drill,
        )
    except jinja2.TemplateNotFound:
        raise ConfigError(f"no announcement template for language {lang!r}",
                          path=str(site.state_dir / SITE_TEMPLATES_DIR / name)) from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"template error: {exc.message}", path=exc.filename or name,
                          line=exc.lineno) from None
    except SecurityError as exc:
        raise ConfigError(f"the template tried something the sandbox forbids: {exc}",
                          path=_source(env, name),
                          hint="an announcement template fills in values; it cannot reach "
                               "Python objects' internals or change values") from None
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"template uses an unknown variable: {exc.message}",
                          path=_source(env, name)) from None


def _source(env: jinja2.Environment, name: str) -> str:
    try:
        return env.get_template(name).filename or name
    except jinja2.TemplateError:
        return name


def site_template_path(site: SiteConfig, lang: str = "fr") -> Path:
    """Where a site puts its own announcement."""
    return site.state_dir / SITE_TEMPLATES_DIR / template_name(lang)


def local_time_fr(utc_iso: str, timezone: str) -> str:
    """``2025-03-01T08:30:00.000Z`` as ``01/03/2025 à 09 h 30`` in the site's time zone."""
    moment = datetime.fromisoformat(utc_iso.replace("Z", "+00:00"))
    try:
        moment = moment.astimezone(ZoneInfo(timezone))
    except ZoneInfoNotFoundError:
        return moment.strftime("%d/%m/%Y à %H h %M (UTC)")
    return moment.strftime("%d/%m/%Y à %H h %M")


def incident_announcement(site: SiteConfig, incident: Incident) -> str:
    """The announcement of ``incident``: what is posted to agents and printed for admins."""
    return render_announcement(site, AnnouncementContext(
        activated_at=local_time_fr(incident.started_at, site.deploy.timezone),
        incident_id=incident.id, reason=incident.reason, drill=incident.drill))
