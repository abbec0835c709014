"""The few payload fields that listings show, read tolerantly from any journal.

Producers are free in what their payload holds; these top-level keys, when present,
are what ``planb report list`` and ``show`` put in their columns:

- ``scenario`` (str): the drill scenario, e.g. ``primary-outage``.
- ``status`` (str): the outcome, e.g. ``pass``, ``deviated``, ``failed``, ``interrupted``.
- ``rto_seconds`` (number or null): the measured recovery time.
- ``rto_objective_seconds`` (number): the objective it was measured against.

Drill journals (:mod:`planb.drills.records`) nest them: ``scenario.name``,
``rto.seconds`` and ``objective.rto_seconds``; those are read as well.
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
    rto = as_mapping(payload.get("rto"))
    objective = as_mapping(payload.get("objective"))
    scenario = payload.get("scenario")
    return PayloadSummary(
        scenario=_text(as_mapping(scenario).get("name") if isinstance(scenario, Mapping)
                       else scenario),
        status=_text(payload.get("status")),
        rto_seconds=as_number(payload.get("rto_seconds", rto.get("seconds"))),
        rto_objective_seconds=as_number(payload.get(
            "rto_objective_seconds", rto.get("objective_seconds",
                                             objective.get("rto_seconds")))),
    )


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_number(value: Any) -> float | None:
    """``value`` as a float if it is a JSON number (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
