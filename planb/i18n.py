"""What people read outside the terminal, in the site's language: catalogues and formats.

Messages come from gettext catalogues (``planb/data/locale/<lang>/LC_MESSAGES/planb.po``,
compiled to ``.mo`` by ``tools/i18n.py``); a site completes or overrides them with its
own ``<site dir>/locale/<lang>/LC_MESSAGES/planb.po`` (or ``.mo``), whose entries win.
Dates, times, durations and numbers are formatted for the locale by Babel, times in the
site's time zone with the UTC offset shown (``29 novembre 2026 à 21:46:03 UTC+01:00``).

A :class:`Translator` is what renderers take; :data:`ENGLISH`-like defaults
(:func:`english`) keep today's English output (times in UTC) for callers that give none.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

import planb

log = logging.getLogger(__name__)

LANGUAGES = ("en", "fr")
DOMAIN = "planb"
LOCALE_DIR = "locale"
#: The time zone people read times in when the site names none, per language.
DEFAULT_TIMEZONE = {"en": "UTC", "fr": "Europe/Paris"}


def N_(message: str) -> str:  # noqa: N802 - the gettext convention extractors look for
    """Mark ``message`` for extraction; it is translated later, where it is shown."""
    return message


def package_locale_dir() -> Path:
    """The catalogues shipped in the package."""
    return planb.data_path(LOCALE_DIR)


def site_catalogue(site_dir: Path, language: str) -> Path:
    """Where a site's own ``.po`` for ``language`` goes (its ``.mo`` sits next to it)."""
    return site_dir / LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _load_site(site_dir: Path, language: str) -> Translations | None:
    po = site_catalogue(site_dir, language)
    mo = po.with_suffix(".mo")
    try:
        if po.is_file():
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=language, domain=DOMAIN)
            buffer = io.BytesIO()
            write_mo(buffer, catalog, use_fuzzy=False)
            buffer.seek(0)
            return Translations(buffer, domain=DOMAIN)
        if mo.is_file():
            with mo.open("rb") as handle:
                return Translations(handle, domain=DOMAIN)
    except (OSError, ValueError, SyntaxError) as exc:
        log.warning("site catalogue %s unreadable, ignored: %s", po, exc)
    return None


@functools.cache
def _package(language: str) -> Translations | NullTranslations:
    loaded = Translations.load(str(package_locale_dir()), [language], domain=DOMAIN)
    if not isinstance(loaded, Translations):
        log.warning("no %s catalogue shipped for language %r", DOMAIN, language)
    return loaded


def translations(language: str, site_dir: Path | None = None) -> Translations | NullTranslations:
    """planb's catalogue for ``language``, with the site's entries (if any) winning."""
    base = _package(language)
    site = _load_site(site_dir, language) if site_dir is not None else None
    if site is None:
        return base
    merged = Translations(domain=DOMAIN)
    if isinstance(base, Translations):
        merged.merge(base)
    merged.merge(site)
    log.debug("site catalogue %s merged", site_catalogue(site_dir or Path(), language))
    return merged


