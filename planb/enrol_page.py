"""The enrolment page at ``https://<public_hostname>/enrol/`` (rendered at deploy time).

An agent types their login, the enrolment code from their letter and a new password
twice; the form posts to ``/enrol/submit``, which nginx passes to planb's Synapse module
(``planb_enrol.py`` on the host), where the code is checked and the password set. planb
renders, on the controller and in the site's announcement language (the package's
catalogue, which a site completes or overrides with its own ``locale/``):

- the form as nginx serves it (no JavaScript, labelled fields, the password rules
  stated before typing);
- for the host module, the same form with two marks (where the refusal's message and
  the typed login go), the success page, and every message the module can show, as
  one JSON document the synapse role writes to ``/etc/planb/enrol-pages.json``.

Every site value is HTML-escaped here; the module escapes the message and the login it
puts into the marks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape

from planb.config import SiteConfig
from planb.i18n import N_, Translator

ENROL_PATH = "/enrol/"
SUBMIT_PATH = "/enrol/submit"
CSS_PATH = "/planb-enrol.css"
#: Where the module puts the refusal's message and the typed login (planb_enrol.py).
MESSAGE_MARK = "<!--planb-enrol-message-->"
LOGIN_MARK = "<!--planb-enrol-login-->"
#: The longest password the module accepts (planb_enrol.MAX_PASSWORD).
MAX_PASSWORD = 128
#: What the success page says first (the browser test looks for it).
SUCCESS = N_("Your password is set.")

#: The module's messages, by key (planb_enrol.MESSAGE_OF's values).
MESSAGES = {
    "refused": N_("Login or enrolment code incorrect. After {max_failures} wrong codes "
                  "the code is locked: then ask for a new one."),
    "expired": N_("This enrolment code has expired: ask for a new one."),
    "rate_limited": N_("Too many attempts. Wait a few minutes, then try again."),
    "bad_form": N_("Fill in every field: your login, the 12-character code from your "
                   "letter, and your new password twice."),
    "mismatch": N_("The two passwords are not the same."),
    "too_short": N_("The password is too short: it needs at least {min_length} "
                    "characters."),
    "too_long": N_("The password is too long: at most {max_length} characters."),
    "too_few_classes": N_("The password needs at least three of: lower-case letters, "
                          "upper-case letters, digits, other characters."),
    "contains_login": N_("The password must not contain your login."),
    "unavailable": N_("Enrolment is not possible right now. Try again in a few minutes."),
}

CSS = """\
:root{color-scheme:light}
body{font-family:system-ui,sans-serif;margin:0;line-height:1.5;color:#161616;background:#fff}
main{max-width:36rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
label{display:block;font-weight:bold;margin-top:1rem}
input{display:block;width:100%;box-sizing:border-box;font-size:1.1rem;padding:.5rem;
 border:2px solid #3a3a3a;border-radius:.25rem}
input:focus{outline:3px solid #0063cb;outline-offset:2px}
.hint{margin:.25rem 0 0;color:#3a3a3a}
button{margin-top:1.5rem;font-size:1.1rem;padding:.6rem 1.2rem;border:0;border-radius:.25rem;
 background:#000091;color:#fff;cursor:pointer}
button:focus{outline:3px solid #0063cb;outline-offset:2px}
.error{border-left:.5rem solid #ce0500;background:#ffe9e9;padding:.5rem 1rem;font-weight:bold}
.success{border-left:.5rem solid #18753c;background:#e6f4ea;padding:.5rem 1rem}
.success p:first-child{font-weight:bold;font-size:1.15rem}
a{color:#000091}
"""


@dataclass(frozen=True)
class EnrolPage:
    """The page nginx serves, its stylesheet, and the module's pages (JSON)."""

    html: str
    css: str
    pages_json: str
    language: str


def _head(tr: Translator, title: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="{escape(tr.language)}">\n<head>\n'
            '<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="robots" content="noindex">\n'
            f"<title>{title}</title>\n"
            f'<link rel="stylesheet" href="{CSS_PATH}">\n</head>\n<body>\n<main>\n')


def _field(name: str, label: str, kind: str, hint: str | None, extra: str) -> str:
    described = f' aria-describedby="{name}-hint"' if hint else ""
    text = (f'<label for="{name}">{escape(label)}</label>\n'
            f'<input id="{name}" name="{name}" type="{kind}" required{described}{extra}>\n')
    if hint:
        text += f'<p class="hint" id="{name}-hint">{escape(hint)}</p>\n'
    return text


def _form(site: SiteConfig, tr: Translator, min_length: int) -> str:
    """The form page with the two marks (empty marks: the page nginx serves)."""
    org = escape(site.organisation)
    heading = escape(tr._(N_("Set your password for the backup messaging")))
    intro = tr._(N_("Type your login, the enrolment code from your letter and the "
                    "password you choose: it is the one you will use to log in to the "
                    "backup messaging."))
    rules = tr._(N_("At least {min_length} characters, with at least three of: lower-case "
                    "letters, upper-case letters, digits, other characters. It must not "
                    "contain your login.")).format(min_length=tr.integer(min_length))
    code_hint = tr._(N_("12 characters, as on your letter (for example ABCD-EFGH-JKLM); "
                        "hyphens and spaces do not matter."))
    lost = tr._(N_("Code lost, locked or expired? Ask your manager or the crisis cell for "
                   "a new one."))
    back = tr._(N_("Back to the welcome page"))
    submit = tr._(N_("Set my password"))
    fields = (
        _field("login", tr._(N_("Login")), "text", None,
               f' value="{LOGIN_MARK}" autocomplete="username" autocapitalize="none"'
               ' spellcheck="false" maxlength="80"')
        + _field("code", tr._(N_("Enrolment code")), "text", code_hint,
                 ' autocomplete="one-time-code" autocapitalize="characters"'
                 ' spellcheck="false" maxlength="20"')
        + _field("password", tr._(N_("New password")), "password", rules,
                 f' autocomplete="new-password" minlength="{min_length}"'
                 f' maxlength="{MAX_PASSWORD}"')
        + _field("password2", tr._(N_("New password again")), "password", None,
                 f' autocomplete="new-password" minlength="{min_length}"'
                 f' maxlength="{MAX_PASSWORD}"')
    )
    return (_head(tr, f"{heading} · {org}")
            + f"<h1>{heading}</h1>\n{MESSAGE_MARK}\n<p>{escape(intro)}</p>\n"
            + f'<form method="post" action="{SUBMIT_PATH}">\n{fields}'
            + f'<button type="submit">{escape(submit)}</button>\n'
            + f"</form>\n<p>{escape(lost)}</p>\n"
            + f'<p><a href="/">{escape(back)}</a></p>\n</main>\n</body>\n</html>\n')


def _success(site: SiteConfig, tr: Translator, client_path: str) -> str:
    title = escape(tr._(SUCCESS))
    then = tr._(N_("Log in to the backup messaging with your login and this password. "
                   "While it is on standby, logins are refused: they open when it is "
                   "activated."))
    go = tr._(N_("Open the messaging in this browser"))
    back = tr._(N_("Back to the welcome page"))
    return (_head(tr, f"{title} · {escape(site.organisation)}")
            + f'<h1>{title}</h1>\n<section class="success" role="status">'
            + f"<p>{title}</p><p>{escape(then)}</p></section>\n"
            + f'<p><a href="{escape(client_path)}">{escape(go)}</a></p>\n'
            + f'<p><a href="/">{escape(back)}</a></p>\n</main>\n</body>\n</html>\n')


def render_enrol(site: SiteConfig, *, min_length: int = 12, max_failures: int = 5,
                 client_path: str = "/app/") -> EnrolPage:
    """The enrolment page of ``site`` and the module's pages, in its announcement language.

    ``min_length`` and ``max_failures`` are the site's ``enrolment`` settings (the
    module enforces them; the page states them).
    """
    tr = site.translator(site.announcement_language)
    form = _form(site, tr, min_length)
    values = {"min_length": tr.integer(min_length), "max_length": tr.integer(MAX_PASSWORD),
              "max_failures": tr.integer(max_failures)}
    messages = {key: tr._(text).format(**values) for key, text in MESSAGES.items()}
    pages = {"language": tr.language, "form": form,
             "success": _success(site, tr, client_path), "messages": messages}
    return EnrolPage(html=form.replace(MESSAGE_MARK, "").replace(LOGIN_MARK, ""),
                     css=CSS, pages_json=json.dumps(pages, ensure_ascii=False, indent=1),
                     language=tr.language)
