"""One step record for every run of an action: drill steps and failover steps alike.

A drill fills in ``phase``, ``args`` and (for verify rounds) ``round``; a failover
transition leaves them empty. Journals store :meth:`StepRecord.as_json`, one shape for
both, so reports read steps the same way whatever produced them.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from planb.engine.actions import Measure, ProbeResult
from planb.schema import as_plain

#: ``forced``: failed, let through by ``--force``; ``unavailable``: an optional step whose
#: action is not available here; ``skipped``: not run (an earlier step decided).
StepStatus = Literal["ok", "failed", "error", "skipped", "forced", "unavailable"]


@dataclass(frozen=True)
class StepRecord:
    """One step as it ran (or was skipped)."""

    name: str
    action: str
    status: StepStatus
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float = 0.0
    output: str = ""
    error: str | None = None
    probes: tuple[ProbeResult, ...] = ()
    #: The drill phase (``steady_state``, ``fault``, ``verify`` ...); None in a failover.
    phase: str | None = None
    args: Any = None
    #: The verify round this step belongs to (drills only).
    round: int | None = None
    #: Figures the action measured (``rpo_seconds`` ...); in the JSON only when any.
    measures: Mapping[str, Measure] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def why(self) -> str:
        """One line saying why the step did not pass."""
        detail = self.error or next((p.detail for p in self.probes if not p.ok), "")
        detail = detail or (self.output.strip().splitlines() or [self.status])[-1]
        where = f"{self.phase} step" if self.phase else "step"
        return f"{where} '{self.name}' ({self.action}) {self.status}: {detail}"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "action": self.action, "phase": self.phase,
            "args": as_plain(self.args), "status": self.status,
            "started_at": self.started_at, "ended_at": self.ended_at,
            "duration_seconds": round(self.duration_seconds, 3), "output": self.output,
            "error": self.error, "probes": [p.as_json() for p in self.probes],
            "round": self.round,
        } | ({"measures": dict(self.measures)} if self.measures else {})


def resolve_operator(explicit: str | None = None) -> str:
    """Who runs this: ``--operator``, else ``$SUDO_USER``, ``$USER``, the login name."""
    if explicit and explicit.strip():
        return explicit.strip()
    for name in ("SUDO_USER", "USER"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
