"""Whether each fallback host's backups are on time (issue 13): the last run of the
backup service, the newest archive's age against the interval of the fallback's mode,
and the backup host reachable. ``planb verify`` (``backup.fresh``) and ``planb failover
status`` read the same :class:`Freshness`.

One shell command on the fallback host (:data:`PROBE`) gathers what is needed; the
archive's age is reckoned with the host's own clock, so a controller whose clock is
off does not make a backup look late or fresh.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from planb.backup.core import BORG, SERVICE, BackupError, _ssh, backup_hosts
from planb.config import SiteConfig
from planb.inventory import BACKUP, InventoryHost, load_hosts
from planb.mode import FailoverState, StateFile

log = logging.getLogger(__name__)

#: The backup role's timer drop-in while the fallback is active (schedule.yml).
ACTIVE_DROPIN = "/etc/systemd/system/planb-backup.timer.d/planb-active.conf"
#: Made by the dump hook the first time the host holds data (until then it makes no
#: archive: an empty fallback never pushes one in front of the real ones).
HELD_DATA = "/var/lib/planb/backup/held-data"
#: Slack on top of the interval: the timer counts from the end of the last backup (its
#: duration), fires within AccuracySec, and an archive is listed once it is done.
MARGIN_MIN_SECONDS = 600
MARGIN_FRACTION = 0.1

State = Literal["ok", "late", "failed", "unreachable", "none"]

#: What the fallback host says, one ``key=value`` a line: the unit's last result, the
#: timer's drop-in, its clock, and the newest archive (borg's JSON) or borg's error.
PROBE = (
    f"systemctl show -p Result -p ActiveState {SERVICE}; "
    f"if [ -e {ACTIVE_DROPIN} ]; then echo timer=active; else echo timer=standby; fi; "
    f"if [ -e {HELD_DATA} ]; then echo held=yes; else echo held=no; fi; "
    "echo now=$(date +%s); echo offset=$(date +%:z); "
    f"if [ ! -x {BORG} ]; then echo borg_rc=127; exit 0; fi; "
    f'e=$(mktemp); j=$({BORG} list --json --last 1 2>"$e"); rc=$?; echo borg_rc=$rc; '
    "grep -v '^ *$' \"$e\" | tail -n 2 | sed 's/^/borg_err=/'; rm -f \"$e\"; "
    "printf 'borg_json=%s\\n' \"$(printf '%s' \"$j\" | tr -d '\\n')\""
)


@dataclass(frozen=True)
class Freshness:
    """One fallback host's backups, as ``planb verify`` and ``failover status`` show them."""

    host: str
    state: State
    #: The mode whose interval applies (``standby`` or ``active``).
    mode: str
    #: The newest archive's name and start (ISO 8601 with the host's offset), or "".
    newest: str
    newest_time: str
    age_seconds: float | None
    limit_seconds: int
    #: For a person: what is wrong and what to do, or the newest archive's age.
    detail: str

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "state": self.state, "mode": self.mode,
                "newest": self.newest or None, "newest_time": self.newest_time or None,
                "age_seconds": None if self.age_seconds is None else round(self.age_seconds),
                "limit_seconds": self.limit_seconds, "detail": self.detail}


def margin_seconds(interval_seconds: int) -> int:
    """The slack allowed on top of an interval."""
    return max(MARGIN_MIN_SECONDS, int(interval_seconds * MARGIN_FRACTION))


def limit_for(site: SiteConfig, state: FailoverState, now: float) -> tuple[str, int]:
    """The mode whose interval applies and the newest archive's allowed age (seconds).

    Just after an activation the newest archive is still the standby one: the standby
    limit holds until the active one has had time to run (its timer fires a minute
    after the switch).
    """
    standby = site.backup.standby_interval_minutes * 60
    active = site.backup.active_interval_minutes * 60
    standby_limit = standby + margin_seconds(standby)
    active_limit = active + margin_seconds(active)
    if state.mode != "active":
        return "standby", standby_limit
    since = _epoch(state.since or "")
    if since is not None and now - since < active_limit:
        return "active", max(active_limit, standby_limit)
    return "active", active_limit


