"""The building blocks of a report view: statuses (word + symbol), rows, and formatting.

Every status is a word and a symbol (``✔ PASS``); its tone only picks a colour that
repeats the word, so nothing is said by colour alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Tone = Literal["pass", "warn", "fail", "neutral"]


@dataclass(frozen=True)
class Status:
    """A status as people read it: ``word`` and ``symbol``; ``tone`` is for styling."""

    word: str
    symbol: str
    tone: Tone

    @property
    def label(self) -> str:
        return f"{self.symbol} {self.word}"


_STATUSES: dict[str, Status] = {
    "pass": Status("PASS", "✔", "pass"),
    "ok": Status("OK", "✔", "pass"),
    "completed": Status("COMPLETED", "✔", "pass"),
    "met": Status("MET", "✔", "pass"),
    "valid": Status("VALID", "✔", "pass"),
    "deviated": Status("DEVIATED", "⚠", "warn"),
    "forced": Status("FORCED", "⚠", "warn"),
    "interrupted": Status("INTERRUPTED", "■", "warn"),
    "not checked": Status("NOT CHECKED", "?", "neutral"),
    "failed": Status("FAILED", "✘", "fail"),
    "error": Status("ERROR", "✘", "fail"),
    "not met": Status("NOT MET", "✘", "fail"),
    "skipped": Status("SKIPPED", "–", "neutral"),
    "unavailable": Status("UNAVAILABLE", "–", "neutral"),
    "not measured": Status("NOT MEASURED", "–", "neutral"),
    "recorded": Status("RECORDED", "•", "neutral"),
}
#: Signature states that mean the journal cannot be trusted (planb.reports.verify.Reason).
_BAD_SIGNATURE = {"altered", "missing", "reordered", "unknown key", "unsigned", "malformed"}


def status_of(value: object) -> Status:
    """The :class:`Status` for a journal's status word (unknown words are shown as they are)."""
    if isinstance(value, bool):
        return _STATUSES["met" if value else "not met"]
    if value is None:
        return _STATUSES["not measured"]
    key = str(value).strip().lower()
    if key in _STATUSES:
        return _STATUSES[key]
    if key in _BAD_SIGNATURE:
        return Status(key.upper(), "✘", "fail")
    return Status(key.upper() or "UNKNOWN", "?", "neutral")


@dataclass(frozen=True)
class Objective:
    """One objective of the exercise and the outcome against it."""

    name: str
    target: str
    measured: str
    outcome: Status


@dataclass(frozen=True)
class Participant:
    role: str
    name: str


@dataclass(frozen=True)
class TimelineStep:
    """One step as it ran: phase, name, action, start, duration, status, a one-line detail."""

    phase: str
    name: str
    action: str
    started_at: str
    duration: str
    status: Status
    detail: str
    output: str = ""
    round: int | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class ProbeRow:
    """One functional probe; ``subject`` is always a pseudonym (or empty)."""

    step: str
    round: int | None
    name: str
    subject: str
    status: Status
    duration: str
    detail: str
    seconds: float = 0.0


@dataclass(frozen=True)
class RoundRow:
    number: int
    started_at: str
    duration: str
    status: Status
    failing: str


@dataclass(frozen=True)
class Note:
    """An observation, recommendation or action, and where it comes from."""

    text: str
    source: str


@dataclass(frozen=True)
class FootprintRow:
    host: str
    service: str
    memory: str
    disk: str


@dataclass(frozen=True)
class Rto:
    """The measured recovery time against the objective."""

    measured: str
    objective: str
    outcome: Status
    seconds: float | None
    objective_seconds: float | None


@dataclass(frozen=True)
class SignatureView:
    """What verification said about the journal, and what an auditor needs to re-check it."""

    state: str
    status: Status
    key_fingerprint: str
    verified_by: str | None
    sha256: str
    previous_sha256: str | None
    problem: str | None


@dataclass(frozen=True)
class AddendumView:
    file: str
    created_at: str
    author: str
    signature: Status
    observations: tuple[str, ...]
    actions: tuple[str, ...]


@dataclass(frozen=True)
class ReportView:
    """A journal as an exercise report (ISO 22301 §8.5, NIST SP 800-84 sections)."""

    title: str
    kind: str
    journal_id: str
    file: str
    seq: int
    created_at: str
    organisation: str
    site: str
    status: Status
    summary: str
    signature: SignatureView
    rto: Rto | None = None
    scope: tuple[tuple[str, str], ...] = ()
    objectives: tuple[Objective, ...] = ()
    participants: tuple[Participant, ...] = ()
    timeline: tuple[TimelineStep, ...] = ()
    rounds: tuple[RoundRow, ...] = ()
    probes: tuple[ProbeRow, ...] = ()
    observations: tuple[Note, ...] = ()
    recommendations: tuple[Note, ...] = ()
    versions: tuple[tuple[str, str], ...] = ()
    footprint: tuple[FootprintRow, ...] = ()
    addenda: tuple[AddendumView, ...] = ()
    details: tuple[tuple[str, str], ...] = field(default=())
    #: Steps that started on this day (UTC) show only their time.
    timeline_day: str = ""
    hidden_subjects: int = 0


NONE_RECORDED = "none recorded"


def when(value: Any) -> str:
    """A journal time (``2025-03-01T09:30:00.123Z``) as ``2025-03-01 09:30:00.123 UTC``."""
    if not isinstance(value, str) or not value:
        return ""
    return value.replace("T", " ").removesuffix("Z") + (" UTC" if value.endswith("Z") else "")


def seconds(value: Any) -> str:
    """A duration for people: ``0.42 s``, ``12.3 s``, ``125 s (2 min 5 s)``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    if value < 10:
        return f"{value:.2f} s"
    if value < 100:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{value:.0f} s ({minutes} min {rest} s)"


def size(value: Any) -> str:
    """Bytes for people: ``512 B``, ``12.3 MiB``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "not measured"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"  # pragma: no cover - the loop returns at GiB


def text(value: Any) -> str:
    """Any JSON value as one line of text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value if isinstance(value, str) else str(value)
