"""Playbook run results as frozen objects, and the pure fold of runner events into them.

ansible-runner hands over one dict per Ansible callback (``runner_on_ok``,
``runner_on_failed``, ``playbook_on_stats``...). :class:`EventTally` folds them, in
order, into progress snapshots and, at the end, a :class:`PlaybookResult`. Nothing
here does I/O, so it is tested with events captured from real runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from planb.errors import Interrupted, PlaybookFailed
from planb.hostkeys import is_key_refusal

Status = Literal["successful", "failed", "canceled", "timeout"]
Event = Mapping[str, Any]

#: playbook_on_stats keys -> HostStats fields.
_STATS_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "dark": "unreachable",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}
_MESSAGE_LIMIT = 400
_ERROR_LINES = 12


@dataclass(frozen=True)
class HostStats:
    """What happened on one host, as in Ansible's PLAY RECAP."""

    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    @property
    def good(self) -> bool:
        """True when the host neither failed nor was unreachable."""
        return self.failed == 0 and self.unreachable == 0


@dataclass(frozen=True)
class TaskFailure:
    """A task that failed (or could not reach) a host and was not ignored."""

    host: str
    play: str
    task: str
    message: str
    unreachable: bool = False

    def describe(self) -> str:
        """One line for a person: host, task, play and what went wrong."""
        if self.key_refused:
            return (f"{self.host}: ssh refused its host key (not the one recorded in the "
                    "site's known_hosts, or none recorded): planb did not connect. A new host: "
                    "'planb hosts trust'; a key that changed on purpose: check its fingerprint "
                    f"on the host's console, then 'planb hosts trust --replace {self.host}'")
        what = "unreachable during" if self.unreachable else "failed"
        return f"{self.host}: {what} task '{self.task}' (play '{self.play}'): {self.message}"

    @property
    def key_refused(self) -> bool:
        """Whether ssh refused the host's key (see :mod:`planb.hostkeys`)."""
        return self.unreachable and is_key_refusal(self.message)


@dataclass(frozen=True)
class ProgressEvent:
    """Where a run is: current play and task, and per-host counts so far."""

    play: str | None
    task: str | None
    hosts: Mapping[str, HostStats]
    #: The Ansible event that produced this snapshot (e.g. ``runner_on_ok``).
    event: str = ""
    #: The host that event was about, if any.
    host: str | None = None


@dataclass(frozen=True)
class PlaybookResult:
    """The outcome of one ``ansible-playbook`` run."""

    playbook: Path
    status: Status
    rc: int
    duration_s: float
    hosts: Mapping[str, HostStats]
    failures: tuple[TaskFailure, ...]
    artifacts_dir: Path
    check: bool = False
    #: Ansible's own error text when it stopped before running tasks (syntax, inventory).
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the run succeeded on every host."""
        return (
            self.status == "successful"
            and self.rc == 0
            and not self.failures
            and all(h.good for h in self.hosts.values())
        )

    @property
    def changed_total(self) -> int:
        """Number of changed tasks over all hosts (0 means the run was idempotent)."""
        return sum(h.changed for h in self.hosts.values())

    def as_dict(self) -> dict[str, object]:
        """Plain data for ``--json`` and the run's ``result.json``."""
        return {
            "playbook": str(self.playbook),
            "status": self.status,
            "ok": self.ok,
            "rc": self.rc,
            "check": self.check,
            "duration_s": round(self.duration_s, 3),
            "changed_total": self.changed_total,
            "hosts": {name: dataclasses.asdict(s) for name, s in sorted(self.hosts.items())},
            "failures": [dataclasses.asdict(f) for f in self.failures],
            "error": self.error,
            "artifacts_dir": str(self.artifacts_dir),
        }

    def raise_for_status(self) -> None:
        """Raise unless ok: :class:`Interrupted` (exit 130) if canceled, else
        :class:`PlaybookFailed` (exit 3) naming failed hosts and tasks."""
        if self.ok:
            return
        if self.status == "canceled":
            raise Interrupted(f"playbook {self.playbook.name} canceled: Ansible was stopped",
                              hint=f"what ran is recorded in {self.artifacts_dir}")
        raise PlaybookFailed(failure_message(self),
                             hint=f"Ansible's output and events are in {self.artifacts_dir}; "
                             "re-run with -v to see Ansible's output live")


