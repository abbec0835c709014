"""Check: in standby, logins are refused before the directory (no password oracle).

The canary is a probe account's login spelled in upper case with the probe's real
password: the directory would accept it (uid matching ignores case), but planb's
Synapse module exempts from standby only the exact spellings in
``synapse_standby_exempt_localparts``, so in standby this login must be refused
before any LDAP request. The check sends it with the right and with a wrong
password and requires:

- the same answer, byte for byte (status and body): 403 M_FORBIDDEN;
- two "standby" refusals of the canary in Synapse's log (the module's guard);
- no directory operation naming the canary in slapd's log, when slapd logs
  operations (``olcLogLevel stats``): the module's search would name it, and the
  agent bind only ever follows that search.

In active mode the check is not applicable (skipped).
"""

from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING

from planb.inventory import load_hosts
from planb.verify.endpoints import HttpAnswer, https_request
from planb.verify.model import CheckFailed, CheckSkipped

if TYPE_CHECKING:
    from planb.inventory import InventoryHost
    from planb.verify.registry import CheckContext

#: What planb's Synapse module logs for each login it refuses (net_checks.GUARD_REFUSED).
GUARD_REFUSED = "planb guard refused login"
MODE_FILE = "/etc/planb/mode"


def _hosts(ctx: CheckContext, group: str) -> list[InventoryHost]:
    return [h for h in load_hosts(ctx.site) if group in h.groups]


def _mode(ctx: CheckContext) -> str:
    """The mode the messaging host's Synapse module reads ('standby' when no file)."""
    modes = set()
    for host in _hosts(ctx, "fallback_messaging"):
        out = ctx.remote(host).run(f"cat {MODE_FILE} 2>/dev/null || echo standby")
        modes.add(out.stdout.strip() or "standby")
    if not modes:
        raise CheckSkipped("no host in fallback_messaging")
    return "active" if modes == {"active"} else "standby"


def _login(ctx: CheckContext, host: InventoryHost, login: str, password: str) -> HttpAnswer:
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": login},
            "password": password}
    return https_request(ctx.site, host.address, "POST", "/_matrix/client/v3/login", body)


def _journal_count(ctx: CheckContext, group: str, unit: str, since: float,
                   *needles: str) -> int | None:
    """Lines of ``unit``'s journal since ``since`` holding every needle; None if unread."""
    total, read = 0, False
    grep = " | ".join(f"grep -F -- {shlex.quote(n)}" for n in needles) or "cat"
    for host in _hosts(ctx, group):
        out = ctx.remote(host).run(
            f"journalctl -u {unit} --since @{int(since)} -o cat --no-pager | {grep} | wc -l")
        if out.rc == 0 and out.stdout.strip().isdigit():
            total += int(out.stdout.strip())
            read = True
    return total if read else None


def standby_refuses_before_directory(ctx: CheckContext, host: InventoryHost) -> str:
    """In standby a probe's password, right or wrong, gets one answer and no LDAP request."""
    if _mode(ctx) == "active":
        raise CheckSkipped("not applicable: the fallback is active")
    if not ctx.probe_accounts:
        raise CheckSkipped("no probe account to send a real password with")
    probe, password = ctx.probe_accounts[0]
    canary = probe.upper()
    if canary == probe:
        raise CheckSkipped(f"probe login {probe!r} has no letter to spell differently")
    started = time.time() - 1
    right = _login(ctx, host, canary, password)
    wrong = _login(ctx, host, canary, password + "-not-it")
    if right.status == 200:
        raise CheckFailed(f"{canary} logged in during standby")
    if (right.status, right.text) != (wrong.status, wrong.text):
        raise CheckFailed(f"right and wrong passwords get different answers in standby: "
                          f"{right.status} {right.errcode} vs {wrong.status} {wrong.errcode}")
    if right.status != 403 or right.errcode != "M_FORBIDDEN":
        raise CheckFailed(f"standby login answered {right.status} {right.errcode}, "
                          "not 403 M_FORBIDDEN")
    time.sleep(1)  # journald
    refused = _journal_count(ctx, "fallback_messaging", "synapse", started, GUARD_REFUSED,
                             repr(canary), ": standby")
    if refused is not None and refused < 2:
        raise CheckFailed(f"Synapse's guard logged {refused} standby refusals of {canary} "
                          "(2 expected): the logins were not refused by the standby switch")
    asked = _journal_count(ctx, "fallback_directory", "slapd", started, canary)
    logged = _journal_count(ctx, "fallback_directory", "slapd", started)
    if asked:
        raise CheckFailed(f"slapd logged {asked} operations naming {canary} during standby")
    if logged:
        slapd = f"slapd logged {logged} operations meanwhile, none for it"
    else:
        slapd = "slapd logs no operations (olcLogLevel): Synapse's log is the evidence"
    return (f"{canary} (a probe's password, right and wrong): same {right.status} "
            f"{right.errcode} answer, refused in standby by the guard; {slapd}")
