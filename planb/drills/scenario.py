"""Scenarios as data: YAML files naming registered actions, loaded strictly.

A scenario file (``planb/data/scenarios/NAME.yml`` shipped, ``<state_dir>/scenarios/NAME.yml``
site-local, which wins over a shipped one of the same name)::

    name: primary-outage            # must match the file name
    description: The primary host loses its network; the fallback takes over.
    objectives: {rto_seconds: 60}   # optional: overrides the site's objectives
    # or {rto_objective: restore_rto_seconds}: the site's objective the RTO is held to
    # (rto_seconds by default: a failover; restore_rto_seconds: a host rebuilt and restored)
    verify_timeout: 300             # how long verify rounds are retried (seconds)
    verify_interval: 2              # pause between two verify rounds
    steady_state: [STEP...]         # checks before the fault (a failure: FAILED)
    prepare: [STEP...]              # optional: set the scene (a failure: FAILED)
    fault: [STEP...]                # the fault; RTO starts with its first step
    activate: [STEP...]
    verify: [STEP...]               # repeated until one round passes: RTO ends there
    restore: [STEP...]              # always runs, also after a failure or Ctrl-C
    steady_state_after: [STEP...]

    STEP = {action: area.verb, name: optional text, with: {ARGS}, timeout: seconds}

Unknown keys, wrong types and unknown actions are errors naming the file and line;
``with:`` is checked against the action's own argument dataclass.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

import planb
from planb.engine.actions import ActionRegistry
from planb.errors import ConfigError, UsageError
from planb.schema import load_yaml_as

log = logging.getLogger(__name__)

Phase = Literal["steady_state", "prepare", "fault", "activate", "verify", "restore",
                "steady_state_after"]
PHASES: tuple[Phase, ...] = get_args(Phase)
SITE_SCENARIOS_DIR = "scenarios"


@dataclass(frozen=True)
class StepSpec:
    """One step as written (``with:`` is read separately: see :func:`_split_with`)."""

    action: str
    name: str | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be positive")


@dataclass(frozen=True)
class ScenarioObjectives:
    """Objectives a scenario sets instead of the site's."""

    rto_seconds: int | None = None
    #: Which of the site's objectives the RTO is held to when rto_seconds is not set.
    rto_objective: Literal["rto_seconds", "restore_rto_seconds"] = "rto_seconds"

    def __post_init__(self) -> None:
        if self.rto_seconds is not None and self.rto_seconds <= 0:
            raise ValueError("rto_seconds must be positive")


@dataclass(frozen=True)
class ScenarioSpec:
    """A scenario file as written."""

    name: str
    description: str
    fault: list[StepSpec]
    verify: list[StepSpec]
    objectives: ScenarioObjectives = field(default_factory=ScenarioObjectives)
    verify_timeout: float = 300.0
    verify_interval: float = 2.0
    steady_state: list[StepSpec] = field(default_factory=list)
    prepare: list[StepSpec] = field(default_factory=list)
    activate: list[StepSpec] = field(default_factory=list)
    restore: list[StepSpec] = field(default_factory=list)
    steady_state_after: list[StepSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.fault or not self.verify:
            raise ValueError("a scenario needs at least one fault step and one verify step")
        if self.verify_timeout <= 0 or self.verify_interval < 0:
            raise ValueError("verify_timeout must be positive and verify_interval not negative")


@dataclass(frozen=True)
class Step:
    """One resolved step: its action exists and its arguments are typed."""

    phase: Phase
    index: int
    name: str
    action: str
    args: Any
    timeout: float
    line: int | None


@dataclass(frozen=True)
class Scenario:
    """A loaded, checked scenario."""

    name: str
    description: str
    source: str
    sha256: str
    rto_seconds: int | None
    verify_timeout: float
    verify_interval: float
    steps: tuple[Step, ...]
    #: The site's objective the RTO is held to when ``rto_seconds`` is None.
    rto_objective: Literal["rto_seconds", "restore_rto_seconds"] = "rto_seconds"

    def phase(self, phase: Phase) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.phase == phase)

    @property
    def actions(self) -> set[str]:
        return {s.action for s in self.steps}


@dataclass(frozen=True)
class _WithBlock:
    """Where one step's ``with:`` value is in the text."""

    phase: str
    index: int
    text: str  # the value alone, at its original line and column
    line: int


