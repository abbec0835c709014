"""Status, activation and deactivation on the messaging host itself, on the record.

What an activation changes is what ``playbooks/failover.yml`` changes: the site's public
message (``/etc/planb/public_message``), then the switch (``/etc/planb/mode``, read by
planb's Synapse module at each request: no restart), then the backup timer's active
drop-in (where the backup role set one up); then the site's announcement is posted
through Synapse on localhost (:mod:`planb.breakglass.announce`). Deactivation flips
back, removes the message and the drop-in. Nothing here needs the controller, the
primary system or the internet.

Every request and step goes to the host's audit log (the controller's format, its own
chain and signed head) and every transition attempted to a journal (kind
``failover``, ``via: breakglass``) in the host's own store, signed with the host's key.
Refused: activating an active fallback, deactivating a standby one, and any switch
while the failover lock is held (its holder is named).
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from planb.breakglass import lock
from planb.breakglass.paths import BACKUP_SERVICE, HostPaths
from planb.engine.records import StepRecord, StepStatus
from planb.errors import PlanbError, UsageError
from planb.files import write_atomic
from planb.mode import AuditEntry, AuditLog, FailoverState, Mode
from planb.reports.keys import (
    KeyPaths,
    Signer,
    fingerprint,
    init_keys,
    load_public_key,
    load_signer,
    public_pem,
)
from planb.reports.store import JournalStore, utc_now
from planb.reports.trust import record_rotation

log = logging.getLogger(__name__)

Event = Literal["activate", "deactivate"]
JOURNAL_KIND = "failover"
#: The controller's failover payload (planb.failover.machine), plus ``via`` and ``host``.
PAYLOAD_FORMAT = "planb-failover/1"
VIA = "breakglass"

#: Posts the announcement; returns what to record (raises PlanbError when it cannot).
Announcer = Callable[["Incident"], str]


@dataclass(frozen=True)
class Incident:
    """The break-glass activation under way (what the announcement names)."""

    id: str
    reason: str
    started_at: str
    drill: bool = False


@dataclass(frozen=True)
class Outcome:
    """What an activate or deactivate did."""

    event: Event
    mode: str
    message: str
    incident_id: str | None
    steps: tuple[StepRecord, ...] = ()
    warnings: tuple[str, ...] = ()
    journal: str | None = None
    announcement: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"event": self.event, "mode": self.mode, "message": self.message,
                "incident_id": self.incident_id, "warnings": list(self.warnings),
                "steps": [s.as_json() for s in self.steps], "journal": self.journal}


@dataclass(frozen=True)
class HostStatus:
    """What ``planb-breakglass status`` shows."""

    host: str
    mode: str
    recorded: FailoverState | None
    lock: lock.Holder | None
    recent: tuple[AuditEntry, ...]
    journals: int
    head_sha256: str | None
    key_fingerprint: str | None

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "mode": self.mode,
                "breakglass_state": self.recorded.as_json() if self.recorded else None,
                "lock": None if self.lock is None else vars(self.lock),
                "recent": [vars(e) for e in self.recent], "journals": self.journals,
                "head_sha256": self.head_sha256, "key_fingerprint": self.key_fingerprint}


def read_mode(paths: HostPaths) -> str:
    """``active`` or ``standby`` as Synapse sees it (anything else, or no file: standby)."""
    try:
        text = paths.mode_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "standby"
    return "active" if text == "active" else "standby"


def init_host_key(paths: HostPaths) -> str:
    """Make the host's signing key if there is none; return its public key (PEM)."""
    keys = KeyPaths(paths.config_dir)
    if not keys.private.exists():
        init_keys(keys, None)
    return public_pem(load_public_key(keys.public))


@dataclass(frozen=True)
class Rotation:
    """What ``rotate-key`` did: the retired and new fingerprints, the journal, the new key."""

    retired: str
    current: str
    journal: str
    public_pem: str


def rotate_host_key(paths: HostPaths, *, operator: str, reason: str) -> Rotation:
    """A new host signing key; the old public key is kept in ``retired/`` and retired by a
    ``key-rotation`` journal signed with the new key (the host chain still verifies from
    the new key alone). The next deploy exports the new public key to the controller."""
    if not operator.strip() or not reason.strip():
        raise UsageError("give --operator NAME and --reason TEXT: they go to the audit log")
    keys = KeyPaths(paths.config_dir)
    old = load_public_key(keys.public)
    with lock.held(paths.lock, operator, "break-glass rotate-key"):
        current = init_keys(keys, None, force=True)
        signer = load_signer(keys)
        journal = record_rotation(JournalStore(paths.journals, signer), old, by=operator)
        audit = _audit(paths, signer)
        audit.append(AuditEntry(at=utc_now(), who=operator, why=reason, event="rotate-key",
                                result="completed", detail=f"{fingerprint(old)} retired, "
                                f"{current} signs from {journal.path.name} on"))
    return Rotation(fingerprint(old), current, journal.path.name, public_pem(signer.public_key))


def host_name() -> str:
    return socket.gethostname()


