"""The codes as a CSV for a mail-merge or SMS tool, formula-safe like the contact sheet.

One row per agent with a live code: ``login, name, department, mail, mobile, code,
valid_until, letter_no, enrol_url, welcome_url`` (English column names, which
mail-merge fields refer to; the order of the rows is the letters'). Every cell goes
through :mod:`planb.csvsafe`, so a name such as ``=HYPERLINK(...)`` is shown as text by
a spreadsheet (a mobile number starting with ``+`` gets a leading ``'`` too).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from planb import csvsafe
from planb.config import SiteConfig
from planb.enrolment.codes import Addresses, Letter
from planb.enrolment.letters import by_department

COLUMNS = ("login", "name", "department", "mail", "mobile", "code", "valid_until",
           "letter_no", "enrol_url", "welcome_url")


def render_csv(site: SiteConfig, letters: Sequence[Letter]) -> str:
    """The CSV text (UTF-8 with CRLF line ends, as spreadsheets expect), sorted like
    the letters: by department, then login."""
    addresses = Addresses.of(site)
    buffer = io.StringIO(newline="")
    out = csvsafe.writer(buffer)
    out.writerow(COLUMNS)
    for _, group in by_department(letters):
        for x in group:
            until = x.expires.date().isoformat() if x.expires else ""
            out.writerow((x.login, x.name, x.department, x.mail, x.mobile, x.code, until,
                          x.serial, addresses.enrol, addresses.welcome))
    return buffer.getvalue()
