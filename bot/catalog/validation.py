"""Turn parsed YAML into catalog dataclasses, collecting every problem with its field path.

Agency staff edit the catalog by hand, so an error must say which file, which field and why,
and all errors are reported at once instead of one per run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field or '(top level)'}: {self.reason}"


class CatalogError(Exception):
    """The catalog is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"the SLA catalog has {len(problems)} problem(s):\n{listing}")


class _Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, path: str, reason: str) -> None:
        self.problems.append(Problem(self.file, path, reason))


def build(cls: type[T], data: Any, file: str) -> tuple[T | None, list[Problem]]:
    """Build `cls` from `data`; returns the object (None if invalid) and the problems."""
    collector = _Collector(file)
    value = _convert(cls, data, "", collector)
    if collector.problems:
        return None, collector.problems
    return value, []


_MISSING = object()


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _convert(tp: Any, value: Any, path: str, out: _Collector) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, path, out)
    if value is None:
        out.add(path, "is required but empty")
        return None
    if origin is Literal:
        if value not in args:
            out.add(path, f"must be one of {', '.join(map(str, args))}, not {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            out.add(path, f"must be a list, not {type(value).__name__}")
            return []
        return [_convert(args[0], item, _join(path, i), out) for i, item in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, path, out)
    if tp is bool:
        if not isinstance(value, bool):
            out.add(path, "must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            out.add(path, "must be a whole number, 0 or more")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            out.add(path, "must be a number, 0 or more")
            return value
        return float(value)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.add(path, "must be text; put quotes around numbers such as phone numbers")
        elif not isinstance(value, str) or not value.strip():
            out.add(path, "must be non-empty text")
        return value.strip() if isinstance(value, str) else value
    if tp is dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            out.add(path, f"must be a date written YYYY-MM-DD, not {value!r}")
            return None
    raise TypeError(f"unsupported type in catalog schema: {tp!r}")


def _convert_dataclass(cls: type, value: Any, path: str, out: _Collector) -> Any:
    if not isinstance(value, dict):
        out.add(path, f"must be a mapping of fields, not {type(value).__name__}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in value:
        if key not in fields:
            out.add(_join(path, str(key)), f"unknown field; allowed: {', '.join(fields)}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        raw = value.get(name, _MISSING)
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        if raw is _MISSING:
            if not has_default:
                out.add(_join(path, name), "is required")
            continue
        kwargs[name] = _convert(hints[name], raw, _join(path, name), out)
    if len(out.problems):
        return None
    return cls(**kwargs)
