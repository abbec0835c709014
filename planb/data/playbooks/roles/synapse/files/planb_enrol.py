"""planb's Synapse module: the enrolment page's form handler (issue 12 §2).

``POST /_synapse/client/planb_enrol`` (nginx proxies the public ``POST /enrol/submit``
here; the form itself is the static page ``GET /enrol/``) takes the form fields
``login``, ``code``, ``password`` and ``password2`` (urlencoded, a few KiB at most) and:

1. checks the form and the password policy (the two passwords equal, at least
   ``password_min_length`` characters, three of lower/upper/digit/other, not holding
   the login) before anything else: nothing reaches the directory for a weak password;
2. refuses while the client address's or the login's bucket of failures is empty;
3. as the enrol service account (planb_enrol_directory.py, in a thread): finds the
   agent's entry, refuses a locked code (``planbEnrolmentFailures`` >= max_failures:
   not even checked), checks the code against its scrypt hash (a wrong one counts one
   more failure), refuses an expired code, then spends the code and sets the password
   with the Password Modify extended operation (slapd hashes it).

Every refusal that could tell whether a login exists is the one "login or code
incorrect" page, with the same work done (an unknown login still costs one scrypt).
The pages come in the site's language from the file the synapse role writes (rendered
on the controller by planb/enrol_page.py). One JSON line per attempt goes to the audit
log (time, login, address, outcome): never a code, never a password, here or in
Synapse's log. It works in standby and when active alike: the login guard keeps
refusing logins until activation.
"""

import base64
import binascii
import hashlib
import hmac
import html
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from planb_ldap_guard import FailureBuckets, _safe_localpart

logger = logging.getLogger("planb_ldap_guard")

RESOURCE_PATH = "/_synapse/client/planb_enrol"
FIELDS = ("login", "code", "password", "password2")
MAX_BODY = 4096
MAX_PASSWORD = 128
MAX_LOGIN = 80

# --- the code (the same rules as planb/enrolment_code.py, which this host cannot import)
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 12
#: Parameters a stored hash may ask for (a forged entry must not make the host hash for
#: minutes): log2(N) 10..16, r 1..16, p 1..4.
LN_RANGE, R_RANGE, P_RANGE = (10, 16), (1, 16), (1, 4)
_HASH = re.compile(r"\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d)\$([A-Za-z0-9+/]{1,88})"
                   r"\$([A-Za-z0-9+/]{1,88})")
#: Hashed when there is no stored code, so that an unknown login costs what a wrong
#: code does (the same parameters as the codes the sync writes).
_DUMMY = "$scrypt$ln=14,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43

#: What each outcome shows (the keys of the page file's "messages").
REFUSED = "refused"
MESSAGE_OF = {
    "unknown_login": REFUSED, "no_code": REFUSED, "wrong_code": REFUSED,
    "locked": REFUSED, "leaver": REFUSED,
    "expired": "expired", "rate_limited": "rate_limited", "busy": "rate_limited",
    "bad_form": "bad_form", "mismatch": "mismatch", "too_short": "too_short",
    "too_long": "too_long", "too_few_classes": "too_few_classes",
    "contains_login": "contains_login", "unavailable": "unavailable",
}
#: Outcomes that charge the address's and the login's buckets.
FAILURES = frozenset({"unknown_login", "no_code", "wrong_code", "locked", "leaver",
                      "expired"})
STATUS = {"enrolled": 200, "rate_limited": 429, "busy": 429, "unavailable": 503,
          "bad_form": 400, "mismatch": 400, "too_short": 400, "too_long": 400,
          "too_few_classes": 400, "contains_login": 400}


def normalise_code(text: str) -> str | None:
    """The code as typed, upper-cased without spaces or hyphens; None unless 12 symbols."""
    code = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(code) != CODE_LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def verify_code(code: str, stored: str) -> bool:
    """True when ``code`` (normalised) is the one ``stored`` (``$scrypt$...``) was made of.

    Any hash with parameters outside the bounds, or unreadable, is False (never hashed).
    """
    match = _HASH.fullmatch(stored.strip())
    if match is None:
        return False
    ln, r, p = (int(match.group(i)) for i in (1, 2, 3))
    if not (LN_RANGE[0] <= ln <= LN_RANGE[1] and R_RANGE[0] <= r <= R_RANGE[1]
            and P_RANGE[0] <= p <= P_RANGE[1]):
        return False
    try:
        salt, expected = _b64(match.group(4)), _b64(match.group(5))
    except (binascii.Error, ValueError):
        return False
    try:  # OpenSSL refuses some pairs within the bounds (N >= 2**(16 r)): False
        got = hashlib.scrypt(code.encode(), salt=salt, n=1 << ln, r=r, p=p,
                             dklen=len(expected), maxmem=129 * r * (1 << ln) + (1 << 20))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, expected)


def burn_time() -> None:
    """One scrypt of the usual cost, for the refusals that have no code to check."""
    verify_code("2" * CODE_LENGTH, _DUMMY)


