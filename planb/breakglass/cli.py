"""``planb-breakglass``: the fallback's switch on the messaging host, for when the controller
is gone.

Reached over SSH with the break-glass key (root's ``authorized_keys`` runs this command
and nothing else: ``restrict,command="/opt/planb/bin/planb-breakglass"``), so the
words typed after the host arrive in ``SSH_ORIGINAL_COMMAND``::

    ssh -i breakglass root@HOST status
    ssh -i breakglass root@HOST activate --operator NAME --reason TEXT
    ssh -i breakglass root@HOST deactivate --operator NAME --reason TEXT

Through the key only ``status``, ``activate``, ``deactivate``, ``rotate-key`` (a new
host signing key, the old one retired on record) and ``help`` are accepted. ``lock``
(held by the controller's ``planb failover`` over its own SSH access) and ``init-key``
(deploy) are for planb itself.

Exit codes: 0 done, 1 a step failed (the fallback stays as it was), 2 refused or bad
arguments (already active or in standby, lock held, missing --operator/--reason),
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from collections.abc import Sequence

from planb.breakglass import host, lock
from planb.breakglass.paths import COMMAND, HostPaths
from planb.errors import EXIT_INTERRUPTED, EXIT_USAGE, PlanbError, UsageError

#: What the break-glass key may run (the forced command's words).
THROUGH_THE_KEY = ("status", "activate", "deactivate", "rotate-key", "help")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(f"{message} (see 'planb-breakglass help')") from None


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="planb-breakglass", description=(
        "Switch this fallback messaging host between standby and active without planb's "
        "controller: the same change as 'planb failover', recorded in this host's audit "
        "log and signed journals."), epilog=(
        "Over SSH with the break-glass key: ssh -i KEY root@HOST activate --operator NAME "
        "--reason TEXT. Exit codes: 0 done, 1 a step failed, 2 refused or bad arguments, "
        "130 interrupted."))
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.add_parser("help", help="show this help")
    st = sub.add_parser("status", help="the mode, the last break-glass switch, the lock, "
                        "the latest audit lines")
    st.add_argument("--json", action="store_true", help="print JSON")
    act = sub.add_parser("activate", help="standby -> active: public message, switch, backup "
                         "timer, then the site's announcement to every agent")
    deact = sub.add_parser("deactivate", help="active -> standby: switch back, remove the "
                           "public message, backup timer back to its standby interval")
    for each in (act, deact):
        each.add_argument("--operator", required=True, metavar="NAME",
                          help="who is switching (audit log and journal)")
        each.add_argument("--reason", required=True, metavar="TEXT",
                          help="why (audit log and journal)")
        each.add_argument("--json", action="store_true", help="print the result as JSON")
    act.add_argument("--public-message", default="", metavar="TEXT",
                     help="what the public welcome page tells agents while active (public)")
    act.add_argument("--drill", action="store_true",
                     help="an exercise, not an incident (the announcement says so)")
    act.add_argument("--no-announce", action="store_true",
                     help="do not post the announcement (it is printed to read out)")
    rot = sub.add_parser("rotate-key", help="a new signing key for this host's journals; "
                         "the old one is retired by a journal signed with the new one")
    rot.add_argument("--operator", required=True, metavar="NAME", help="who (audit log)")
    rot.add_argument("--reason", required=True, metavar="TEXT", help="why (audit log)")
    lk = sub.add_parser("lock", help="(planb's controller) hold the failover lock until "
                        "stdin closes")
    lk.add_argument("--operator", required=True, metavar="NAME")
    lk.add_argument("--what", required=True, metavar="TEXT")
    sub.add_parser("init-key", help="(deploy) make this host's signing key if missing and "
                   "print its public key")
    return top


def arguments(argv: Sequence[str] | None, environ: dict[str, str] | os._Environ[str]
              ) -> list[str]:
    """The words to parse: ``SSH_ORIGINAL_COMMAND`` under the forced command, else argv.

    Through the key only :data:`THROUGH_THE_KEY` are accepted.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    forced = environ.get("SSH_ORIGINAL_COMMAND")
    if forced is None:
        return words
    try:
        words = shlex.split(forced)
    except ValueError as exc:
        raise UsageError(f"cannot read the command: {exc} (quote with ' or \")") from None
    if words and os.path.basename(words[0]) in ("planb-breakglass", os.path.basename(COMMAND)):
        words = words[1:]
    if words and words[0] not in THROUGH_THE_KEY:
        raise UsageError(f"'{words[0]}' is not a break-glass command: use one of "
                         f"{', '.join(THROUGH_THE_KEY)}")
    return words


