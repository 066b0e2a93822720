"""Strict YAML loading and field checks for the policy files (``users.yaml``, ``policies.yaml``).

:func:`load_yaml` reads a file into a mapping, refusing duplicate keys; :class:`Checker`
validates its fields. Every failure is a :class:`~helpers.errors.PolicyFileError` naming the
file, the entry and the problem. Shared by :mod:`helpers.gateway.policies.rbac` and
:mod:`helpers.gateway.policies.custom_policies`. Introduced in ``05_policies.ipynb``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from .errors import PolicyFileError

__all__ = ["Checker", "line_of", "load_yaml"]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


class _Lines(dict[Any, Any]):
    """A mapping read from YAML that remembers where it was: ``line`` is where it starts,
    ``lines[key]`` where each value starts (1-based), so errors can point at the line."""

    line: int = 0
    lines: dict[Any, int]


class _LineList(list[Any]):
    """A sequence read from YAML; ``lines[i]`` is the line of item ``i`` (1-based)."""

    line: int = 0
    lines: list[int]


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                )
            seen.add(key_node.value)
    mapping = _Lines(loader.construct_mapping(node, deep=deep))
    mapping.line = node.start_mark.line + 1
    mapping.lines = {
        k.value: v.start_mark.line + 1 for k, v in node.value if isinstance(k, yaml.ScalarNode)
    }
    return mapping


def _sequence(loader: _StrictLoader, node: yaml.SequenceNode) -> Any:
    items = _LineList(loader.construct_sequence(node, deep=True))
    items.line = node.start_mark.line + 1
    items.lines = [item.start_mark.line + 1 for item in node.value]
    return items


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)
_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def line_of(value: Any, key: Any = None) -> int | None:
    """The line (1-based) where ``value`` starts in its YAML file, or where ``value[key]``
    does (a mapping's key or a list's index); None when the value was not read from YAML."""
    if key is None:
        return getattr(value, "line", None) or None
    lines = getattr(value, "lines", None)
    if isinstance(lines, dict):
        found = lines.get(key)
        return found if isinstance(found, int) else None
    if isinstance(lines, list) and isinstance(key, int) and 0 <= key < len(lines):
        item = lines[key]
        return item if isinstance(item, int) else None
    return None


def load_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML file into a mapping; every failure is a PolicyFileError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyFileError(str(path), f"cannot read the file ({exc.strerror or exc})") from None
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyFileError(str(path), f"YAML syntax error{where}: {problem}") from None
    if not isinstance(doc, dict):
        raise PolicyFileError(str(path), f"the file must hold a mapping, not {_kind(doc)}")
    return doc


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


class Checker:
    """Small validators that raise PolicyFileError(path, problem, rule) with the field named.

    ``line``, when set, is the line the entry being checked starts on; a failure's problem
    then begins with ``line N:`` (an explicit ``line=`` points closer still).
    """

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.line: int | None = None

    def fail(self, problem: str, rule: str | None, line: int | None = None) -> NoReturn:
        line = line or self.line
        raise PolicyFileError(self.path, f"line {line}: {problem}" if line else problem, rule)

    def mapping(self, value: Any, field: str, rule: str | None) -> dict[Any, Any]:
        if not isinstance(value, dict):
            self.fail(f"{field!r} must be a mapping, not {_kind(value)}", rule)
        return value

    def keys(
        self, value: Any, spec: Mapping[str, bool], rule: str | None, what: str
    ) -> dict[str, Any]:
        """Check a mapping against ``{key: required}``: unknown keys and missing ones fail."""
        if not isinstance(value, dict):
            self.fail(f"{what} must be a mapping, not {_kind(value)}", rule)
        for key in value:
            if key not in spec:
                near = difflib.get_close_matches(str(key), list(spec), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                self.fail(f"unknown key {key!r} in {what} (allowed: {', '.join(spec)}){hint}", rule)
        for key, required in spec.items():
            if required and key not in value:
                self.fail(f"missing required key {key!r} in {what}", rule)
        return value

    def string(self, value: Any, field: str, rule: str | None, empty: bool = False) -> str:
        if isinstance(value, bool):  # YAML 1.1 reads yes/no/on/off as booleans
            self.fail(f"{field!r} must be a string, not {value!r} (quote it: '...')", rule)
        if not isinstance(value, str):
            self.fail(f"{field!r} must be a string, not {_kind(value)}", rule)
        if not empty and not value.strip():
            self.fail(f"{field!r} must not be empty", rule)
        return value

    def strings(self, value: Any, field: str, rule: str | None, empty: bool = True) -> list[str]:
        if not isinstance(value, list):
            self.fail(f"{field!r} must be a list of strings, not {_kind(value)}", rule)
        if not empty and not value:
            self.fail(f"{field!r} must not be an empty list", rule)
        return [self.string(v, f"{field}[{i}]", rule) for i, v in enumerate(value)]

    def boolean(self, value: Any, field: str, rule: str | None) -> bool:
        if not isinstance(value, bool):
            self.fail(f"{field!r} must be true or false, not {value!r}", rule)
        return value

    def positive_int(self, value: Any, field: str, rule: str | None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.fail(f"{field!r} must be a whole number above 0, not {value!r}", rule)
        return value

    def positive_number(self, value: Any, field: str, rule: str | None) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value <= 0:
            self.fail(f"{field!r} must be a number above 0, not {value!r}", rule)
        return float(value)