def failure_message(result: PlaybookResult) -> str:
    """Why a run failed, in a few lines naming host(s) and task(s)."""
    name = result.playbook.name
    if result.status == "timeout":
        head = f"playbook {name} timed out after {result.duration_s:.0f} s"
    else:
        head = f"playbook {name} failed ({result.status}, rc {result.rc})"
    lines = [head]
    lines += [f"  {f.describe()}" for f in result.failures]
    if not result.failures:
        bad = sorted(h for h, s in result.hosts.items() if not s.good)
        if bad:
            lines.append(f"  failed hosts: {', '.join(bad)}")
    if result.error:
        lines += [f"  {line}" for line in result.error.splitlines()]
    return "\n".join(lines)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _last_line(value: object) -> str:
    if not isinstance(value, str):
        return ""
    lines = [line for line in value.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def result_message(res: Mapping[str, Any]) -> str:
    """The useful part of a failed task's result: msg, the failed loop item, stderr's last line.

    Results of ``no_log`` tasks arrive already censored by Ansible; that text is kept.
    """
    if "censored" in res:
        return _clip(str(res["censored"]))
    parts: list[str] = []
    msg = res.get("msg")
    if msg:
        parts.append(str(msg))
    for item in res.get("results") or ():
        if isinstance(item, Mapping) and item.get("failed"):
            label = item.get("_ansible_item_label", item.get("item", "?"))
            parts.append(f"item {label}: {result_message(item)}")
            break
    else:
        detail = _last_line(res.get("stderr")) or _last_line(res.get("module_stderr"))
        if detail and detail not in parts:
            parts.append(detail)
    return _clip(": ".join(parts) or "no message")


def error_text(events: Iterable[Event], *, tail: bool = False) -> str | None:
    """Ansible's own ``ERROR!`` block (syntax or inventory errors), if the run printed one.

    With ``tail``, a run that printed no such block gives its last output lines instead.
    """
    lines: list[str] = []
    outside: list[str] = []
    for event in events:
        if event.get("event") != "verbose":
            continue
        text = str(event.get("stdout", "")).replace("\r\n", "\n")
        if not lines and not text.startswith(("ERROR!", "[ERROR]")):
            outside.extend(text.splitlines())
            continue
        lines.extend(text.splitlines() or [""])
        if len(lines) >= _ERROR_LINES:
            break
    if not lines and tail:
        lines = [line for line in outside if line.strip()][-_ERROR_LINES:]
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines[:_ERROR_LINES]) or None