# --- the form and the policy -------------------------------------------------------

@dataclass(frozen=True)
class Form:
    """The posted fields (``repr`` shows the login only)."""

    login: str
    code: str
    password: str
    password2: str

    def __repr__(self) -> str:
        return f"Form(login={self.login!r})"


def parse_form(body: bytes) -> Form | None:
    """The four fields, each exactly once, from an urlencoded body; None otherwise."""
    if len(body) > MAX_BODY:
        return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True,
                          strict_parsing=bool(body), max_num_fields=len(FIELDS) + 2,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    if set(fields) != set(FIELDS) or any(len(v) != 1 for v in fields.values()):
        return None
    return Form(**{name: fields[name][0] for name in FIELDS})


def policy_refusal(login: str, password: str, password2: str, min_length: int) -> str | None:
    """Why the new password is refused (an outcome of :data:`MESSAGE_OF`), or None."""
    if password != password2:
        return "mismatch"
    if len(password) < min_length:
        return "too_short"
    if len(password) > MAX_PASSWORD:
        return "too_long"
    classes = (any(c.islower() for c in password), any(c.isupper() for c in password),
               any(c.isdigit() for c in password),
               any(not c.isalnum() for c in password))
    if sum(classes) < 3:
        return "too_few_classes"
    if len(login) >= 3 and login.casefold() in password.casefold():
        return "contains_login"
    return None


def check_form(form: Form | None, min_length: int) -> str | None:
    """The outcome that ends the attempt before any directory request, or None."""
    if form is None or not form.login or len(form.login) > MAX_LOGIN \
            or not _safe_localpart(form.login) or normalise_code(form.code) is None \
            or not form.password:
        return "bad_form"
    return policy_refusal(form.login, form.password, form.password2, min_length)


# --- pages and audit ---------------------------------------------------------------

MESSAGE_MARK = "<!--planb-enrol-message-->"
LOGIN_MARK = "<!--planb-enrol-login-->"
#: Used when the page file is missing (never expected on a deployed host).
FALLBACK_PAGES = {
    "form": "<!DOCTYPE html><html><body>" + MESSAGE_MARK + "</body></html>",
    "success": "<!DOCTYPE html><html><body><p>OK</p><a href=\"/app/\">/app/</a></body></html>",
    "messages": {},
}


class Pages:
    """The site's pages and messages (the JSON file the synapse role writes)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._seen: tuple[int, int] | None = None
        self._pages: dict[str, Any] = FALLBACK_PAGES
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        try:
            st = os.stat(self._path)
        except OSError:
            return FALLBACK_PAGES
        with self._lock:
            if (st.st_mtime_ns, st.st_size) != self._seen:
                try:
                    with open(self._path, encoding="utf-8") as f:
                        self._pages = json.load(f)
                except (OSError, ValueError):
                    self._pages = FALLBACK_PAGES
                self._seen = (st.st_mtime_ns, st.st_size)
            return self._pages

    def render(self, outcome: str, login: str) -> str:
        """The answer's page: the success page, or the form with the outcome's message."""
        pages = self._load()
        if outcome == "enrolled":
            return str(pages.get("success") or FALLBACK_PAGES["success"])
        key = MESSAGE_OF.get(outcome, "unavailable")
        text = str((pages.get("messages") or {}).get(key) or key)
        block = f'<p id="enrol-message" class="error" role="alert">{html.escape(text)}</p>'
        page = str(pages.get("form") or FALLBACK_PAGES["form"])
        shown = login if _safe_localpart(login) and len(login) <= MAX_LOGIN else ""
        return page.replace(MESSAGE_MARK, block).replace(LOGIN_MARK, html.escape(shown))


class AuditLog:
    """One JSON line per attempt: time, login, address, outcome (nothing secret)."""

    def __init__(self, path: str) -> None:
        self._path, self._lock = path, threading.Lock()

    def line(self, login: str, address: str, outcome: str,
             now: datetime | None = None) -> str:
        shown = login if _safe_localpart(login) and len(login) <= MAX_LOGIN else ""
        return json.dumps({"time": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
                           "login": shown, "address": address, "outcome": outcome},
                          ensure_ascii=True)

    def write(self, login: str, address: str, outcome: str) -> None:
        text = self.line(login, address, outcome) + "\n"
        try:
            with self._lock:
                fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    os.write(fd, text.encode())
                finally:
                    os.close(fd)
        except OSError as exc:
            logger.error("planb enrol: cannot write the audit log %s: %s", self._path,
                         type(exc).__name__)


# --- the resource ------------------------------------------------------------------

try:  # inside Synapse
    from synapse.module_api import DirectServeHtmlResource
except ImportError:  # planb's unit tests, outside Synapse
    DirectServeHtmlResource = object  # type: ignore[assignment,misc]


@dataclass(frozen=True)
class EnrolSettings:
    """The module config's ``planb_enrol`` section, checked."""

    directory: Any  # planb_enrol_directory.EnrolConfig
    password_min_length: int
    pages_file: str
    audit_log: str
    per_address: tuple[float, float]
    per_login: tuple[float, float]


