"""Strict YAML-to-dataclass loading: unknown keys, wrong types and missing keys are errors.

Every error names the file, the dotted key path and the line, so a person can go
straight to it. Dataclasses are the schema: a field's type says what is accepted,
a field without a default is required. Used by :mod:`planb.config` and by anything
else that reads a user-written YAML file (scenarios, for instance).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from planb.errors import ConfigError

T = TypeVar("T")


class Secret(str):
    """A string that must never be shown: its repr and masked form hide it."""

    MASK = "********"

    def __repr__(self) -> str:
        return f"Secret({self.MASK!r})"


@dataclasses.dataclass(frozen=True)
class _Located:
    """A YAML document turned into Python values, with the line of each key path."""

    value: Any
    lines: dict[tuple[str, ...], int]


def _compose(text: str, path: str) -> _Located:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise ConfigError(f"YAML syntax error: {problem}", path=path, line=line) from None
    except yaml.YAMLError as exc:  # pragma: no cover - other YAML errors carry no mark
        raise ConfigError(f"YAML error: {exc}", path=path) from None
    lines: dict[tuple[str, ...], int] = {}
    if node is None:
        return _Located({}, lines)
    return _Located(_node_value(node, (), lines, path), lines)


def _node_value(
    node: yaml.Node, key_path: tuple[str, ...], lines: dict[tuple[str, ...], int], path: str
) -> Any:
    lines.setdefault(key_path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*key_path, key)
            if key in result:
                raise ConfigError(
                    "duplicate key", path=path, key=".".join(child),
                    line=key_node.start_mark.line + 1,
                )
            lines[child] = key_node.start_mark.line + 1
            result[key] = _node_value(value_node, child, lines, path)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _node_value(item, (*key_path, f"[{index}]"), lines, path)
            for index, item in enumerate(node.value)
        ]
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node)
    finally:
        loader.dispose()


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            Path: "a path", Secret: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


class _Builder:
    """Walks a dataclass schema against loaded YAML values, raising ConfigError."""

    def __init__(self, path: str, lines: dict[tuple[str, ...], int]) -> None:
        self.path = path
        self.lines = lines

    def fail(self, key_path: tuple[str, ...], message: str) -> ConfigError:
        line = None
        for depth in range(len(key_path), -1, -1):
            if key_path[:depth] in self.lines:
                line = self.lines[key_path[:depth]]
                break
        return ConfigError(message, path=self.path, key=".".join(key_path) or None, line=line)

    def build(self, tp: Any, value: Any, key_path: tuple[str, ...]) -> Any:
        origin = get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if value is None and len(args) < len(get_args(tp)):
                return None
            if len(args) == 1:
                return self.build(args[0], value, key_path)
            raise TypeError(f"unsupported union {tp}")  # pragma: no cover - schema bug
        if dataclasses.is_dataclass(tp):
            return self.build_dataclass(tp, value, key_path)
        if origin is Literal:
            if value not in get_args(tp):
                raise self.fail(key_path, f"must be {_type_name(tp)}, not {value!r}")
            return value
        if origin is list:
            if not isinstance(value, list):
                raise self.fail(key_path, f"must be {_type_name(tp)}")
            (item_type,) = get_args(tp)
            return tuple(
                self.build(item_type, item, (*key_path, f"[{i}]")) for i, item in enumerate(value)
            )
        if origin is dict:
            if not isinstance(value, dict):
                raise self.fail(key_path, "must be a mapping")
            _, value_type = get_args(tp)
            return {
                str(k): self.build(value_type, v, (*key_path, str(k))) for k, v in value.items()
            }
        return self.build_scalar(tp, value, key_path)

    def build_scalar(self, tp: Any, value: Any, key_path: tuple[str, ...]) -> Any:
        if tp is bool:
            if isinstance(value, bool):
                return value
        elif tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif tp is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif tp in (str, Secret):
            if isinstance(value, str) and value.strip():
                return tp(value)
            if isinstance(value, str):
                raise self.fail(key_path, "must not be empty")
        elif tp is Path:
            if isinstance(value, str) and value.strip():
                return Path(value)
        else:  # pragma: no cover - schema bug
            raise TypeError(f"unsupported type {tp}")
        shown = "nothing" if value is None else f"{type(value).__name__} {value!r}"
        raise self.fail(key_path, f"must be {_type_name(tp)}, got {shown}")

    def build_dataclass(self, cls: Any, value: Any, key_path: tuple[str, ...]) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.fail(key_path, f"must be a mapping, got {type(value).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        hints = get_type_hints(cls)
        unknown = sorted(set(value) - set(fields))
        if unknown:
            known = ", ".join(sorted(fields))
            raise self.fail(
                (*key_path, unknown[0]), f"unknown key (known keys here: {known})"
            )
        kwargs: dict[str, Any] = {}
        for name, field in fields.items():
            child = (*key_path, name)
            if name in value:
                kwargs[name] = self.build(hints[name], value[name], child)
            elif (field.default is dataclasses.MISSING
                  and field.default_factory is dataclasses.MISSING):
                if dataclasses.is_dataclass(hints[name]):
                    kwargs[name] = self.build(hints[name], {}, child)
                else:
                    raise self.fail(child, "required key is missing")
        try:
            obj = cls(**kwargs)
        except ValueError as exc:
            raise self.fail(key_path, str(exc)) from None
        return obj


def load_yaml_as(cls: type[T], text: str, path: str) -> T:
    """Parse ``text`` (from file ``path``) and build an instance of dataclass ``cls``."""
    located = _compose(text, path)
    builder = _Builder(path, located.lines)
    result: T = builder.build(cls, located.value, ())
    return result


def as_plain(obj: Any, *, mask_secrets: bool = True) -> Any:
    """Turn a schema instance back into plain YAML/JSON-able values, secrets masked."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: as_plain(getattr(obj, f.name), mask_secrets=mask_secrets)
                for f in dataclasses.fields(obj) if not f.metadata.get("internal")}
    if isinstance(obj, Secret):
        return Secret.MASK if mask_secrets else str(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple | list):
        return [as_plain(v, mask_secrets=mask_secrets) for v in obj]
    if isinstance(obj, dict):
        return {k: as_plain(v, mask_secrets=mask_secrets) for k, v in obj.items()}
    return obj