def _print_status(done: host.HostStatus) -> None:
    print(f"host {done.host}: {done.mode}")
    state = done.recorded
    if state is not None:
        print(f"last break-glass switch: {state.mode} since {state.since} by {state.operator}"
              f" ({state.reason})" + (f", incident {state.incident_id}"
                                     if state.incident_id else ""))
    print("lock: " + (done.lock.describe() if done.lock else "free"))
    print(f"journals: {done.journals}" + (f", head sha256 {done.head_sha256}"
                                          if done.head_sha256 else ""))
    print(f"host signing key: {done.key_fingerprint or 'none (run planb deploy)'}")
    for entry in done.recent:
        print(f"  {entry.at} {entry.who} {entry.event} {entry.step or '-'} {entry.result}"
              + (f": {entry.detail}" if entry.detail else ""))


def _print_outcome(done: host.Outcome) -> None:
    print(done.message + (f" (incident {done.incident_id})" if done.incident_id else ""))
    for step in done.steps:
        print(f"  {step.name}: {step.status} ({step.duration_seconds:.1f} s) "
              f"{step.error or (step.output.splitlines() or [''])[-1]}")
    for warning in done.warnings:
        print(f"warning: {warning}")
    if done.journal:
        print(f"journal: {done.journal} (signed with this host's key)")


def _hold(paths: HostPaths, operator: str, what: str) -> None:
    with lock.held(paths.lock, operator, what) as me:
        print(f"locked {json.dumps(vars(me), ensure_ascii=False)}", flush=True)
        sys.stdin.read()  # until the controller closes the connection (or dies)


def run(words: list[str], paths: HostPaths) -> int:
    """Run one command; the exit code (errors raise :class:`PlanbError`)."""
    args = parser().parse_args(words)
    if args.command in (None, "help"):
        parser().print_help()
        return 0 if args.command == "help" else EXIT_USAGE
    if args.command == "status":
        done = host.status(paths)
        print(json.dumps(done.as_json(), ensure_ascii=False, indent=2)) if args.json \
            else _print_status(done)
        return 0
    if args.command == "init-key":
        print(host.init_host_key(paths), end="")
        return 0
    if args.command == "rotate-key":
        rotated = host.rotate_host_key(paths, operator=args.operator, reason=args.reason)
        print(f"retired {rotated.retired}; this host now signs with {rotated.current} "
              f"(rotation recorded in {rotated.journal}). Its public key, for auditors (the "
              "next 'planb deploy' also copies it to the controller):")
        print(rotated.public_pem, end="")
        return 0
    if args.command == "lock":
        _hold(paths, args.operator, args.what)
        return 0
    if args.command == "activate":
        from planb.breakglass import announce

        outcome = host.activate(
            paths, operator=args.operator, reason=args.reason,
            public_message=args.public_message, drill=args.drill,
            announcer=None if args.no_announce else lambda i: announce.post(paths, i))
    else:
        outcome = host.deactivate(paths, operator=args.operator, reason=args.reason)
    if args.json:
        print(json.dumps(outcome.as_json(), ensure_ascii=False, indent=2))
        return 0
    _print_outcome(outcome)
    if args.command == "activate" and not any(
            s.name == "announce" and s.status == "ok" for s in outcome.steps):
        _print_unposted(paths, outcome, args.reason, args.drill)
    return 0


def _print_unposted(paths: HostPaths, outcome: host.Outcome, reason: str, drill: bool) -> None:
    """The announcement that was not posted, for the operator to read out or print."""
    from planb.breakglass import announce

    try:
        text = announce.render(paths, announce.load_site(paths), host.Incident(
            outcome.incident_id or "", reason, outcome.steps[0].started_at or "", drill))
    except PlanbError as exc:
        print(f"the announcement was not posted and cannot be rendered here: {exc.message}")
        return
    print("announcement text (not posted: read it out or print it):")
    print(text)


def main(argv: Sequence[str] | None = None, paths: HostPaths | None = None) -> int:
    """The console script: parse, run, turn a :class:`PlanbError` into its exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return run(arguments(argv, os.environ), paths or HostPaths())
    except PlanbError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
