"""CSV that spreadsheets open safely: formula cells neutralised (OWASP "CSV injection").

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read by Excel and LibreOffice as a formula (``=HYPERLINK(...)``, ``@SUM(...)``,
``-2+3``), which can run commands or leak data when the sheet is opened. Every CSV
planb writes goes through :func:`writer`, which prefixes such cells with ``'`` so
they are shown as text. A phone number such as ``+33 6 12 34 56 78`` therefore
appears as ``'+33 6 12 34 56 78`` in the file: the sheet is meant for printing and
spreadsheets, not to be fed back into another program.

Line breaks inside a cell (``\\r`` as well as ``\\n``, and the other characters
Python counts as line ends) become a space: :mod:`csv` quotes a bare ``\\r`` only
when it is part of the line terminator, and a spreadsheet reading an unquoted one
starts a new row there, whose first cell (``=...``) nothing would have neutralised.
A cell whose text, after its leading spaces, starts like a formula is neutralised too.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PREFIX = "'"
#: CR LF, CR, LF and the other line ends of str.splitlines().
LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")


def neutralise(value: object) -> str:
    """``value`` as one line of text, with ``'`` in front when a spreadsheet would read
    a formula."""
    text = "" if value is None else str(value)
    flat = LINE_BREAKS.sub(" ", text)
    if text.startswith(FORMULA_STARTS) or flat.lstrip().startswith(FORMULA_STARTS):
        return PREFIX + flat
    return flat


class SafeWriter:
    """A :func:`csv.writer` whose every cell goes through :func:`neutralise`."""

    def __init__(self, stream: IO[str], **fmtparams: Any) -> None:
        self._writer = csv.writer(stream, **fmtparams)

    def writerow(self, row: Iterable[object]) -> Any:
        """Write one row, neutralised."""
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        """Write every row, neutralised."""
        for row in rows:
            self.writerow(row)


def writer(stream: IO[str], **fmtparams: Any) -> SafeWriter:
    """Like :func:`csv.writer` (same format parameters), with formula cells neutralised."""
    return SafeWriter(stream, **fmtparams)
