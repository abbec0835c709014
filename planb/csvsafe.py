"""CSV that spreadsheets open safely: formula cells neutralised (OWASP "CSV injection").

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read by Excel and LibreOffice as a formula (``=HYPERLINK(...)``, ``@SUM(...)``,
``-2+3``), which can run commands or leak data when the sheet is opened. Every CSV
planb writes goes through :func:`writer`, which prefixes such cells with ``'`` so
they are shown as text. A phone number such as ``+33 6 12 34 56 78`` therefore
appears as ``'+33 6 12 34 56 78`` in the file: the sheet is meant for printing and
spreadsheets, not to be fed back into another program.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PREFIX = "'"


def neutralise(value: object) -> str:
    """``value`` as text, with ``'`` in front when a spreadsheet would read a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return PREFIX + text
    return text


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
