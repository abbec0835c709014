"""The few payload fields that listings show, read tolerantly from any journal.

Producers are free in what their payload holds; these top-level keys, when present,
are what ``planb report list`` and ``show`` put in their columns:

- ``scenario`` (str): the drill scenario, e.g. ``primary-outage``.
- ``status`` (str): the outcome, e.g. ``pass``, ``deviated``, ``failed``, ``interrupted``.
- ``rto_seconds`` (number or null): the measured recovery time.
- ``rto_objective_seconds`` (number): the objective it was measured against.

An ``rto`` object with ``seconds`` / ``objective_seconds`` is read as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PayloadSummary:
    """What a listing shows about a journal's payload."""

    scenario: str | None = None
    status: str | None = None
    rto_seconds: float | None = None
    rto_objective_seconds: float | None = None

    @property
    def rto_text(self) -> str:
        """``"42.1 s / 60 s"``, ``"42.1 s"`` or ``""``."""
        if self.rto_seconds is None:
            return ""
        text = f"{self.rto_seconds:g} s"
        if self.rto_objective_seconds is not None:
            text += f" / {self.rto_objective_seconds:g} s"
        return text


def summarise(payload: Mapping[str, Any]) -> PayloadSummary:
    """Pick scenario, status and RTO out of ``payload``; anything missing or odd is None."""
    rto = payload.get("rto")
    nested = rto if isinstance(rto, Mapping) else {}
    return PayloadSummary(
        scenario=_text(payload.get("scenario")),
        status=_text(payload.get("status")),
        rto_seconds=_number(payload.get("rto_seconds", nested.get("seconds"))),
        rto_objective_seconds=_number(
            payload.get("rto_objective_seconds", nested.get("objective_seconds"))),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
