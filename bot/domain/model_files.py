"""What the YAML-defined models share (courses, playbooks, the commission plan): cross-field errors that name
their field, and error messages that name the file, the list entry (by index and key) and the field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic import ValidationError


class FieldError(ValueError):
    """A cross-field error raised by a model validator, with the path of the field it belongs to."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


class _NoAliases(yaml.SafeLoader):
    """Safe YAML without aliases (`*name`): a model file has no use for them, and expanded they let a few lines
    grow into billions of nodes (an alias bomb) or into a structure that contains itself."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", mark)
        return super().compose_node(parent, index)


def load_yaml(text: str) -> object:
    """Like `yaml.safe_load`, refusing aliases (a `yaml.YAMLError`)."""
    return yaml.load(text, Loader=_NoAliases)  # noqa: S506 - a SafeLoader


def as_tuples(data: object) -> object:
    """YAML lists become tuples: the models are strict and frozen, and hold sequences as tuples."""
    if isinstance(data, list):
        return tuple(as_tuples(item) for item in data)
    if isinstance(data, dict):
        return {key: as_tuples(value) for key, value in data.items()}
    return data


def describe_errors(exc: ValidationError, source: str, data: Mapping[str, Any], containers: Sequence[str]) -> list[str]:
    """One line per problem: `file: lessons[2] (key): quiz[1].correct: message`. Entries of the top-level lists
    named in `containers` are named by index and key. A list whose items failed also reports itself: only the
    innermost errors are kept."""
    errors = exc.errors()
    errors = [e for e in errors if not any(o is not e and o["loc"][: len(e["loc"])] == e["loc"] for o in errors)]
    return [_issue(error, source, data, containers) for error in errors]


def _issue(error: Mapping[str, Any], source: str, data: Mapping[str, Any], containers: Sequence[str]) -> str:
    loc = [part for part in error["loc"] if not (isinstance(part, str) and ("[" in part or part == "function-after"))]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, FieldError):
        loc += cause.path
    where = ""
    for container in containers:
        if len(loc) >= 2 and loc[0] == container and isinstance(loc[1], int):
            index = loc[1]
            items = data.get(container)
            item = items[index] if isinstance(items, list) and index < len(items) else None
            key = item.get("key") if isinstance(item, dict) else None
            where = f"{container}[{index}]" + (f" ({key})" if isinstance(key, str) else "") + ": "
            loc = loc[2:]
            break
    dotted = ""
    for part in loc:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else str(part))
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "missing":
        message = "required, but missing"
    else:
        message = str(cause) if isinstance(cause, Exception) else str(error["msg"])
    return f"{source}: {where}{dotted or '(top level)'}: {message}"
