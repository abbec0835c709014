"""The plan as JSON a person can read, and back (``planb sync apply plan.json``).

Layout: schema and version, summary counts, the source, then ``ldap``, ``matrix`` and
``enrolment`` sections (a plan written before enrolment, without it, reads as no
codes), then collisions, rejections and kept entries; lists in a stable order
(by login). Enrolment codes appear as login and serial (``enrolment``), never a
code nor its hash. Password hashes are never written: an add says ``"password": true``
when a hash will be copied, an update says ``"password_changed": true``; apply
takes the hash from a fresh read of the source (:func:`attach_passwords`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, get_args, get_origin, get_type_hints

from planb.directory.enrolment_plan import CodeIssue, CodeRevoke
from planb.directory.identifiers import Collision
from planb.directory.model import Agent, Rejection
from planb.directory.plan import (
    AgentAdd,
    AgentUpdate,
    DisplayNameChange,
    FieldChange,
    Kept,
    MatrixCreate,
    Move,
    Plan,
    RoomChange,
    RoomCreate,
    RoomOpen,
    StatusChange,
)
from planb.errors import UsageError

SCHEMA = "planb/sync-plan"
SCHEMA_VERSION = 1

#: JSON section/key -> Plan attribute, in the order they are written.
_SECTIONS: dict[str, dict[str, str]] = {
    "ldap": {"add": "ldap_adds", "update": "ldap_updates", "deactivate": "ldap_deactivations",
             "reactivate": "ldap_reactivations", "move": "moves"},
    "matrix": {"create": "matrix_creates", "deactivate": "matrix_deactivations",
               "reactivate": "matrix_reactivations", "display_name": "display_names",
               "room_create": "room_creates", "room_change": "room_changes",
               "room_open": "room_opens"},
    "enrolment": {"issue": "code_issues", "revoke": "code_revocations"},
    "reports": {"collisions": "collisions", "rejections": "rejections", "kept": "kept"},
}
_ITEM_TYPES: dict[str, type] = {
    "ldap_adds": AgentAdd, "ldap_updates": AgentUpdate, "ldap_deactivations": StatusChange,
    "ldap_reactivations": StatusChange, "moves": Move, "matrix_creates": MatrixCreate,
    "matrix_deactivations": StatusChange, "matrix_reactivations": StatusChange,
    "display_names": DisplayNameChange, "room_creates": RoomCreate,
    "room_changes": RoomChange, "room_opens": RoomOpen, "collisions": Collision,
    "rejections": Rejection, "kept": Kept,
    "code_issues": CodeIssue, "code_revocations": CodeRevoke,
}


def _plain(obj: Any) -> Any:
    if isinstance(obj, AgentAdd):
        data = obj.agent.public()
        data.pop("password")
        return {**data, "localpart": obj.localpart, "password": obj.password}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.metadata.get("secret")}
    if isinstance(obj, tuple | list):
        return [_plain(v) for v in obj]
    if isinstance(obj, frozenset):
        return sorted(obj)
    return obj


def plan_to_dict(plan: Plan, meta: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The plan as plain data in writing order; ``meta`` (site, time...) is kept as is."""
    data: dict[str, Any] = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
                            "summary": plan.summary()}
    if meta:
        data["meta"] = dict(meta)
    data["source"] = {"name": plan.source, "agents": plan.source_agents,
                      "active_before": plan.active_before}
    for section, keys in _SECTIONS.items():
        body = {key: _plain(getattr(plan, attr)) for key, attr in keys.items()}
        if section == "reports":
            data.update(body)
        else:
            data[section] = body
    return data


def plan_to_json(plan: Plan, meta: Mapping[str, str] | None = None) -> str:
    """Indented UTF-8 JSON (accents kept readable), ending with a newline."""
    return json.dumps(plan_to_dict(plan, meta), indent=2, ensure_ascii=False) + "\n"


@functools.cache
def _schema(tp: type) -> tuple[dict[str, Any], frozenset[str]]:
    """Type hints and JSON-visible field names of a record class (cached: 9,000 items)."""
    names = frozenset(f.name for f in dataclasses.fields(tp) if not f.metadata.get("secret"))
    return get_type_hints(tp), names


