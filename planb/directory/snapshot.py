"""Snapshots of the primary source: the normalised agents, to sync from while failover is on.

While the fallback is active the primary may be the compromised system, so the sync
will not read it; ``planb sync apply --from-snapshot FILE`` uses a snapshot taken
before (``planb sync plan --snapshot-out FILE``) instead. A snapshot holds the agents
as planb normalised them and the rejected records (so those are still kept, not
deactivated). It never holds password hashes: a sync from a snapshot copies no
password and leaves the ones already in the fallback as they are.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from planb.directory.model import Agent, Rejection, SourceResult
from planb.errors import UsageError
from planb.files import write_atomic

SCHEMA = "planb/sync-snapshot"
SCHEMA_VERSION = 1
_AGENT_FIELDS = {f.name for f in fields(Agent)} - {"password_hash"}
_REJECTION_FIELDS = {f.name for f in fields(Rejection)}


def snapshot_to_dict(result: SourceResult, taken_at: str | None = None) -> dict[str, Any]:
    """The snapshot as plain data (agents without their password hashes)."""
    agents = []
    for agent in result.agents:
        data = agent.public()
        data.pop("password", None)
        agents.append(data)
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "taken_at": taken_at or datetime.now(UTC).isoformat(timespec="seconds"),
        "source": result.source, "agents": agents,
        "rejections": [{f: getattr(r, f) for f in sorted(_REJECTION_FIELDS)}
                       for r in result.rejections],
    }


def write_snapshot(result: SourceResult, path: Path) -> None:
    """Write ``path`` (mode 0600: names and phone numbers are personal data) atomically."""
    text = json.dumps(snapshot_to_dict(result), ensure_ascii=False, indent=1) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text, 0o600)


def _agent(data: Any, where: str) -> Agent:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    unknown = sorted(set(data) - _AGENT_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}")
    for key in ("id", "login"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"{where}: {key} missing or not text")
    values = dict(data)
    groups = values.pop("groups", [])
    enabled = values.pop("enabled", True)
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ValueError(f"{where}: groups must be a list of names")
    if not isinstance(enabled, bool):
        raise ValueError(f"{where}: enabled must be true or false")
    for key, value in values.items():
        if not isinstance(value, str):
            raise ValueError(f"{where}: {key} must be text")
    return Agent(**values, enabled=enabled, groups=frozenset(groups))


def read_snapshot(path: Path) -> SourceResult:
    """Load a snapshot; UsageError naming the file and the bad entry."""
    shown = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{shown}: snapshot not found",
                         hint="snapshots are written by 'planb sync plan --snapshot-out FILE'"
                         ) from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{shown}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{shown}: cannot read: {type(exc).__name__}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"{shown}: not a planb sync snapshot")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise UsageError(f"{shown}: snapshot version {data.get('schema_version')!r}; this "
                         f"planb reads version {SCHEMA_VERSION}")
    try:
        agents = tuple(_agent(a, f"agents[{i}]") for i, a in enumerate(data["agents"]))
        rejections = tuple(Rejection(**{k: v for k, v in r.items() if k in _REJECTION_FIELDS})
                           for r in data.get("rejections", []))
        source = str(data["source"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{shown}: damaged snapshot: {exc}") from None
    ids = [a.id for a in agents]
    if len(set(ids)) != len(ids):
        raise UsageError(f"{shown}: damaged snapshot: an id appears twice")
    taken = data.get("taken_at", "?")
    return SourceResult(f"snapshot {path.name} of {source} taken {taken}", agents, rejections)
