"""The crisis cell's phone list: who is in it, read from the directory, grouped by department.

Where it reads (``planb runbook render crisis-contacts``):

- by default the **fallback LDAP**: it is what survives when the main system is down,
  read with the sync's own account and reader (:meth:`planb.directory.sync.Sync.read_fallback`);
- ``primary``: the configured primary source (LDAP or CSV export), through the sync's
  reader, which refuses while failover is active (the primary may be compromised);
- a snapshot file written by ``planb sync plan --snapshot-out FILE``.

Who is in the cell is the site's ``crisis_cell`` setting (planb.yml): an enabled agent
in one of its groups or holding one of its titles (whole title, ignoring case and accents).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from planb import csvsafe
from planb.config import CrisisCellConfig, SiteConfig
from planb.directory.sync import Sync
from planb.errors import UsageError
from planb.i18n import N_, Translator, english

log = logging.getLogger(__name__)

Origin = Literal["fallback", "primary"]
NO_DEPARTMENT = N_("(no department)")
CSV_HEADER = ("department", "name", "title", "mobile", "mail")
CSV_DELIMITER = ";"  # what French spreadsheets open without asking


class Person(Protocol):
    """What an agent (source) and a fallback entry both have."""

    login: str
    given_name: str
    surname: str
    display_name: str
    mail: str
    department: str
    title: str
    mobile: str
    enabled: bool
    groups: frozenset[str]


@dataclass(frozen=True)
class Contact:
    """One line of the sheet."""

    name: str
    title: str
    mobile: str
    mail: str
    department: str
    sort_key: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrisisSheet:
    """The crisis cell, by department, and where and when it was read."""

    source: str
    read_at: str
    departments: tuple[tuple[str, tuple[Contact, ...]], ...]

    @property
    def count(self) -> int:
        return sum(len(people) for _, people in self.departments)


def _fold(text: str) -> str:
    """Case- and accent-insensitive form, for matching and sorting French names."""
    plain = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in plain if not unicodedata.combining(c)).split())


def in_cell(person: Person, cell: CrisisCellConfig) -> bool:
    """An enabled agent in one of the cell's groups or holding one of its titles."""
    if not person.enabled:
        return False
    groups = {_fold(g) for g in cell.groups}
    titles = {_fold(t) for t in cell.titles}
    return bool(groups & {_fold(g) for g in person.groups}) or _fold(person.title) in titles


def contact_for(person: Person) -> Contact:
    """The sheet's line for ``person``."""
    name = (person.display_name
            or " ".join(p for p in (person.given_name, person.surname) if p) or person.login)
    department = person.department.strip() or NO_DEPARTMENT
    key = (_fold(person.surname or name), _fold(person.given_name), _fold(name))
    return Contact(name, person.title, person.mobile, person.mail, department, key)


def build_sheet(people: Iterable[Person], cell: CrisisCellConfig, source: str,
                read_at: str | None = None) -> CrisisSheet:
    """Select the cell from ``people`` and group it by department (both sorted)."""
    by_department: dict[str, list[Contact]] = {}
    for person in people:
        if in_cell(person, cell):
            contact = contact_for(person)
            by_department.setdefault(contact.department, []).append(contact)
    departments = tuple(
        (name, tuple(sorted(by_department[name], key=lambda c: c.sort_key)))
        for name in sorted(by_department, key=lambda d: (d == NO_DEPARTMENT, _fold(d)))
    )
    read_at = read_at or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return CrisisSheet(source, read_at, departments)


def read_people(site: SiteConfig, *, origin: Origin = "fallback",
                snapshot: Path | None = None,
                tr: Translator | None = None) -> tuple[str, list[Any]]:
    """``(what was read, its people)`` from the fallback, the primary or a snapshot
    (the fallback named in ``tr``'s language; the others as the directory reader says)."""

    sync = Sync(site)
    if snapshot is not None or origin == "primary":
        result = sync.read_source(from_snapshot=snapshot)
        return result.source, list(result.agents)
    state = sync.read_fallback()
    label = (tr or english())._("the fallback directory (%(url)s)")
    return label % {"url": sync.fallback.url}, list(state.entries.values())


def crisis_sheet(site: SiteConfig, *, origin: Origin = "fallback",
                 snapshot: Path | None = None, tr: Translator | None = None) -> CrisisSheet:
    """Read the directory and build the site's crisis contact sheet (its time of reading
    as ``tr``, by default the site's language, shows it).

    UsageError when the cell is empty: an empty sheet printed in a crisis is worse
    than an error now.
    """
    source, people = read_people(site, origin=origin, snapshot=snapshot, tr=tr)
    sheet = build_sheet(people, site.crisis_cell, source,
                        (tr or site.translator()).now())
    if sheet.count == 0:
        raise UsageError(
            f"nobody in {source} is in the crisis cell ({criteria_text(site.crisis_cell)})",
            hint="set crisis_cell.groups or crisis_cell.titles in planb.yml")
    log.info("crisis cell: %d people in %d departments from %s", sheet.count,
             len(sheet.departments), source)
    return sheet


def criteria_text(cell: CrisisCellConfig, tr: Translator | None = None) -> str:
    """``groups: A, B; titles: X, Y`` for messages and the sheet (in ``tr``'s language)."""
    tr = tr or english()
    parts = []
    if cell.groups:
        parts.append(tr._("groups: %(names)s") % {"names": ", ".join(cell.groups)})
    if cell.titles:
        parts.append(tr._("titles: %(names)s") % {"names": ", ".join(cell.titles)})
    return "; ".join(parts)


def sheet_values(sheet: CrisisSheet, cell: CrisisCellConfig,
                 tr: Translator | None = None) -> dict[str, Any]:
    """The ``cell`` value the crisis-contacts template is rendered with (words and
    numbers for people in ``tr``'s language, English by default)."""
    tr = tr or english()
    return {
        "source": sheet.source, "read_at": sheet.read_at, "count": sheet.count,
        "count_text": tr.integer(sheet.count), "criteria": criteria_text(cell, tr),
        "departments": [
            {"name": tr._(NO_DEPARTMENT) if name == NO_DEPARTMENT else name,
             "people": [{"name": c.name, "title": c.title, "mobile": c.mobile,
                         "mail": c.mail} for c in people]}
            for name, people in sheet.departments
        ],
    }


def write_csv(sheet: CrisisSheet, stream: IO[str]) -> None:
    """The sheet as CSV (``;``-separated, formulas neutralised), one row per person."""
    out = csvsafe.writer(stream, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    out.writerow(CSV_HEADER)
    for department, people in sheet.departments:
        for c in people:
            out.writerow((department, c.name, c.title, c.mobile, c.mail))