def parse_enrol_config(section: dict[str, Any] | None, directory: Any) -> EnrolSettings | None:
    """``planb_enrol`` of the module config (None or ``enabled: false``: no page)."""
    if not section or not section.get("enabled", True):
        return None
    from planb_enrol_directory import EnrolConfig

    with open(section["bind_password_file"], encoding="utf-8") as f:
        password = f.read().strip()
    max_failures = int(section.get("max_failures", 5))
    min_length = int(section.get("password_min_length", 12))

    def bucket(key: str, rate: float, burst: float) -> tuple[float, float]:
        value = section.get(key) or {}
        return float(value.get("per_second", rate)), float(value.get("burst_count", burst))

    per_address = bucket("failed_per_address", 0.05, 100)
    per_login = bucket("failed_per_login", 1 / 60, 10)
    if not password or max_failures < 1 or min_length < 8 \
            or min(per_address[1], per_login[1]) < 1:
        raise ValueError("planb enrol: bind password needed, max_failures >= 1, "
                         "password_min_length >= 8, burst_count >= 1")
    return EnrolSettings(
        directory=EnrolConfig(uris=directory.uris, base=directory.base,
                              bind_dn=str(section["bind_dn"]), bind_password=password,
                              ca_file=directory.ca_file,
                              connect_timeout=directory.connect_timeout,
                              max_failures=max_failures),
        password_min_length=min_length,
        pages_file=str(section.get("pages_file") or "/etc/planb/enrol-pages.json"),
        audit_log=str(section.get("audit_log") or "/var/log/planb/enrolment.log"),
        per_address=per_address, per_login=per_login)


def client_address(request: Any) -> str:
    """The agent's address: what nginx put in X-Forwarded-For (Synapse reads it)."""
    try:
        return str(request.getClientAddress().host or "unknown")
    except AttributeError:
        return "unknown"


class Enrolment:
    """The decisions of one attempt, around the directory (which runs in a thread)."""

    def __init__(self, settings: EnrolSettings, directory: Any,
                 defer_to_thread: Any) -> None:
        self._settings, self._directory, self._defer = settings, directory, defer_to_thread
        self.by_address = FailureBuckets(*settings.per_address)
        self.by_login = FailureBuckets(*settings.per_login)
        self.audit = AuditLog(settings.audit_log)
        self._in_flight: set = set()
        self._lock = threading.Lock()

    def _claim(self, key: str) -> bool:
        with self._lock:
            if key in self._in_flight:
                return False
            self._in_flight.add(key)
            return True

    def _release(self, key: str) -> None:
        with self._lock:
            self._in_flight.discard(key)

    async def handle(self, body: bytes, address: str) -> tuple[str, str]:
        """``(outcome, login)`` of the posted ``body`` from ``address``; audited."""
        form = parse_form(body)
        login = form.login if form is not None else ""
        refusal = check_form(form, self._settings.password_min_length)
        outcome = refusal or "unavailable"
        if refusal is None and form is not None:
            key = login.lower()
            if not self.by_address.allows(address) or not self.by_login.allows(key):
                outcome = "rate_limited"
            elif not self._claim(key):
                outcome = "busy"
            else:
                try:
                    outcome = await self._defer(
                        self._directory.attempt, login, normalise_code(form.code) or "",
                        form.password, verify_code, burn_time)
                except Exception as exc:  # noqa: BLE001 - fail closed, never the form
                    logger.error("planb enrol: attempt failed: %s", type(exc).__name__)
                    outcome = "unavailable"
                finally:
                    self._release(key)
            if outcome in FAILURES:
                self.by_address.failed(address)
                self.by_login.failed(key)
        self.audit.write(login, address, outcome)
        logger.info("planb enrol: %r from %s: %s",
                    login if _safe_localpart(login) else "", address, outcome)
        return outcome, login


class EnrolResource(DirectServeHtmlResource):
    """``POST /_synapse/client/planb_enrol``: the form's answer page."""

    isLeaf = True

    def __init__(self, enrolment: Enrolment, pages: Pages) -> None:
        super().__init__()
        self._enrolment, self._pages = enrolment, pages

    async def _async_render_POST(self, request: Any) -> tuple[int, bytes]:  # noqa: N802
        body = request.content.read(MAX_BODY + 1)
        outcome, login = await self._enrolment.handle(body, client_address(request))
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"Referrer-Policy", b"no-referrer")
        return STATUS.get(outcome, 403), self._pages.render(outcome, login).encode()


def register(api: Any, settings: EnrolSettings) -> None:
    """Register the form handler on Synapse's web server."""
    from planb_enrol_directory import EnrolDirectory

    enrolment = Enrolment(settings, EnrolDirectory(settings.directory), api.defer_to_thread)
    api.register_web_resource(RESOURCE_PATH,
                              EnrolResource(enrolment, Pages(settings.pages_file)))
