"""The activation announcement: a Jinja2 template per language, replaceable per site.

The shipped templates are ``planb/data/templates/announcement.<lang>.md.j2`` (fr, en),
in the site's ``language:`` (French when planb.yml sets none, as it always was); a
site overrides one with ``<state_dir>/templates/announcement.<lang>.md.j2``. It is one
whole text agents read, so each language is a template, not catalogue entries. The
activation time is the site's local time, formatted for the language by Babel. The same text
is posted to the announcement room and printed for administrators ("what to tell
agents"), so both always say the same thing. It renders in Jinja2's immutable
sandbox: a site's template fills in values and cannot reach Python internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markdown_it import MarkdownIt

from planb.config import SiteConfig
from planb.engine.actions import Incident
from planb.errors import ConfigError
from planb.i18n import Translator

SITE_TEMPLATES_DIR = "templates"


@dataclass(frozen=True)
class AnnouncementContext:
    """What the announcement may say (no personal data)."""

    activated_at: str
    incident_id: str
    reason: str = ""
    drill: bool = False


def template_name(lang: str) -> str:
    return f"announcement.{lang}.md.j2"


def _environment(site_templates: Path) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [
        jinja2.FileSystemLoader(str(site_templates)),
        jinja2.PackageLoader("planb", "data/templates"),
    ]
    return ImmutableSandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False)


def render_announcement(site: SiteConfig, context: AnnouncementContext,
                        lang: str | None = None) -> str:
    """The announcement text (Markdown) in ``lang`` (default: the site's announcement
    language); ConfigError naming the template if it is broken."""
    return render_with(site.state_dir / SITE_TEMPLATES_DIR, lang or site.announcement_language,
                       SiteText(site.organisation, site.matrix.server_name,
                                site.matrix.public_hostname), context)


@dataclass(frozen=True)
class SiteText:
    """The site's values an announcement names (kept on the messaging host for the
    break-glass command, :mod:`planb.breakglass`, which has no planb.yml)."""

    organisation: str
    server_name: str
    public_hostname: str


def render_with(site_templates: Path, lang: str, site: SiteText,
                context: AnnouncementContext) -> str:
    """The announcement in ``lang`` from ``site_templates`` (a site's own template) or the
    shipped one; what :func:`render_announcement` does without a :class:`SiteConfig`."""
    name = template_name(lang)
    env = _environment(site_templates)
    try:
        template = env.get_template(name)
        return template.render(
            organisation=site.organisation, server_name=site.server_name,
            public_hostname=site.public_hostname,
            url=f"https://{site.public_hostname}/",
            activated_at=context.activated_at, incident_id=context.incident_id,
            reason=context.reason, drill=context.drill,
        )
    except jinja2.TemplateNotFound:
        raise ConfigError(f"no announcement template for language {lang!r}",
                          path=str(site_templates / name)) from None
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


def site_template_path(site: SiteConfig, lang: str | None = None) -> Path:
    """Where a site puts its own announcement (default: in its announcement language)."""
    return site.state_dir / SITE_TEMPLATES_DIR / template_name(
        lang or site.announcement_language)


def local_time(utc_iso: str, language: str, timezone: str) -> str:
    """``2025-03-01T08:30:00.000Z`` as ``1er mars 2025 à 09:30 UTC+01:00`` (fr) or
    ``2025-03-01 09:30 UTC+01:00`` (en), in the site's time zone."""
    return Translator(language, timezone).when(utc_iso, precise=False)


def incident_announcement(site: SiteConfig, incident: Incident) -> str:
    """The announcement of ``incident``: what is posted to agents and printed for admins."""
    lang = site.announcement_language
    return render_announcement(site, AnnouncementContext(
        activated_at=local_time(incident.started_at, lang,
                                site.timezone or site.deploy.timezone),
        incident_id=incident.id, reason=incident.reason, drill=incident.drill), lang)


def announcement_html(text: str) -> str:
    """The announcement's Markdown as the HTML Matrix clients show (``formatted_body``).

    CommonMark with raw HTML off: markup in the site's text (its name, its message)
    reaches agents as text, and markdown-it refuses ``javascript:``-style links. Clients
    that show only ``body`` still get the Markdown source, which reads as plain text.
    """
    return MarkdownIt("commonmark", {"html": False, "typographer": False}).render(text)
