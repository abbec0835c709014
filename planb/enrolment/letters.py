"""Printable enrolment letters: one A4 page per agent, grouped by department.

One HTML document, in the site's announcement language (the gettext catalogue, which a
site completes or overrides like the welcome page's): for each department (sorted,
agents without one last) a cover page listing whose letters follow (no codes), then one
letter per agent with the enrolment page's address and a QR code to it, the login, the
code, its expiry and what to do. Printed from a browser or by :mod:`.pdf`.

The QR code opens the enrolment page only: a code in a URL would end up in browser
histories and the proxy's access log. Every value from the directory (names,
departments, logins) and from the site is HTML-escaped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from planb.config import SiteConfig
from planb.enrolment.codes import Addresses, Letter
from planb.i18n import N_, Translator
from planb.welcome import qr_svg

CSS = """\
:root{color-scheme:light}
body{font-family:system-ui,sans-serif;margin:0;line-height:1.45;color:#161616;background:#fff}
.sheet{max-width:42rem;margin:0 auto;padding:1.5rem 1rem;border-bottom:2px dashed #888}
h1{font-size:1.5rem;margin:0 0 .75rem}
h2{font-size:1.15rem;margin:1rem 0 .4rem}
.org{margin:0;color:#3a3a3a}
dl.who{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.75rem 0}
dl.who dt{font-weight:bold}
dl.who dd{margin:0;word-break:break-word}
.code{border:2px solid #161616;padding:.6rem 1rem;margin:.75rem 0;display:flex;
 gap:1.5rem;align-items:center;flex-wrap:wrap}
.code p{margin:.2rem 0}
.code .value{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:1.6rem;
 font-weight:bold;letter-spacing:.12em;white-space:nowrap}
.code .login{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:1.2rem;
 word-break:break-all}
ol li{margin:.3rem 0}
a{color:#000091}
code{font-size:1rem;word-break:break-all}
figure{margin:0;text-align:center}
figure svg{width:9rem;height:auto}
figcaption{font-size:.85rem}
.private{font-weight:bold}
.small{font-size:.9rem}
ul.roster{columns:2;padding-left:1.2rem}
@page{size:A4;margin:1.6cm}
@media print{
 body{font-size:11.5pt}
 .sheet{max-width:none;padding:0;border:0;break-after:page;page-break-after:always}
 .sheet:last-child{break-after:auto;page-break-after:auto}
 .letter{break-inside:avoid}
 figure svg{width:4.2cm}
 a{color:#000;text-decoration:none}
}
"""

NO_DEPARTMENT = N_("No department")


@dataclass(frozen=True)
class LetterBook:
    """The rendered letters: the HTML document and what it holds."""

    html: str
    language: str
    letters: int
    departments: int


def _department_key(name: str) -> tuple[int, str, str]:
    return (0 if name else 1, name.casefold(), name)


def by_department(letters: Sequence[Letter]) -> Iterator[tuple[str, list[Letter]]]:
    """``(department, its letters by login)``, departments sorted, none last."""
    ordered = sorted(letters, key=lambda x: (_department_key(x.department),
                                             x.login.casefold(), x.login))
    for department, group in itertools.groupby(ordered, key=lambda x: x.department):
        yield department, list(group)


class _Texts:
    """The letter's sentences in one language, translated once for thousands of letters."""

    def __init__(self, site: SiteConfig, tr: Translator, addresses: Addresses) -> None:
        self.tr = tr
        e = escape
        enrol = e(addresses.enrol)
        welcome = e(addresses.welcome)
        self.org = e(site.organisation)
        self.title = e(tr._(N_("Your access to the backup messaging")))
        self.colon = e(tr.colon)
        self.name, self.login, self.department, self.code, self.until, self.number = (
            e(tr._(t)) for t in (N_("Name"), N_("Login"), N_("Department"),
                                 N_("Enrolment code"), N_("Valid until"), N_("Letter no.")))
        self.no_department = e(tr._(NO_DEPARTMENT))
        self.intro = e(tr._(N_(
            "{organisation} has a backup messaging system, served by its own servers, for "
            "when the usual tools fail. This letter lets you choose your password for it "
            "once, from any phone or computer, with nothing to install.")).format(
                organisation=site.organisation))
        self.todo = e(tr._(N_("What to do")))
        link = f'<a href="{enrol}">{enrol}</a>'
        self.steps = [
            e(tr._(N_("Open {address} in a browser, or scan the QR code."))).format(
                address=link),
            e(tr._(N_("Type your login and the enrolment code shown above."))),
            e(tr._(N_(
                "Choose your new password and type it twice: at least {length} characters, "
                "with at least three kinds among lower-case letters, upper-case letters, "
                "digits and other characters, and not containing your login.")).format(
                    length=site.enrolment.password_min_length)),
            e(tr._(N_("You are then taken to the messaging: log in with your login and "
                      "this new password."))),
        ]
        self.private = e(tr._(N_(
            "Keep this letter to yourself: whoever has the code can choose your password. "
            "The code works once; destroy the letter once you have enrolled.")))
        self.incident = e(tr._(N_(
            "On the day of an incident, {address} says whether the backup messaging is "
            "active and what to do."))).format(address=f'<a href="{welcome}">{welcome}</a>')
        self.lost = e(tr._(N_(
            "Lost this letter, code refused, or password forgotten later? Ask for a new "
            "letter: a new code replaces this one.")))
        self.qr = qr_svg(addresses.enrol, tr._(N_(
            "QR code to open the enrolment page: {url}")).format(url=addresses.enrol))
        self.enrol = enrol
        self._days: dict[date, str] = {}

    def expiry(self, letter: Letter) -> str:
        """The expiry's local day as the language writes it (Babel, once per day)."""
        if letter.expires is None:
            return ""
        day = letter.expires.astimezone(self.tr.zone)
        key = day.date()
        if key not in self._days:
            self._days[key] = escape(self.tr.date(day))
        return self._days[key]


def _cover(department: str, letters: list[Letter], t: _Texts) -> str:
    shown = escape(department) if department else t.no_department
    count = escape(t.tr.ngettext(
        "{count} letter for this department, in login order. Hand each one to its agent "
        "in person, or in a sealed envelope.",
        "{count} letters for this department, in login order. Hand each one to its agent "
        "in person, or in a sealed envelope.", len(letters)).format(
            count=t.tr.integer(len(letters))))
    roster = "".join(f"<li>{escape(x.login)} ({escape(x.name)})</li>" for x in letters)
    return (f'<section class="sheet cover">\n<p class="org">{t.org}</p>\n'
            f"<h1>{t.department}{t.colon}{shown}</h1>\n<p>{count}</p>\n"
            f'<ul class="roster">{roster}</ul>\n</section>\n')


def _letter(letter: Letter, t: _Texts) -> str:
    department = escape(letter.department) if letter.department else t.no_department
    expiry = t.expiry(letter)
    until = f"<p>{t.until}{t.colon}{expiry}</p>" if expiry else ""
    steps = "".join(f"<li>{s}</li>" for s in t.steps)
    return (
        f'<section class="sheet letter">\n<p class="org">{t.org}</p>\n<h1>{t.title}</h1>\n'
        f'<dl class="who"><dt>{t.name}</dt><dd>{escape(letter.name)}</dd>'
        f"<dt>{t.department}</dt><dd>{department}</dd>"
        f"<dt>{t.number}</dt><dd>{letter.serial:d}</dd></dl>\n"
        f"<p>{t.intro}</p>\n"
        f'<div class="code"><div><p>{t.login}{t.colon}'
        f'<span class="login">{escape(letter.login)}</span></p>'
        f'<p>{t.code}{t.colon}<span class="value">{escape(letter.code)}</span></p>{until}'
        f"</div><figure>{t.qr}<figcaption><code>{t.enrol}</code></figcaption></figure></div>\n"
        f"<h2>{t.todo}</h2>\n<ol>{steps}</ol>\n"
        f'<p class="private">{t.private}</p>\n'
        f'<p class="small">{t.incident}</p>\n<p class="small">{t.lost}</p>\n</section>\n'
    )


def render_letters(site: SiteConfig, letters: Sequence[Letter], *,
                   language: str | None = None) -> LetterBook:
    """The letters of ``letters`` as one printable HTML document, in ``language`` (default:
    the site's announcement language)."""
    tr = site.translator(language or site.announcement_language)
    t = _Texts(site, tr, Addresses.of(site))
    heading = escape(tr._(N_("Enrolment letters"))) + f" · {t.org}"
    parts = [
        f'<!DOCTYPE html>\n<html lang="{tr.language}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{heading}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n"
    ]
    departments = 0
    for department, group in by_department(letters):
        departments += 1
        parts.append(_cover(department, group, t))
        parts.extend(_letter(x, t) for x in group)
    parts.append("</main>\n</body>\n</html>\n")
    return LetterBook(html="".join(parts), language=tr.language, letters=len(letters),
                      departments=departments)