class Translator:
    """Messages and formats for one language and time zone (and a site's overrides)."""

    def __init__(self, language: str = "en", timezone: str | None = None,
                 site_dir: Path | None = None) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language {language!r}: use one of {', '.join(LANGUAGES)}")
        self.language = language
        self.timezone_name = timezone or DEFAULT_TIMEZONE[language]
        try:
            self.zone: ZoneInfo = ZoneInfo(self.timezone_name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r: times are shown in UTC", self.timezone_name)
            self.timezone_name, self.zone = "UTC", ZoneInfo("UTC")
        self.translations = translations(language, site_dir)

    # -- messages -------------------------------------------------------------------
    def _(self, message: str) -> str:
        """``message`` translated (itself when the catalogue has no entry)."""
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    @property
    def colon(self) -> str:
        """``: `` as the language writes it before a value (French puts a space before)."""
        return "\u00a0: " if self.language == "fr" else ": "

    def install(self, env: Any) -> None:
        """Give a Jinja2 environment (with ``jinja2.ext.i18n``) these messages."""
        env.install_gettext_translations(self.translations, newstyle=True)

    # -- numbers --------------------------------------------------------------------
    def decimal(self, value: float, pattern: str = "0.##") -> str:
        return format_decimal(value, pattern, locale=self.language)

    def integer(self, value: int) -> str:
        """``9000`` as ``9 000`` (fr) or ``9,000`` (en)."""
        return format_decimal(value, "#,##0", locale=self.language)

    def seconds(self, value: Any) -> str:
        """A duration: ``0.42 s``, ``12.3 s``, ``125 s (2 min 5 s)`` (``40,8 s`` in French)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return ""
        if value < 10:
            return f"{self.decimal(value, '0.00')} s"
        if value < 100:
            return f"{self.decimal(value, '0.0')} s"
        minutes, rest = divmod(round(value), 60)
        return f"{self.decimal(value, '0')} s ({minutes} min {rest} s)"

    def size(self, value: Any) -> str:
        """Bytes: ``512 B``, ``12.3 MiB`` (``12,3 Mio`` in French)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self._("not measured")
        amount = float(value)
        units = (self._("B"), self._("KiB"), self._("MiB"), self._("GiB"))
        for index, unit in enumerate(units):
            if amount < 1024 or index == len(units) - 1:
                return f"{self.decimal(amount, '0' if index == 0 else '0.0')} {unit}"
            amount /= 1024
        raise AssertionError("unreachable")  # pragma: no cover

    # -- times ----------------------------------------------------------------------
    def moment(self, value: Any) -> datetime | None:
        """A journal time (``2025-03-01T09:30:00.123Z``) in the site's time zone."""
        if not isinstance(value, str) or not value:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(self.zone)

    def offset(self, moment: datetime) -> str:
        """``UTC`` or ``UTC+01:00``."""
        delta = moment.utcoffset()
        if not delta:
            return "UTC"
        return "UTC" + format_datetime(moment, "xxx", locale=self.language)

    def _millis(self, moment: datetime) -> str:
        sep = "," if self.language == "fr" else "."
        return f"{moment:%H:%M:%S}{sep}{moment.microsecond // 1000:03d}"

    def when(self, value: Any, *, precise: bool = True) -> str:
        """A journal time for people: ``2025-03-01 09:30:00.123 UTC`` (en),
        ``1er mars 2025 à 10:30:00,123 UTC+01:00`` (fr); ``precise=False`` stops at minutes.
        A string that is not a time is shown as it is."""
        moment = self.moment(value)
        if moment is None:
            return value if isinstance(value, str) else ""
        if self._legacy(value):  # today's English: the journal's own digits
            return value.replace("T", " ").removesuffix("Z") + " UTC"
        clock = self._millis(moment) if precise else f"{moment:%H:%M}"
        return f"{self.date(moment)}{self._at()}{clock} {self.offset(moment)}"

    def _legacy(self, value: Any) -> bool:
        return (self.language == "en" and self.timezone_name == "UTC"
                and isinstance(value, str) and value.endswith("Z") and "T" in value)

    def _at(self) -> str:
        return " à " if self.language == "fr" else " "

    def date(self, moment: datetime) -> str:
        """``2025-03-01`` (en) or ``1er mars 2025`` (fr)."""
        if self.language == "en":
            return f"{moment:%Y-%m-%d}"
        shown = format_datetime(moment, "d MMMM y", locale=self.language)
        # French writes the first of the month as an ordinal: 1er mars 2025.
        return "1er" + shown[1:] if moment.day == 1 else shown

    def day(self, value: Any) -> str:
        """The local day of a journal time, as :meth:`date` shows it ('' if none)."""
        moment = self.moment(value)
        return self.date(moment) if moment else ""

    def clock(self, value: Any, day: str) -> str:
        """A step's start: the time alone when it is on ``day`` (a :meth:`day`), else in full."""
        moment = self.moment(value)
        if moment is None:
            return ""
        if day and self.date(moment) == day:
            if self._legacy(value):
                return str(value)[11:].removesuffix("Z")
            return self._millis(moment)
        return self.when(value)

    def month(self, value: Any) -> str:
        """The calendar month of a journal time: ``2025-03`` (en), ``mars 2025`` (fr)."""
        moment = self.moment(value)
        if moment is None:
            return ""
        if self.language == "en":
            return f"{moment:%Y-%m}"
        return format_datetime(moment, "LLLL y", locale=self.language)

    def zone_label(self) -> str:
        """The time zone named in captions: ``UTC`` or ``Europe/Paris``."""
        return self.timezone_name

    def now(self, clock: Callable[[], datetime] | None = None) -> str:
        """The present moment, to minutes, for 'printed on' lines."""
        moment = (clock or (lambda: datetime.now(UTC)))()
        return self.when(moment.astimezone(UTC).isoformat(), precise=False)


def extract_descriptions(fileobj: Any, keywords: Any, comment_tags: Any,
                         options: Any) -> Any:
    """Babel extractor for drill scenarios (YAML): their ``description``, whitespace
    joined as the runbooks show it (babel.cfg names it for planb/data/scenarios/)."""
    data = yaml.safe_load(fileobj.read().decode("utf-8"))
    description = data.get("description") if isinstance(data, dict) else None
    if isinstance(description, str) and description.strip():
        yield 1, "_", " ".join(description.split()), ["scenario description"]


@functools.cache
def english() -> Translator:
    """Today's English output, times in UTC: the default of every renderer."""
    return Translator("en", "UTC")


__all__ = ["DOMAIN", "LANGUAGES", "N_", "Translator", "english", "site_catalogue",
           "translations"]
