"""Finding and rendering runbook templates (Markdown + Jinja2, ``<name>.md.j2``).

Where templates are found, the first folder that has a name wins:

1. ``<state_dir>/runbooks/`` (this machine's own copy, e.g. ``.planb/runbooks/``),
2. ``<site dir>/runbooks/`` (next to ``planb.yml``, kept under version control with it),
3. the templates shipped in the package (``planb/data/runbooks/``).

A site may so replace a shipped runbook, or add its own. Files whose name starts
with ``_`` are partials (included by the others), not runbooks; they can be
overridden the same way. A template's first lines may carry metadata as Jinja
comments: ``{# title: ... #}``, ``{# lang: en #}`` (the language a site's own template
is written in; default: the site's ``language:``), ``{# needs: directory #}`` (the
crisis cell's contacts).

Text is translated with gettext (``jinja2.ext.i18n``: ``{% trans %}`` blocks and
``_()``), from planb's catalogues and the site's own
``<site dir>/locale/<lang>/LC_MESSAGES/planb.po``, whose entries win (see
:mod:`planb.i18n`); titles given in ``{# title: #}`` are looked up there too.

Rendering is strict: a value the template uses and the site does not give is an
error naming the template, its line and the value, never a silent blank. Templates
render in Jinja2's immutable sandbox (with the i18n extension): a site's template is
text with values, not code (``{{ ''.__class__.__mro__ }}`` or changing
a value is a ConfigError naming the template).
"""

from __future__ import annotations

import logging
import re
import shlex
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

import planb
from planb.config import SiteConfig
from planb.errors import ConfigError, UsageError
from planb.i18n import N_, Translator

log = logging.getLogger(__name__)

SUFFIX = ".md.j2"
RUNBOOKS_DIR = "runbooks"
_META = re.compile(r"^\{#\s*(title|lang|needs)\s*:\s*(.*?)\s*#\}\s*$")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&])")
#: Line ends for Markdown (CR LF, CR, LF) and the others str.splitlines() knows.
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
#: The shipped runbooks' titles (their ``{# title: #}``), for the catalogues.
SHIPPED_TITLES = (
    N_("Activate the failover (switch agents to the fallback)"),
    N_("Crisis cell contact sheet (from the directory)"),
    N_("Deactivate the failover (back to the main system)"),
    N_("Rebuild the fallback from nothing"),
    N_("Rotate the journal signing key"),
    N_("Run a failover drill"),
)


@dataclass(frozen=True)
class RunbookInfo:
    """A runbook template: its name, title, where it comes from and what it needs."""

    name: str
    title: str
    path: Path
    origin: str  # state | site | shipped
    lang: str = "en"
    needs: tuple[str, ...] = ()

    def public(self) -> dict[str, object]:
        """Plain data for ``--json``."""
        return {"name": self.name, "title": self.title, "source": self.origin,
                "path": str(self.path), "lang": self.lang, "needs": list(self.needs)}


@dataclass(frozen=True)
class RenderedRunbook:
    """A runbook filled with a site's values, as Markdown."""

    info: RunbookInfo
    markdown: str


def shipped_dir() -> Path:
    """The templates shipped in the package."""
    return planb.data_path(RUNBOOKS_DIR)


def template_dirs(site: SiteConfig) -> list[tuple[str, Path]]:
    """``(origin, folder)`` in lookup order: the first one holding a name wins."""
    return [("state", site.state_dir / RUNBOOKS_DIR), ("site", site.base_dir / RUNBOOKS_DIR),
            ("shipped", shipped_dir())]


def _metadata(path: Path, name: str, tr: Translator | None = None) -> RunbookInfo:
    meta: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            match = _META.match(line.strip())
            if not match:
                break
            meta[match.group(1)] = match.group(2)
    needs = tuple(n.strip() for n in meta.get("needs", "").split(",") if n.strip())
    title = meta.get("title") or name
    return RunbookInfo(name, tr._(title) if tr else title, path, "",
                       meta.get("lang") or (tr.language if tr else "en"), needs)