def status(paths: HostPaths, recent: int = 10) -> HostStatus:
    """The mode, the last break-glass transition, the lock's holder and the record."""
    store = JournalStore(paths.journals)
    journals = store.list()
    try:
        key: str | None = fingerprint(load_public_key(KeyPaths(paths.config_dir).public))
    except PlanbError:
        key = None
    return HostStatus(host_name(), read_mode(paths), _load_state(paths),
                      lock.holder(paths.lock), tuple(_audit(paths).entries()[-recent:]),
                      len(journals), journals[-1].sha256 if journals else None, key)


def activate(paths: HostPaths, *, operator: str, reason: str, public_message: str = "",
             drill: bool = False, announcer: Announcer | None = None) -> Outcome:
    """standby -> active on this host; :class:`UsageError` if already active or locked."""
    return _Transition(paths, "activate", operator, reason).run(
        public_message=public_message, drill=drill, announcer=announcer)


def deactivate(paths: HostPaths, *, operator: str, reason: str) -> Outcome:
    """active -> standby on this host; :class:`UsageError` if in standby or locked."""
    return _Transition(paths, "deactivate", operator, reason).run()


# -- internals ------------------------------------------------------------------------

def _audit(paths: HostPaths, signer: Signer | None = None) -> AuditLog:
    return AuditLog(paths.state_dir, signer=signer, path=paths.audit_log)


