"""Locked fields: paths a template forbids every layer above it to touch.

A platform team locks `agent.image` so that no session can run an unapproved image, or
`podTemplate` so that no session can relax pod security. A lock is only worth something if it
cannot be side-stepped, so a layer *touches* a locked path when it

* sets the path itself, or sets it to `null`;
* sets anything below it (`podTemplate` locked, session sets `podTemplate.labels`);
* replaces or removes an object that contains it (`agent.image` locked, session sets
  `agent: null`). Setting other keys of that object merges around the lock and is allowed.

Locks apply to every layer above the locking template — child templates and the session — and
accumulate along the chain. A lock naming a path that is not a configuration field would
silently protect nothing, so it is a problem of its own (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from agent_sessions.api.template import ConfigBlocks

from .layers import Layer
from .problems import Problem


def lock_problems(layers: Sequence[Layer]) -> list[Problem]:
    """Every touch of a locked path by a layer above its locking template (layers lowest
    first), and every lock that names no configuration field."""
    problems: list[Problem] = []
    locks: dict[str, str] = {}  # locked path → the lowest template locking it
    for layer in layers:
        for path, locker in locks.items():
            problems.extend(_touches(layer, path, locker))
        for path in layer.locked_fields:
            if not is_config_path(path):
                problems.append(
                    Problem(
                        field="spec.lockedFields",
                        layer=layer.label,
                        message=f"{path!r} is not a configuration field, so it would lock nothing",
                        subject=layer.label,
                    )
                )
            locks.setdefault(path, layer.label)
    return problems


def _touches(layer: Layer, locked: str, locker: str) -> Iterator[Problem]:
    segments = locked.split(".")
    node: Mapping[str, Any] = layer.blocks
    for depth, segment in enumerate(segments, start=1):
        if segment not in node:
            return
        value = node[segment]
        here = ".".join(segments[:depth])
        if depth == len(segments):
            yield from _touches_locked(layer, here, value, locker)
            return
        if not isinstance(value, dict):
            verb = "removed" if value is None else "replaced"
            yield Problem(
                field=f"spec.{here}",
                layer=layer.label,
                message=f"contains {locked}, locked by {locker} ({verb} by {layer.label})",
            )
            return
        node = value


def _touches_locked(layer: Layer, locked: str, value: Any, locker: str) -> Iterator[Problem]:
    if isinstance(value, dict):
        # Setting keys below the locked path: one problem per key, an empty object is a no-op.
        for key, member in value.items():
            verb = "removed" if member is None else "set"
            yield Problem(
                field=f"spec.{locked}.{key}",
                layer=layer.label,
                message=f"inside {locked}, locked by {locker} ({verb} by {layer.label})",
            )
        return
    verb = "removed" if value is None else "set"
    yield Problem(
        field=f"spec.{locked}",
        layer=layer.label,
        message=f"locked by {locker} ({verb} by {layer.label})",
    )


def is_config_path(path: str) -> bool:
    """Whether a dotted path names a field of the config blocks (or a key of a map field,
    e.g. `podTemplate.nodeSelector.pool`)."""
    target: type[BaseModel] | str = ConfigBlocks
    for segment in path.split("."):
        if isinstance(target, str):
            if target != "map":
                return False
            target = "leaf"
            continue
        fields = {(info.alias or name): info for name, info in target.model_fields.items()}
        if segment not in fields:
            return False
        target = _target(fields[segment].annotation)
    return True


def _target(annotation: Any) -> type[BaseModel] | str:
    """What a field holds: a model to descend into, `"map"` (any key) or `"leaf"`."""
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
        if member is dict or get_origin(member) is dict:
            return "map"
    return "leaf"


def _members(annotation: Any) -> Iterator[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        yield from _members(get_args(annotation)[0])
    elif origin is Union or origin is UnionType:
        for member in get_args(annotation):
            yield from _members(member)
    else:
        yield annotation