@dataclass
class EventTally:
    """Fold runner events, in order, into progress and a final result.

    Counts while running follow the events; when ``playbook_on_stats`` arrives its
    numbers (Ansible's own recap) replace them.
    """

    play: str | None = None
    task: str | None = None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    failed_events: list[TaskFailure] = field(default_factory=list)
    final_stats: dict[str, HostStats] | None = None
    verbose_events: list[Event] = field(default_factory=list)

    def add(self, event: Event) -> ProgressEvent:
        """Take one event into account and return the progress snapshot after it."""
        kind = str(event.get("event", ""))
        data: Mapping[str, Any] = event.get("event_data") or {}
        host = data.get("host")
        if kind == "verbose":
            self.verbose_events.append(event)
        elif kind == "playbook_on_play_start":
            self.play, self.task = data.get("name") or data.get("play"), None
        elif kind in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            self.task = data.get("name") or data.get("task")
        elif kind == "playbook_on_stats":
            self.final_stats = stats_from_event(data)
        elif host and kind.startswith("runner_on_"):
            self._count(kind, str(host), data)
        return ProgressEvent(play=self.play, task=self.task, hosts=self.hosts(),
                             event=kind, host=str(host) if host else None)

    def _count(self, kind: str, host: str, data: Mapping[str, Any]) -> None:
        c = self.counts.setdefault(host, dict.fromkeys(_STATS_KEYS.values(), 0))
        res: Mapping[str, Any] = data.get("res") or {}
        if kind == "runner_on_ok":
            c["ok"] += 1
            c["changed"] += bool(res.get("changed"))
        elif kind == "runner_on_skipped":
            c["skipped"] += 1
        elif kind == "runner_on_unreachable":
            c["unreachable"] += 1
            self.failed_events.append(self._failure(host, data, unreachable=True))
        elif kind == "runner_on_failed" and data.get("ignore_errors"):
            c["ignored"] += 1
        elif kind == "runner_on_failed":
            c["failed"] += 1
            self.failed_events.append(self._failure(host, data, unreachable=False))

    def _failure(self, host: str, data: Mapping[str, Any], *, unreachable: bool) -> TaskFailure:
        return TaskFailure(host=host, play=str(data.get("play") or self.play or "?"),
                           task=str(data.get("task") or self.task or "?"),
                           message=result_message(data.get("res") or {}),
                           unreachable=unreachable)

    def hosts(self) -> dict[str, HostStats]:
        """Per-host counts: Ansible's recap if it arrived, else the running counts."""
        if self.final_stats is not None:
            return dict(self.final_stats)
        return {h: HostStats(**c) for h, c in sorted(self.counts.items())}

    def failures(self) -> tuple[TaskFailure, ...]:
        """Failures that made hosts fail.

        A block's ``rescue`` turns a failure into ``rescued`` without marking the
        event, but a failed host runs nothing more, so with Ansible's recap the
        real failures are each host's last ``failed``/``dark`` events.
        """
        if self.final_stats is None:
            return tuple(self.failed_events)
        kept: list[TaskFailure] = []
        for host, stats in self.final_stats.items():
            for unreachable, wanted in ((False, stats.failed), (True, stats.unreachable)):
                mine = [f for f in self.failed_events
                        if f.host == host and f.unreachable is unreachable]
                kept.extend(mine[len(mine) - wanted:] if wanted else [])
        order = {id(f): i for i, f in enumerate(self.failed_events)}
        return tuple(sorted(kept, key=lambda f: order[id(f)]))

    def result(self, *, playbook: Path, status: Status, rc: int, duration_s: float,
               artifacts_dir: Path, check: bool = False) -> PlaybookResult:
        """The run's result, once the runner reported its status and rc."""
        failures = self.failures()
        unexplained = status != "successful" and not failures
        return PlaybookResult(playbook=playbook, status=status, rc=rc, duration_s=duration_s,
                              hosts=self.hosts(), failures=failures,
                              artifacts_dir=artifacts_dir, check=check,
                              error=error_text(self.verbose_events, tail=unexplained))


def stats_from_event(data: Mapping[str, Any]) -> dict[str, HostStats]:
    """Per-host stats from a ``playbook_on_stats`` event's data."""
    per_host: dict[str, dict[str, int]] = {}
    for key, name in _STATS_KEYS.items():
        for host, count in (data.get(key) or {}).items():
            per_host.setdefault(str(host), {})[name] = int(count)
    for host in data.get("processed") or {}:
        per_host.setdefault(str(host), {})
    return {h: HostStats(**c) for h, c in sorted(per_host.items())}


def parse_events(events: Iterable[Event], *, playbook: Path, status: Status, rc: int,
                 duration_s: float, artifacts_dir: Path, check: bool = False
                 ) -> PlaybookResult:
    """Fold a whole event list into a :class:`PlaybookResult` (pure)."""
    tally = EventTally()
    for event in events:
        tally.add(event)
    return tally.result(playbook=playbook, status=status, rc=rc, duration_s=duration_s,
                        artifacts_dir=artifacts_dir, check=check)