def _load_state(paths: HostPaths) -> FailoverState | None:
    try:
        data = json.loads(paths.state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable: %s", paths.state_file, exc)
        return None
    fields = {k: data.get(k) for k in ("since", "incident_id", "reason", "operator")}
    mode: Mode = "active" if data.get("mode") == "active" else "standby"
    return FailoverState(mode=mode, drill=bool(data.get("drill")), **fields)


def _systemctl(*args: str) -> None:
    done = subprocess.run(["systemctl", *args], capture_output=True, text=True,
                          timeout=60, check=False)
    if done.returncode != 0:
        raise PlanbError(f"systemctl {' '.join(args)}: {done.stderr.strip()[-300:]}")


def _backup_schedule(paths: HostPaths, active: bool) -> str:
    """The backup timer at the mode's interval, as the backup role's schedule.yml sets it."""
    if not paths.backup_dropin_source.exists():
        return "no backup set up on this host: nothing to change"
    if active:
        paths.backup_dropin.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(paths.backup_dropin, paths.backup_dropin_source.read_bytes(), 0o644)
    else:
        paths.backup_dropin.unlink(missing_ok=True)
    _systemctl("daemon-reload")
    _systemctl("restart", f"{BACKUP_SERVICE}.timer")
    return f"{BACKUP_SERVICE}.timer at the {'active' if active else 'standby'} interval"


@dataclass
class _Transition:
    paths: HostPaths
    event: Event
    operator: str
    reason: str
    incident_id: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def run(self, *, public_message: str = "", drill: bool = False,
            announcer: Announcer | None = None) -> Outcome:
        if not self.operator.strip():
            raise UsageError("give --operator NAME: who is switching goes to the audit log")
        if not self.reason.strip():
            raise UsageError("give --reason TEXT: it goes to the audit log and the journal")
        signer = load_signer(KeyPaths(self.paths.config_dir))
        self.audit = _audit(self.paths, signer)
        self.store = JournalStore(self.paths.journals, signer)
        what = f"break-glass {self.event}"
        try:
            with lock.held(self.paths.lock, self.operator, what):
                return self._locked(public_message, drill, announcer)
        except lock.LockHeld as held:
            self._note("refused", detail=held.message)
            raise

    def _note(self, result: str, *, step: str | None = None, detail: str = "") -> None:
        self.audit.append(AuditEntry(at=utc_now(), who=self.operator, why=self.reason,
                                     event=self.event, result=result, step=step,
                                     incident_id=self.incident_id, detail=detail[:500]))

    def _locked(self, public_message: str, drill: bool,
                announcer: Announcer | None) -> Outcome:
        before = read_mode(self.paths)
        recorded = _load_state(self.paths)
        self.incident_id = recorded.incident_id if recorded and before == "active" else None
        self._note("requested")
        target = "active" if self.event == "activate" else "standby"
        if before == target:
            since = (f" since {recorded.since} ({recorded.operator}, through break-glass)"
                     if recorded and recorded.mode == "active" else "")
            message = f"the fallback is already {target}{since}: nothing changed"
            self._note("refused", detail=message)
            raise UsageError(message, hint="see 'planb-breakglass status'")
        started, start = utc_now(), time.monotonic()
        self.incident_id = self.incident_id or str(uuid.uuid4())
        incident = Incident(self.incident_id, self.reason, started, drill)
        result = "completed"
        try:
            if self.event == "activate":
                self._step("public-message", "host.public_message",
                           lambda: self._write_message(public_message))
                self._step("flip", "host.mode", lambda: self._write_mode("active"))
                self._step("backup-schedule", "host.backup_timer",
                           lambda: _backup_schedule(self.paths, True), critical=False)
                if announcer is not None:
                    self._step("announce", "host.announce", lambda: announcer(incident),
                               critical=False)
            else:
                self._step("flip", "host.mode", lambda: self._write_mode("standby"))
                self._step("public-message", "host.public_message",
                           lambda: self._remove_message(), critical=False)
                self._step("backup-schedule", "host.backup_timer",
                           lambda: _backup_schedule(self.paths, False), critical=False)
        except PlanbError as failed:
            result = "failed"
            self._undo(before)
            self._note("failed", detail=failed.message)
        after = read_mode(self.paths)
        self._save_state(after, incident, recorded)
        self._note(result, detail="; ".join(self.warnings))
        journal = self._journal(result, before, after, incident, recorded, start, started)
        if result == "failed":
            raise PlanbError(f"{self.event} failed; the fallback stays {after}",
                             hint=f"journal {journal}; see {self.paths.audit_log}")
        announcement = next((s.output for s in self.steps if s.name == "announce"), "")
        return Outcome(self.event, after, f"the fallback is now {after}", self.incident_id,
                       tuple(self.steps), tuple(self.warnings), journal, announcement)

    def _step(self, name: str, action: str, body: Callable[[], str], *,
              critical: bool = True) -> None:
        started, start = utc_now(), time.monotonic()
        status: StepStatus = "ok"
        output, error = "", None
        try:
            output = body()
        except (PlanbError, OSError, subprocess.SubprocessError) as exc:
            status = "failed"
            error = exc.message if isinstance(exc, PlanbError) else str(exc)
        step = StepRecord(name, action, status, started, utc_now(), time.monotonic() - start,
                          output, error)
        self.steps.append(step)
        self._note(status, step=name, detail=error or (output.splitlines() or [""])[-1])
        if status != "ok":
            if critical:
                raise PlanbError(f"{name} failed: {error}")
            self.warnings.append(f"{name} failed: {error}")

    def _write_message(self, text: str) -> str:
        write_atomic(self.paths.public_message, text.strip() + "\n", 0o644)
        return f"public message written ({len(text.strip())} characters)"

    def _remove_message(self) -> str:
        existed = self.paths.public_message.exists()
        self.paths.public_message.unlink(missing_ok=True)
        return "public message removed" if existed else "no public message"

    def _write_mode(self, mode: str) -> str:
        self.paths.mode_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.paths.mode_file, mode + "\n", 0o644)
        return f"{self.paths.mode_file}: {mode}"

    def _undo(self, before: str) -> None:
        """A critical step failed: put the switch and the message back as they were."""
        if read_mode(self.paths) != before:
            self._write_mode(before)
            self._note("undone", step="flip", detail=f"mode put back to {before}")
        if self.event == "activate" and any(s.name == "public-message" and s.ok
                                            for s in self.steps):
            self.paths.public_message.unlink(missing_ok=True)
            self._note("undone", step="public-message", detail="public message removed")

    def _save_state(self, mode: str, incident: Incident, recorded: FailoverState | None
                    ) -> None:
        if mode == "active":
            state = FailoverState("active", incident.started_at, incident.id, self.reason,
                                  self.operator, incident.drill)
        elif recorded is not None and recorded.mode == "active" or self.event == "deactivate":
            state = FailoverState("standby", utc_now(), None, self.reason, self.operator)
        else:
            return
        self.paths.state_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.paths.state_file, json.dumps(state.as_json(), ensure_ascii=False,
                                                       indent=2, sort_keys=True) + "\n", 0o600)

    def _journal(self, result: str, before: str, after: str, incident: Incident,
                 recorded: FailoverState | None, start: float, started: str) -> str:
        ended = utc_now()
        activated_at = (recorded.since if recorded and recorded.mode == "active" else None) \
            if self.event == "deactivate" else (started if after == "active" else None)
        lasted = _seconds(activated_at, ended) if self.event == "deactivate" \
            and after == "standby" else None
        payload = {
            "format": PAYLOAD_FORMAT, "via": VIA, "host": host_name(), "event": self.event,
            "result": result, "incident_id": incident.id, "drill": incident.drill,
            "reason": self.reason, "operator": self.operator, "site": _site_name(self.paths),
            "from_mode": before, "to_mode": after, "started_at": started, "ended_at": ended,
            "duration_seconds": round(time.monotonic() - start, 3),
            "activated_at": activated_at,
            "incident_duration_seconds": None if lasted is None else round(lasted, 3),
            "steps": [s.as_json() for s in self.steps], "warnings": list(self.warnings),
            "warning_templates": [],
        }
        return self.store.append(JOURNAL_KIND, payload).path.name


def _site_name(paths: HostPaths) -> str:
    try:
        return str(json.loads(paths.site_file.read_text(encoding="utf-8")).get("site", ""))
    except (OSError, ValueError):
        return ""


def _seconds(since: str | None, until: str) -> float | None:
    if since is None:
        return None
    start = datetime.fromisoformat(since.replace("Z", "+00:00"))
    return (datetime.fromisoformat(until.replace("Z", "+00:00")) - start).total_seconds()

