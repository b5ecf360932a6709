"""Configuration values that remember which layer set them.

`explain` must say, for every field, which layer it came from, and problems must name the layer
that set a bad value. Rather than recomputing that afterwards, each layer's values are wrapped
once (`trace`) in leaves that carry their layer's label; merging then moves whole leaves around,
and `untrace` turns the winner back into a plain dict plus a path → layer map.

An explicit `null` is kept during merging as a *tombstone* leaf (`Leaf(None, layer)`), so the
layer that removed a value is still known at the end (`removed`), and a later layer can set the
path again.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from .list_keys import KEYED_LISTS
from .paths import child_path, item_paths


@dataclass(frozen=True)
class Leaf:
    """A value set by one layer: a scalar, an atomic list, an empty object, one item of a
    merge-by-key list, or `None` — a tombstone: the layer removed what was inherited."""

    value: Any
    layer: str


@dataclass(frozen=True)
class KeyedList:
    """A merge-by-key list: each item remembers its own layer."""

    items: tuple[Leaf, ...]
    layer: str
    """The last layer that wrote the list: the origin of an empty list."""


Traced: TypeAlias = "Leaf | KeyedList | dict[str, Traced]"
"""A non-empty object is a dict of traced members; everything else is a Leaf or KeyedList."""


def trace(blocks: Mapping[str, Any], layer: str) -> dict[str, Traced]:
    """Wrap one layer's config blocks; the input is copied, never shared."""
    return {key: _trace(value, layer, (key,)) for key, value in blocks.items()}


def _trace(value: Any, layer: str, path: tuple[str, ...]) -> Traced:
    if isinstance(value, dict) and value:
        return {key: _trace(member, layer, path + (key,)) for key, member in value.items()}
    if isinstance(value, list) and path in KEYED_LISTS:
        return KeyedList(tuple(Leaf(copy.deepcopy(item), layer) for item in value), layer)
    return Leaf(copy.deepcopy(value), layer)


@dataclass(frozen=True)
class Untraced:
    """A merged configuration taken apart again."""

    config: dict[str, Any]
    """Plain values; tombstones dropped, and objects emptied only by tombstones dropped too."""
    origins: dict[str, str]
    """Every leaf path → the layer that set it."""
    removed: dict[str, str]
    """Every path a `null` removed (and nothing set again) → the layer that removed it."""


def untrace(tree: Mapping[str, Traced]) -> Untraced:
    """Plain config, origins and removals of a merged tree."""
    result = Untraced(config={}, origins={}, removed={})
    result.config.update(_untrace_object(tree, (), "", result))
    return result


def _untrace_object(tree: Mapping[str, Traced], path: tuple[str, ...], written: str, out: Untraced) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, node in tree.items():
        child = path + (key,)
        child_written = child_path(written, key)
        if isinstance(node, dict):
            members = _untrace_object(node, child, child_written, out)
            if members:
                plain[key] = members
        elif isinstance(node, KeyedList):
            plain[key] = [copy.deepcopy(leaf.value) for leaf in node.items]
            if node.items:
                for item_written, leaf in zip(item_paths(child, child_written, plain[key]), node.items):
                    out.origins[item_written] = leaf.layer
            else:
                out.origins[child_written] = node.layer
        elif node.value is None:
            out.removed[child_written] = node.layer
        else:
            plain[key] = copy.deepcopy(node.value)
            out.origins[child_written] = node.layer
    return plain
