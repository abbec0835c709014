"""The building blocks of a report view: statuses (word + symbol), rows, and formatting.

Every status is a word and a symbol (``✔ PASS``); its tone only picks a colour that
repeats the word, so nothing is said by colour alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from planb.i18n import N_, Translator, english

Tone = Literal["pass", "warn", "fail", "neutral"]


@dataclass(frozen=True)
class Status:
    """A status as people read it: ``word`` and ``symbol``; ``tone`` is for styling."""

    word: str
    symbol: str
    tone: Tone
    #: The journal's word in English, lower case (``pass``): stable whatever the language.
    key: str = ""

    @property
    def label(self) -> str:
        return f"{self.symbol} {self.word}"


_STATUSES: dict[str, tuple[str, str, Tone]] = {
    "pass": (N_("PASS"), "✔", "pass"),
    "ok": (N_("OK"), "✔", "pass"),
    "completed": (N_("COMPLETED"), "✔", "pass"),
    "met": (N_("MET"), "✔", "pass"),
    "valid": (N_("VALID"), "✔", "pass"),
    "deviated": (N_("DEVIATED"), "⚠", "warn"),
    "forced": (N_("FORCED"), "⚠", "warn"),
    "interrupted": (N_("INTERRUPTED"), "■", "warn"),
    "not checked": (N_("NOT CHECKED"), "?", "neutral"),
    "failed": (N_("FAILED"), "✘", "fail"),
    "error": (N_("ERROR"), "✘", "fail"),
    "not met": (N_("NOT MET"), "✘", "fail"),
    "skipped": (N_("SKIPPED"), "–", "neutral"),
    "unavailable": (N_("UNAVAILABLE"), "–", "neutral"),
    "not measured": (N_("NOT MEASURED"), "–", "neutral"),
    "recorded": (N_("RECORDED"), "•", "neutral"),
    # Signature states that mean the journal cannot be trusted (planb.reports.verify.Reason).
    "altered": (N_("ALTERED"), "✘", "fail"),
    "missing": (N_("MISSING"), "✘", "fail"),
    "reordered": (N_("REORDERED"), "✘", "fail"),
    "unknown key": (N_("UNKNOWN KEY"), "✘", "fail"),
    "unsigned": (N_("UNSIGNED"), "✘", "fail"),
    "malformed": (N_("MALFORMED"), "✘", "fail"),
}
def status_of(value: object, tr: Translator | None = None) -> Status:
    """The :class:`Status` for a journal's status word, in ``tr``'s language (English by
    default); unknown words are shown as they are."""
    tr = tr or english()
    if isinstance(value, bool):
        key = "met" if value else "not met"
    elif value is None:
        key = "not measured"
    else:
        key = str(value).strip().lower()
    if key in _STATUSES:
        word, symbol, tone = _STATUSES[key]
        return Status(tr._(word), symbol, tone, key)
    return Status(key.upper() or tr._("UNKNOWN"), "?", "neutral", key)


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
    #: Steps that started on this day (in ``timezone``) show only their time.
    timeline_day: str = ""
    hidden_subjects: int = 0
    #: The language the report is written in, and the time zone of its times.
    language: str = "en"
    timezone: str = "UTC"


NONE_RECORDED = N_("none recorded")


def when(value: Any) -> str:
    """A journal time (``2025-03-01T09:30:00.123Z``) as ``2025-03-01 09:30:00.123 UTC``."""
    return english().when(value) if isinstance(value, str) and value else ""


def seconds(value: Any) -> str:
    """A duration for people: ``0.42 s``, ``12.3 s``, ``125 s (2 min 5 s)``."""
    return english().seconds(value)


def size(value: Any) -> str:
    """Bytes for people: ``512 B``, ``12.3 MiB``."""
    return english().size(value)


def text(value: Any) -> str:
    """Any JSON value as one line of text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value if isinstance(value, str) else str(value)
