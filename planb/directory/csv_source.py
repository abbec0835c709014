"""CSV exports of the primary directory, as administrations really produce them.

* encoding: UTF-8 with a BOM, UTF-8, or Windows-1252 (``auto`` tries them in that
  order: BOM -> utf-8-sig; valid UTF-8 -> utf-8; otherwise cp1252);
* separator: ``;`` or ``,`` (``auto`` asks :class:`csv.Sniffer`, restricted to those
  two, and falls back on counting them in the header line);
* quoted fields with separators, quotes (``""``) and line breaks inside; CRLF or LF.

Header names map to agent fields through ``primary.mapping`` (matched ignoring case,
surrounding spaces and Unicode normalisation form). A row with a missing id or
login, an invalid mail, an unknown enabled value or a duplicate id/login is
rejected with the physical line where it starts; with ``strict=True`` any
rejection refuses the whole file.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from planb.directory.mapping import (
    FieldMap,
    agent_from_record,
    record_disabled,
    record_key,
    resolve_mapping,
)
from planb.directory.model import AgentCollector, SourceResult, rejection_lines
from planb.errors import UsageError

log = logging.getLogger(__name__)

DELIMITERS = (";", ",")
_SNIFF_BYTES = 64 * 1024


def decode_export(data: bytes, encoding: str, shown: str) -> tuple[str, str]:
    """Decode ``data``; return ``(text, encoding used)``. ``auto`` detects as described above."""
    if encoding == "auto":
        if data.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        else:
            try:
                return data.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                encoding = "cp1252"
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(
            f"{shown}:{line}: byte 0x{data[exc.start]:02x} is not valid {encoding}",
            hint="save the export as UTF-8 or Windows-1252, or set primary.csv.encoding",
        ) from None


def detect_delimiter(text: str) -> str:
    """``;`` or ``,``: csv.Sniffer on the start of the file, else the header's counts."""
    sample = text[:_SNIFF_BYTES]
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = ""
    header = sample.splitlines()[0] if sample else ""
    counts = {d: header.count(d) for d in DELIMITERS}
    if sniffed in DELIMITERS and counts[sniffed] > 0:
        return sniffed
    return max(DELIMITERS, key=lambda d: counts[d])  # ';' wins a tie (French exports)


def _header_index(header: list[str], fmap: FieldMap, shown: str) -> dict[str, int]:
    """Column of each lower-cased header; refuses duplicates and missing mapped headers."""
    index: dict[str, int] = {}
    for column, name in enumerate(header):
        key = unicodedata.normalize("NFC", name.strip().lstrip("\ufeff").strip()).casefold()
        if not key:
            continue
        if key in index:
            raise UsageError(f"{shown}:1: header {name.strip()!r} appears twice")
        index[key] = column
    for agent_field, names in fmap.fields.items():
        if any(n in index for n in names):
            continue
        if agent_field in ("id", "login") or agent_field in fmap.explicit:
            shown_headers = ", ".join(repr(h.strip()) for h in header)
            raise UsageError(
                f"{shown}:1: no column {names[0]!r} for {agent_field} "
                f"(the header has: {shown_headers})",
                hint=f"map it in planb.yml: primary.mapping: {{{agent_field}: <header>}}",
            )
    return index


def parse_csv_text(
    text: str, fmap: FieldMap, shown: str, *, delimiter: str = "auto", strict: bool = False
) -> SourceResult:
    """Parse an already decoded CSV export into agents and rejections."""
    if delimiter == "auto":
        delimiter = detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"',
                        doublequote=True, strict=True)
    collector = AgentCollector(shown)
    try:
        header = next(reader, None)
        if header is None:
            raise UsageError(f"{shown}: the file is empty (no header line)")
        index = _header_index(header, fmap, shown)
        wanted = {key: col for key, col in index.items()
                  if any(key in names for names in fmap.fields.values())}
        line = reader.line_num + 1
        for row in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            record = {key: row[col].strip() if col < len(row) else "" for key, col in
                      wanted.items()}
            if len(row) != len(header):
                agent_id, login = record_key(record, fmap)
                collector.reject(f"has {len(row)} fields but the header has {len(header)} "
                                 "(a separator inside an unquoted field?)",
                                 line=start, id=agent_id, login=login)
                continue
            try:
                agent = agent_from_record(record, fmap)
            except ValueError as exc:
                agent_id, login = record_key(record, fmap)
                collector.reject(str(exc), line=start, id=agent_id, login=login,
                                 disabled=record_disabled(record, fmap))
                continue
            collector.add(agent, line=start)
    except csv.Error as exc:
        raise UsageError(f"{shown}:{reader.line_num}: unreadable CSV: {exc}",
                         hint="check the quotes on that line") from None
    result = collector.result()
    if result.rejections:
        log.warning("%s: %d row(s) rejected", shown, len(result.rejections))
        if strict:
            raise UsageError(
                f"{shown}: {len(result.rejections)} row(s) rejected, nothing done "
                f"(--strict):\n{rejection_lines(result.rejections)}",
                hint="fix the export, or run without --strict to skip these rows",
            )
    return result


def read_csv(
    path: Path,
    mapping: Mapping[str, str] | FieldMap | None = None,
    *,
    encoding: str = "auto",
    delimiter: str = "auto",
    strict: bool = False,
) -> SourceResult:
    """Read a CSV export at ``path``: agents plus rejected rows (with line numbers).

    ``mapping`` is planb.yml's ``primary.mapping`` (agent field -> header) or an
    already resolved FieldMap. Raises UsageError when the file cannot be read or
    decoded, lacks the id or login column, or (``strict``) has any rejected row.
    """
    shown = str(path)
    fmap = mapping if isinstance(mapping, FieldMap) else resolve_mapping("csv", mapping)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read the CSV export: {exc.strerror}") from None
    text, used = decode_export(data, encoding, shown)
    log.debug("%s: decoded as %s", shown, used)
    return parse_csv_text(text, fmap, shown, delimiter=delimiter, strict=strict)