def _split_with(text: str) -> tuple[str, dict[tuple[str, int], _WithBlock], dict[tuple[str, int],
                                                                                   int]]:
    """Blank out each step's ``with:`` (kept line for line), and return the blocks apart.

    ``with`` is a Python keyword, so no schema dataclass can have it as a field; and its
    value is typed by the action, known only once ``action:`` is read. So the file is
    loaded twice: once without the ``with:`` entries (same lines, so errors point right),
    then each block alone as its action's argument dataclass. Also returns each step's
    ``action:`` line. A file that is not YAML is left for the strict loader to report.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return text, {}, {}
    blocks: dict[tuple[str, int], _WithBlock] = {}
    action_lines: dict[tuple[str, int], int] = {}
    chars = list(text)
    if not isinstance(root, yaml.MappingNode):
        return text, blocks, action_lines
    for key, value in root.value:
        if key.value not in PHASES or not isinstance(value, yaml.SequenceNode):
            continue
        for index, step in enumerate(value.value):
            if not isinstance(step, yaml.MappingNode):
                continue
            for step_key, step_value in step.value:
                if step_key.value == "action":
                    action_lines[(key.value, index)] = step_key.start_mark.line + 1
                if step_key.value != "with":
                    continue
                start, end = step_value.start_mark, step_value.end_mark
                block = "\n" * start.line + " " * start.column + text[start.index:end.index]
                blocks[(key.value, index)] = _WithBlock(key.value, index, block,
                                                        step_key.start_mark.line + 1)
                for i in range(step_key.start_mark.index, end.index):
                    if chars[i] != "\n":
                        chars[i] = " "
    return "".join(chars), blocks, action_lines


def _args_error(exc: ConfigError, prefix: str, path: str, line: int | None) -> ConfigError:
    """Re-anchor an error from a ``with:`` block under the step's key path."""
    where = path + (f":{exc.line}" if exc.line is not None else "") + (
        f": {exc.key}" if exc.key else "")
    message = exc.message[len(where) + 2:] if exc.message.startswith(where) else exc.message
    key = f"{prefix}.{exc.key}" if exc.key else prefix
    return ConfigError(message, path=path, key=key, line=exc.line or line, hint=exc.hint)


def parse_scenario(text: str, path: str, registry: ActionRegistry) -> Scenario:
    """Build a :class:`Scenario` from YAML ``text`` read from ``path``; ConfigError if wrong."""
    structural, blocks, action_lines = _split_with(text)
    try:
        spec = load_yaml_as(ScenarioSpec, structural, path)
    except ConfigError as exc:
        # The schema cannot know about the ``with:`` read apart: name it among the keys.
        exc.args = (exc.message.replace("known keys here: action, name, timeout)",
                                        "known keys here: action, name, timeout, with)"),)
        exc.message = exc.args[0]
        raise

    steps: list[Step] = []
    for phase in PHASES:
        for index, step in enumerate(getattr(spec, phase)):
            key = f"{phase}.[{index}]"
            line = action_lines.get((phase, index))
            try:
                action = registry.get(step.action)
            except KeyError as exc:
                raise ConfigError(str(exc.args[0]), path=path, key=f"{key}.action",
                                  line=line) from None
            block = blocks.get((phase, index))
            try:
                args = load_yaml_as(action.args_type, block.text if block else "", path)
            except ConfigError as exc:
                raise _args_error(exc, f"{key}.with", path,
                                  block.line if block else line) from None
            steps.append(Step(phase=phase, index=index, name=step.name or step.action,
                              action=step.action, args=args,
                              timeout=step.timeout or action.default_timeout, line=line))
    return Scenario(
        name=spec.name, description=spec.description.strip(), source=path,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        rto_seconds=spec.objectives.rto_seconds, rto_objective=spec.objectives.rto_objective,
        verify_timeout=spec.verify_timeout,
        verify_interval=spec.verify_interval, steps=tuple(steps),
    )


def load_scenario_file(path: Path, registry: ActionRegistry) -> Scenario:
    """Read and check one scenario file; its ``name`` must be its file name."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from None
    scenario = parse_scenario(text, str(path), registry)
    if scenario.name != path.stem:
        raise ConfigError(f"name {scenario.name!r} differs from the file name {path.name!r}",
                          path=str(path), key="name")
    return scenario


def shipped_scenarios_dir() -> Path:
    """The scenarios shipped inside the package."""
    return planb.data_path("scenarios")


def scenario_files(state_dir: Path | None) -> dict[str, Path]:
    """Scenario name -> file: shipped ones, then site-local ones (which win)."""
    found: dict[str, Path] = {}
    folders = [shipped_scenarios_dir()]
    if state_dir is not None:
        folders.append(state_dir / SITE_SCENARIOS_DIR)
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yml")):
            if path.stem in found:
                log.info("site scenario %s replaces %s", path, found[path.stem])
            found[path.stem] = path
    return found


def load_scenario(name: str, state_dir: Path | None, registry: ActionRegistry) -> Scenario:
    """The scenario called ``name`` (site-local first); UsageError listing the known ones."""
    files = scenario_files(state_dir)
    if name not in files:
        known = ", ".join(sorted(files)) or "none"
        raise UsageError(f"no scenario named {name!r} (known: {known})",
                         hint=f"site scenarios go in {state_dir}/{SITE_SCENARIOS_DIR}/NAME.yml"
                         if state_dir else None)
    return load_scenario_file(files[name], registry)


def load_all(state_dir: Path | None, registry: ActionRegistry) -> list[Scenario]:
    """Every scenario, checked (the first bad file raises)."""
    return [load_scenario_file(path, registry)
            for _, path in sorted(scenario_files(state_dir).items())]


def scenario_summaries(state_dir: Path | None) -> list[dict[str, str]]:
    """Each scenario (shipped and site-local): ``name`` and its one-line ``description``.

    Only reads the files (a broken one is listed with an empty description); for the
    runbooks and listings, not for running.
    """
    found = []
    for name, path in sorted(scenario_files(state_dir).items()):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            data = None
        description = data.get("description", "") if isinstance(data, Mapping) else ""
        found.append({"name": name, "description": " ".join(str(description).split())})
    return found