def _build(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        if isinstance(value, list):
            return tuple(str(v) for v in value)
        return value
    if origin is tuple:
        (item,) = (a for a in get_args(tp) if a is not Ellipsis)
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list")
        return tuple(_build(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is frozenset:
        return frozenset(value)
    if tp is AgentAdd:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object")
        value = dict(value)
        localpart, password = value.pop("localpart", None), bool(value.pop("password", False))
        return AgentAdd(_build(Agent, value, where), localpart, password)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object")
        cls: Any = tp
        hints, names = _schema(cls)
        unknown = sorted(set(value) - names)
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r}")
        return cls(**{k: _build(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    if tp in (str, bool, int) and not isinstance(value, tp):
        raise ValueError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def plan_from_dict(data: Mapping[str, Any], shown: str = "plan.json") -> Plan:
    """Rebuild a Plan written by :func:`plan_to_dict`; UsageError naming what is wrong."""
    if data.get("schema") != SCHEMA:
        raise UsageError(f"{shown}: not a planb sync plan (schema {data.get('schema')!r})")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise UsageError(f"{shown}: plan schema version {data.get('schema_version')!r}; this "
                         f"planb reads version {SCHEMA_VERSION}",
                         hint="compute a fresh plan with 'planb sync plan'")
    try:
        source = data["source"]
        kwargs: dict[str, Any] = {"source": source["name"], "source_agents": source["agents"],
                                  "active_before": source["active_before"]}
        for section, keys in _SECTIONS.items():
            if section == "enrolment" and section not in data:
                continue  # written before enrolment codes existed
            body = data if section == "reports" else data[section]
            for key, attr in keys.items():
                items = body[key]
                if not isinstance(items, list):
                    raise ValueError(f"{section}.{key}: expected a list")
                kwargs[attr] = tuple(_build(_ITEM_TYPES[attr], item, f"{section}.{key}[{i}]")
                                     for i, item in enumerate(items))
        plan = Plan(**kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{shown}: damaged plan: {exc}",
                         hint="compute a fresh plan with 'planb sync plan'") from None
    summary = data.get("summary")
    if isinstance(summary, dict) and "enrolment" not in data:
        summary = {**{k: 0 for k in ("code_issue", "code_renew", "code_revoke")}, **summary}
    if plan.summary() != summary:
        raise UsageError(f"{shown}: the summary does not match the plan's content "
                         "(edited by hand?)", hint="compute a fresh plan with 'planb sync plan'")
    return plan


def plan_from_json(text: str, shown: str = "plan.json") -> Plan:
    """Parse and rebuild a plan file."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{shown}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{shown}: not a planb sync plan")
    return plan_from_dict(data, shown)


def attach_passwords(plan: Plan, agents: Mapping[str, Agent]) -> Plan:
    """Put the password hashes back into a plan read from JSON, from a fresh source read.

    ``agents`` maps id -> Agent. An add or update flagged for a password whose agent
    no longer has a hash loses the flag (nothing to copy).
    """
    adds = tuple(
        AgentAdd(dataclasses.replace(a.agent, password_hash=src.password_hash),
                 a.localpart, src.password_hash is not None)
        if a.password and (src := agents.get(a.agent.id)) is not None
        else dataclasses.replace(a, password=False) if a.password else a
        for a in plan.ldap_adds
    )
    updates = tuple(
        dataclasses.replace(u, password_hash=agents[u.id].password_hash,
                            password_changed=agents[u.id].password_hash is not None)
        if u.password_changed and u.id in agents
        else dataclasses.replace(u, password_changed=False) if u.password_changed else u
        for u in plan.ldap_updates
    )
    return dataclasses.replace(plan, ldap_adds=adds, ldap_updates=updates)


__all__ = ["FieldChange", "attach_passwords", "plan_from_dict", "plan_from_json",
           "plan_to_dict", "plan_to_json"]
