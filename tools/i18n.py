#!/usr/bin/env python3
"""planb's message catalogues: extract, update, compile, check (gettext through Babel).

    .venv/bin/python tools/i18n.py            # extract + update + compile (after editing text)
    .venv/bin/python tools/i18n.py extract    # planb/data/locale/planb.pot from code and templates
    .venv/bin/python tools/i18n.py update     # merge the .pot into each language's planb.po
    .venv/bin/python tools/i18n.py compile    # planb.po -> planb.mo (shipped in the package)
    .venv/bin/python tools/i18n.py check      # exit 1 if a .mo is stale, a msgid is missing,
                                              # or a French entry is empty or fuzzy

Extraction follows babel.cfg (Python with ``_``/``N_``/``ngettext``; the report and
runbook templates with ``jinja2.ext.i18n``, trimmed). After ``update``, translate the new
French entries (empty ``msgstr``, or ``#, fuzzy``) before ``compile``: ``check`` fails
on them, and so does tests/unit/test_i18n_catalogues.py.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import CommandLineInterface, parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "planb" / "data" / "locale"
POT = LOCALE / "planb.pot"
LANGUAGES = ("en", "fr")
#: Languages whose every entry must be translated (en's msgids are its text).
TRANSLATED = ("fr",)
KEYWORDS = ("_", "N_", "gettext", "ngettext:1,2", "pgettext:1c,2")


def _pybabel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", "--quiet", *args])


def extract() -> None:
    keywords = [arg for k in KEYWORDS for arg in ("-k", k)]
    _pybabel("extract", "-F", str(ROOT / "babel.cfg"), "--no-default-keywords", *keywords,
             "--sort-output", "--no-location", "--project", "planb", "--copyright-holder",
             "planb contributors", "-c", "TRANSLATORS:", "-o", str(POT), "planb")


def update() -> None:
    for lang in LANGUAGES:
        po = po_path(lang)
        if po.exists():
            _pybabel("update", "-i", str(POT), "-o", str(po), "-l", lang, "--no-fuzzy-matching",
                     "--ignore-obsolete", "--no-wrap")
        else:
            _pybabel("init", "-i", str(POT), "-o", str(po), "-l", lang, "--no-wrap")


def compile_all() -> None:
    for lang in LANGUAGES:
        po = po_path(lang)
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        with po.with_suffix(".mo").open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)


def po_path(lang: str, locale: Path = LOCALE) -> Path:
    return locale / lang / "LC_MESSAGES" / "planb.po"


def used_messages() -> set[tuple[str, str | None]]:
    """Every msgid the code and the templates use (extracted now, as babel.cfg says)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    keywords = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2),
                "pgettext": ((1, "c"), 2)}
    found: set[tuple[str, str | None]] = set()
    for _file, _line, message, _comments, context in extract_from_dir(
            str(ROOT / "planb"), method_map, options_map, keywords=keywords):
        found.add((message[0] if isinstance(message, tuple) else message, context))
    # extract_from_dir walks planb/ itself: the patterns in babel.cfg start with planb/.
    return found


def problems(locale: Path = LOCALE) -> list[str]:
    """What is wrong with the catalogues under ``locale`` ([] when nothing)."""
    found: list[str] = []
    used = used_messages()
    for lang in LANGUAGES:
        po = po_path(lang, locale)
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        ids = {(m.id[0] if isinstance(m.id, tuple) else m.id, m.context) for m in catalog
               if m.id}
        found += [f"{po}: missing msgid {m!r}" + (f" (context {c!r})" if c else "")
                  for m, c in sorted(used - ids, key=str)]
        if lang in TRANSLATED:
            for m in catalog:
                if not m.id:
                    continue
                strings = m.string if isinstance(m.string, tuple) else (m.string,)
                if m.fuzzy or not all(strings):
                    found.append(f"{po}: {'fuzzy' if m.fuzzy else 'untranslated'} "
                                 f"msgid {m.id!r}")
        found += _stale(po, catalog)
    return found


def _stale(po: Path, catalog: Catalog) -> list[str]:
    mo = po.with_suffix(".mo")
    if not mo.exists():
        return [f"{mo}: missing (run tools/i18n.py compile)"]
    expected = io.BytesIO()
    write_mo(expected, catalog, use_fuzzy=False)
    expected.seek(0)
    with mo.open("rb") as handle:
        shipped = read_mo(handle)
    wanted = read_mo(expected)
    pairs = {(_key(m.id), _key(m.string)) for m in wanted if m.id}
    have = {(_key(m.id), _key(m.string)) for m in shipped if m.id}
    if pairs != have:
        return [f"{mo}: out of date with {po.name} (run tools/i18n.py compile)"]
    return []


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "all"
    if command in ("extract", "all"):
        extract()
    if command in ("update", "all"):
        update()
    if command in ("compile", "all"):
        compile_all()
    if command in ("check", "all"):
        issues = problems()
        for issue in issues:
            print(issue, file=sys.stderr)
        return 1 if issues else 0
    if command not in ("extract", "update", "compile", "check", "all"):
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
