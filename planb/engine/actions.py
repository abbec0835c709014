"""The action registry: every step of a drill or a failover names an action registered here.

An action is a Python function ``(ctx: ActionContext, args: A) -> ActionResult`` where
``A`` is a frozen dataclass declaring the action's ``with:`` arguments (the scenario
loader builds it strictly from YAML, so a misspelt argument is an error with its line).

- ``ok=False`` in the result means "the action ran and the check did not hold"
  (the step is *failed*); raising :class:`~planb.errors.PlanbError` means "the action
  could not do its job" (the step is *error*). Anything else raised is a bug, recorded
  as *error* too, with the exception type.
- An action that needs something not built yet is registered with :meth:`unavailable`:
  scenarios may name it (they load), but a run refuses to start while one is used,
  and calling it raises :class:`ActionUnavailable` saying what it needs.
- The step timeout reaches the action as ``ctx.deadline``; actions bound their
  subprocesses and loops by :meth:`ActionContext.remaining`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from planb.config import SiteConfig
from planb.engine.redaction import Redactor
from planb.errors import Interrupted, PlanbError

log = logging.getLogger(__name__)

A = TypeVar("A")
#: One measured figure (None: could not be measured).
Measure = float | int | bool | str | None


class ActionUnavailable(PlanbError):
    """A scenario or failover step uses an action that is registered but not built yet."""


@dataclass(frozen=True)
class NoArgs:
    """The arguments of an action that takes none (``with:`` must be absent or empty)."""


@dataclass(frozen=True)
class ProbeResult:
    """One functional probe: e.g. one sampled agent logging in, sending, receiving."""

    name: str
    ok: bool
    duration_seconds: float
    detail: str = ""
    #: Who or what was probed (an agent's uid); reports pseudonymise it.
    subject: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "subject": self.subject,
                "duration_seconds": round(self.duration_seconds, 3), "detail": self.detail}


@dataclass(frozen=True)
class ActionResult:
    """What an action reports: whether it held, a short output, and any probe results."""

    ok: bool
    output: str = ""
    probes: tuple[ProbeResult, ...] = ()
    #: Figures the action measured, by name (``rpo_seconds``): a drill journal keeps them.
    measures: Mapping[str, Measure] = field(default_factory=dict)


@dataclass(frozen=True)
class Incident:
    """The failover activation an action takes part in (set by the failover machine)."""

    id: str
    reason: str
    started_at: str
    drill: bool = False
    #: The site's public message for agents (the welcome page shows it while active).
    public_message: str = ""


@dataclass(frozen=True)
class ActionContext:
    """What a running action may use: the site, who runs it, why, and its deadline."""

    site: SiteConfig
    operator: str
    #: Why this runs, as journals and audit logs show it (``drill primary-outage …``).
    purpose: str
    deadline: float = field(default_factory=lambda: time.monotonic() + 60)
    redact: Redactor = field(default_factory=Redactor)
    incident: Incident | None = None
    #: The drill or incident this call belongs to (actions derive per-run values from it,
    #: e.g. the probe sample's seed, so every verify round probes the same agents).
    run_id: str | None = None

    def remaining(self, minimum: float = 1.0) -> float:
        """Seconds left before the step's deadline (at least ``minimum``)."""
        return max(minimum, self.deadline - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def with_timeout(self, seconds: float) -> ActionContext:
        return dataclasses.replace(self, deadline=time.monotonic() + seconds)


ActionFunc = Callable[[ActionContext, A], ActionResult]


@dataclass(frozen=True)
class ActionSpec(Generic[A]):
    """One registered action."""

    name: str
    summary: str
    args_type: type[A]
    func: ActionFunc[A] | None
    default_timeout: float = 60.0
    #: Why it cannot run yet (set exactly when ``func`` is None).
    needs: str | None = None

    @property
    def available(self) -> bool:
        return self.func is not None

    def call(self, ctx: ActionContext, args: A) -> ActionResult:
        """Run the action; :class:`ActionUnavailable` if it is not built yet."""
        if self.func is None:
            raise ActionUnavailable(f"action {self.name} is not available yet: needs {self.needs}")
        if not isinstance(args, self.args_type):
            raise TypeError(f"{self.name} takes {self.args_type.__name__}, not {type(args)}")
        return self.func(ctx, args)


_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class ActionRegistry:
    """Actions by name (``area.verb``, e.g. ``lab.isolate_host``)."""

    def __init__(self) -> None:
        self._specs: dict[str, ActionSpec[Any]] = {}

    def add(self, spec: ActionSpec[Any]) -> None:
        """Register ``spec``, replacing an unavailable placeholder of the same name."""
        if not _NAME.match(spec.name):
            raise ValueError(f"action name {spec.name!r}: use area.verb in lower case")
        params = getattr(spec.args_type, "__dataclass_params__", None)
        if not (dataclasses.is_dataclass(spec.args_type) and params is not None and params.frozen):
            raise ValueError(f"{spec.name}: args_type must be a frozen dataclass")
        if (spec.func is None) == (spec.needs is None):
            raise ValueError(f"{spec.name}: give either func or needs")
        existing = self._specs.get(spec.name)
        if existing is not None and existing.available:
            raise ValueError(f"action {spec.name} is already registered")
        self._specs[spec.name] = spec

    def action(self, name: str, *, summary: str, args: type[A] = NoArgs,  # type: ignore[assignment]
               timeout: float = 60.0) -> Callable[[ActionFunc[A]], ActionFunc[A]]:
        """Decorator: register the function as action ``name`` taking ``args``."""
        def register(func: ActionFunc[A]) -> ActionFunc[A]:
            self.add(ActionSpec(name, summary, args, func, timeout))
            return func
        return register

    def unavailable(self, name: str, *, summary: str, needs: str, args: type[Any] = NoArgs,
                    timeout: float = 60.0) -> None:
        """Register ``name`` as known but not built yet (``needs``: what it waits for)."""
        self.add(ActionSpec(name, summary, args, None, timeout, needs=needs))

    def get(self, name: str) -> ActionSpec[Any]:
        """The action called ``name``; KeyError naming the known ones otherwise."""
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown action {name!r} (known: {', '.join(self.names())})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def names(self) -> list[str]:
        return sorted(self._specs)

    def specs(self) -> list[ActionSpec[Any]]:
        return [self._specs[n] for n in self.names()]

    def missing(self, names: Iterable[str]) -> list[ActionSpec[Any]]:
        """The registered-but-unavailable actions among ``names`` (each once, sorted)."""
        return [self._specs[n] for n in sorted(set(names))
                if n in self._specs and not self._specs[n].available]


@dataclass(frozen=True)
class Attempt:
    """How one call of an action went, output redacted (shared by drills and failover)."""

    status: Literal["ok", "failed", "error"]
    output: str = ""
    error: str | None = None
    probes: tuple[ProbeResult, ...] = ()
    measures: Mapping[str, Measure] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def attempt(spec: ActionSpec[Any], ctx: ActionContext, args: Any) -> Attempt:
    """Call ``spec``: ok only when the result and every probe hold; errors become records.

    :class:`PlanbError` is the action saying it could not do its job; any other
    exception is a bug, logged with its traceback. KeyboardInterrupt propagates.
    """
    try:
        result = spec.call(ctx, args)
    except Interrupted:
        raise KeyboardInterrupt from None  # Ctrl-C inside a nested run: still Ctrl-C here
    except PlanbError as exc:
        return Attempt("error", error=ctx.redact(str(exc)))
    except Exception as exc:
        log.exception("action %s raised", spec.name)
        return Attempt("error", error=ctx.redact(f"{type(exc).__name__}: {exc}"))
    ok = result.ok and all(p.ok for p in result.probes)
    return Attempt("ok" if ok else "failed", ctx.redact(result.output), None, result.probes,
                   dict(result.measures))
