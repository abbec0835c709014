"""What a verify run reports: one result per (check, host), and the run as a whole.

A check *passes* when what it looks at holds, *fails* when it does not (the fallback
is not as it must be), ends in *error* when it could not look (host unreachable, an
unexpected answer), and is *skipped* when it does not apply (nothing to probe with).
Messages are written by planb for a person and never hold a secret.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "error", "skip"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "error", "skip")


class CheckFailed(Exception):
    """Raised by a check whose condition does not hold; the message says what was seen."""


class CheckSkipped(Exception):
    """Raised by a check that does not apply here; the message says why."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one host."""

    name: str
    host: str
    status: Status
    duration_seconds: float
    message: str = ""

    @property
    def ok(self) -> bool:
        """Pass or skip: nothing wrong was found."""
        return self.status in ("pass", "skip")

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "host": self.host, "status": self.status,
                "duration_seconds": round(self.duration_seconds, 3), "message": self.message}


@dataclass(frozen=True)
class VerifyReport:
    """Every result of one run, in check order, with the run's start and duration."""

    site: str
    started_at: str
    duration_seconds: float
    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when no check failed or ended in error."""
        return all(r.ok for r in self.results)

    @property
    def problems(self) -> tuple[CheckResult, ...]:
        """The results that failed or ended in error."""
        return tuple(r for r in self.results if not r.ok)

    def counts(self) -> dict[Status, int]:
        """How many results have each status (every status present, possibly 0)."""
        tally = Counter(r.status for r in self.results)
        return {status: tally.get(status, 0) for status in STATUSES}

    def summary(self) -> str:
        """One line: ``12 checks: 11 passed, 1 failed (service.slapd on fallback)``."""
        counts = self.counts()
        words = {"pass": "passed", "fail": "failed", "error": "errors", "skip": "skipped"}
        parts = [f"{counts[s]} {words[s]}" for s in STATUSES if counts[s] or s == "pass"]
        text = f"{len(self.results)} checks in {self.duration_seconds:.1f} s: " + ", ".join(parts)
        if self.problems:
            text += " (" + "; ".join(f"{r.name} on {r.host}" for r in self.problems) + ")"
        return text

    def as_json(self) -> dict[str, Any]:
        return {"site": self.site, "started_at": self.started_at,
                "duration_seconds": round(self.duration_seconds, 3), "ok": self.ok,
                "counts": self.counts(), "results": [r.as_json() for r in self.results]}
