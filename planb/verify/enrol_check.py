"""Check: the enrolment page answers and refuses a wrong code.

``GET /enrol/`` on each proxy must answer the form; ``POST /enrol/submit`` with a
well-formed code nobody was given, for a login that holds no code (planb's first probe
account, which is never an agent: the check spends no agent's tries), and a password the
policy accepts, must be refused with the form and its message, never the success page.
The page gives one answer for an unknown login and a wrong code, so this is the answer a
guesser gets. A refusal counts against the controller's address like any other, and the
module may then answer "too many attempts" (429): that is a refusal too.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from planb.enrolment_code import ALPHABET
from planb.verify.endpoints import https_request
from planb.verify.model import CheckFailed, CheckSkipped

if TYPE_CHECKING:
    from planb.inventory import InventoryHost
    from planb.verify.registry import CheckContext

PROBE_LOGIN = "planb-probe-1"
FORM_PATH, SUBMIT_PATH = "/enrol/", "/enrol/submit"
#: The element the module puts its refusal message in (planb_enrol.py, Pages.render).
MESSAGE_ID = 'id="enrol-message"'
REFUSALS = (403, 429)


def unknown_code() -> str:
    """A well-formed code (12 symbols of the alphabet) drawn at random."""
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return f"{symbols[:4]}-{symbols[4:8]}-{symbols[8:]}"


def enrolment_refuses_a_wrong_code(ctx: CheckContext, host: InventoryHost) -> str:
    """The form answers, and a wrong code gets the refusal page."""
    site = ctx.site
    if not site.enrolment.enabled:
        raise CheckSkipped("enrolment is off (planb.yml enrolment.enabled: false)")
    try:
        form = https_request(site, host.address, "GET", FORM_PATH)
        password = "Verif-" + secrets.token_urlsafe(12) + "9a"
        answer = https_request(site, host.address, "POST", SUBMIT_PATH, form={
            "login": PROBE_LOGIN, "code": unknown_code(), "password": password,
            "password2": password})
    except OSError as exc:
        raise CheckFailed(f"{FORM_PATH} on {host.address}:443: {exc}") from None
    if form.status != 200 or 'name="code"' not in form.whole:
        raise CheckFailed(f"GET {FORM_PATH} answered {form.status}, not the enrolment form")
    if answer.status not in REFUSALS or MESSAGE_ID not in answer.whole:
        raise CheckFailed(f"a wrong code got {answer.status} "
                          f"{'with' if MESSAGE_ID in answer.whole else 'without'} the "
                          "refusal message: expected 403 (or 429) and the form again")
    return f"a wrong code is refused ({answer.status}, {answer.seconds:.2f} s)"