def list_runbooks(site: SiteConfig, tr: Translator | None = None) -> list[RunbookInfo]:
    """Every runbook by name, each from the first folder that has it (titles and
    language from ``tr``, when given; else as the templates say, in English)."""
    found: dict[str, RunbookInfo] = {}
    for origin, folder in template_dirs(site):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            name = path.name[: -len(SUFFIX)]
            if name.startswith("_") or name in found:
                continue
            info = _metadata(path, name, tr)
            found[name] = RunbookInfo(info.name, info.title, path, origin, info.lang,
                                      info.needs)
    return [found[name] for name in sorted(found)]


def find_runbook(site: SiteConfig, name: str, tr: Translator | None = None) -> RunbookInfo:
    """The runbook called ``name``; UsageError listing the known ones."""
    for info in list_runbooks(site, tr):
        if info.name == name:
            return info
    known = ", ".join(i.name for i in list_runbooks(site))
    raise UsageError(f"no runbook {name!r} (runbooks: {known})",
                     hint="see 'planb runbook list'")


def md_escape(value: object) -> str:
    """Text for Markdown prose or table cells: its special characters shown as they are,
    on one line (a ``\\r`` ends a Markdown line as ``\\n`` does: a value holding one
    could end a table row and start a heading or a row of its own)."""
    return _LINE_BREAKS.sub(" ", _MD_SPECIAL.sub(r"\\\1", str(value)))


def environment(site: SiteConfig, tr: Translator | None = None) -> jinja2.Environment:
    """The Jinja2 environment: site folders first, strict about undefined values,
    sandboxed (no attribute starting with ``_``, no method that changes a value), with
    gettext (``{% trans %}``, ``_()``) in ``tr``'s language (default: the site's)."""
    loaders = [jinja2.FileSystemLoader(str(folder)) for _, folder in template_dirs(site)]
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown; HTML escaping happens when it becomes HTML
        extensions=["jinja2.ext.i18n"],
    )
    # A {% trans %} block's line breaks and indentation are not part of its message.
    env.policies["ext.i18n.trimmed"] = True
    (tr or site.translator()).install(env)
    env.filters["md"] = md_escape
    env.filters["sh"] = lambda value: shlex.quote(str(value))
    return env


def _template_frame(exc: BaseException) -> str | None:
    """``file:line`` of the template (or included partial) the error was raised from.

    Jinja2 rewrites tracebacks so that template lines appear as frames of their file.
    """
    where = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(SUFFIX):
            where = f"{frame.filename}:{frame.lineno}"
    return where


def render(site: SiteConfig, info: RunbookInfo, values: Mapping[str, Any],
           tr: Translator | None = None) -> RenderedRunbook:
    """Fill ``info``'s template with ``values`` in ``tr``'s language (default: the
    site's); UsageError naming template, line and value."""
    env = environment(site, tr)
    try:
        template = env.get_template(info.path.name)
        text = template.render(**values)
    except jinja2.TemplateSyntaxError as exc:
        where = f"{exc.filename or info.path}:{exc.lineno}"
        raise UsageError(f"runbook {info.name}: {where}: template error: {exc.message}") from None
    except SecurityError as exc:
        path, _, line = (_template_frame(exc) or str(info.path)).rpartition(":")
        raise ConfigError(f"runbook {info.name}: the template tried something the sandbox "
                          f"forbids: {exc}", path=path or str(info.path),
                          line=int(line) if line.isdigit() else None,
                          hint="a runbook template fills in values; it cannot reach Python "
                               "objects' internals or change values") from None
    except jinja2.UndefinedError as exc:
        where = _template_frame(exc) or str(info.path)
        raise UsageError(f"runbook {info.name}: {where}: {exc.message} (a value the template "
                         "uses that the site does not give)",
                         hint="fix the template, or the site value it names") from None
    except jinja2.TemplateError as exc:
        raise UsageError(f"runbook {info.name}: {info.path}: {exc}") from None
    log.debug("rendered runbook %s from %s", info.name, info.path)
    return RenderedRunbook(info, text)