def _epoch(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def assess(host: str, output: str, *, site: SiteConfig, state: FailoverState,
           backup_host: str = "the backup host", margin: int | None = None) -> Freshness:
    """Read :data:`PROBE`'s output from ``host`` into a :class:`Freshness`.

    ``margin`` replaces the usual slack (seconds) when given. BackupError when the
    output is not the probe's (the host did not run it).
    """
    values: dict[str, str] = {}
    errors: list[str] = []
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "borg_err":
            errors.append(value.strip())
        else:
            values.setdefault(key, value.strip())
    try:
        now = float(values["now"])
    except (KeyError, ValueError):
        raise BackupError(f"unexpected answer from {host} about its backups") from None
    mode, limit = limit_for(site, state, now)
    if margin is not None:
        interval = (site.backup.active_interval_minutes if mode == "active"
                    else site.backup.standby_interval_minutes) * 60
        limit = interval + margin

    def result(status: State, detail: str, newest: str = "", when: str = "",
               age: float | None = None) -> Freshness:
        return Freshness(host, status, mode, newest, when, age, limit, detail)

    rc = values.get("borg_rc", "")
    if rc == "127":
        return result("failed", "backups are not set up on this host: run 'planb deploy' "
                                "with backup.enabled")
    if rc != "0":
        why = " | ".join(errors) or f"borg exit {rc or '?'}"
        return result("unreachable", f"cannot read this host's repository on {backup_host}: "
                                     f"{_short(why)}")
    try:
        listed = json.loads(values.get("borg_json") or "{}").get("archives") or []
        newest_name, start = ((str(listed[-1]["name"]), str(listed[-1]["start"]))
                              if listed else ("", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BackupError(f"unexpected answer from borg on {host}") from None
    failed = values.get("Result", "success") != "success"
    problems: list[str] = []
    if failed:
        problems.append(f"the last run of {SERVICE} failed ({values.get('Result')}): "
                        f"see 'journalctl -u {SERVICE.removesuffix('.service')}' on {host}")
    if mode == "active" and values.get("timer") != "active":
        problems.append("the backup timer is on the standby interval while the fallback "
                        "is active (run 'planb failover activate' again or 'planb deploy')")
    if not newest_name and not failed and values.get("held") == "no":
        return result("ok", "no archive: this host holds no data yet (nothing to back up)")
    if not newest_name:
        detail = "; ".join(["no archive yet: run 'planb backup now'", *problems])
        return result("failed" if failed else "none", detail)
    offset = values.get("offset", "")
    when = start + (offset if re.match(r"^[+-][0-9]{2}:[0-9]{2}$", offset) else "")
    started = _epoch(when)
    age = None if started is None else max(0.0, now - started)
    late = age is None or age > limit
    if late:
        shown = "of unknown age" if age is None else f"{_minutes(age)} old"
        problems.insert(0, f"newest archive {newest_name} is {shown}, over the "
                           f"{_minutes(limit)} allowed in {mode}")
    if not problems:
        assert age is not None
        return result("ok", f"newest archive {newest_name}, {_minutes(age)} old "
                            f"(at most {_minutes(limit)} in {mode})", newest_name, when, age)
    # A failed run or a timer on the wrong interval is "failed" even when on time.
    status: State = "late" if late and not failed else "failed"
    return result(status, "; ".join(problems), newest_name, when, age)


def _short(text: str) -> str:
    return text if len(text) <= 300 else text[:300] + "…"


def backup_host_name(hosts: list[InventoryHost]) -> str:
    """The backup host as messages name it: ``backup (10.0.0.20)``."""
    found = [h for h in hosts if BACKUP in h.groups]
    return f"{found[0].name} ({found[0].address})" if found else "the backup host"


def freshness(site: SiteConfig, *, timeout: float = 90,
              margin: int | None = None) -> list[Freshness]:
    """Every fallback host's :class:`Freshness`, over SSH (ConfigError if backups are
    off). A host that cannot be reached comes back ``unreachable``, not as an error."""
    hosts = load_hosts(site)
    state = StateFile(site.state_dir).load()
    backup = backup_host_name(hosts)
    found: list[Freshness] = []
    for host in backup_hosts(site, hosts):
        try:
            code, out, err = _ssh(host, PROBE, timeout=timeout,
                                  what=f"backups of {host.name}")
        except BackupError as exc:
            found.append(Freshness(host.name, "unreachable", state.mode, "", "", None, 0,
                                   str(exc)))
            continue
        found.append(assess(host.name, out, site=site, state=state, backup_host=backup,
                            margin=margin))
    return found
