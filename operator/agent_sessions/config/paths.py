"""How positions in a configuration are written: `agent.image`, `agent.env[API_URL]`.

Origins, `explain` and problems all name positions the same way, so a path printed by one can
be looked up in another. Objects are descended key by key; a merge-by-key list is descended
item by item, each named by its key (by its position when it has none, or shares its key with
an earlier item); every other value — scalar, atomic list, empty object — is a leaf.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .list_keys import KEYED_LISTS


def child_path(parent: str, key: str) -> str:
    """The path of an object's member."""
    return f"{parent}.{key}" if parent else key


def item_paths(path: tuple[str, ...], parent: str, items: Sequence[Any]) -> list[str]:
    """The paths of the items of the merge-by-key list at `path` (written `parent`)."""
    list_key = KEYED_LISTS[path]
    names: list[str] = []
    for index, item in enumerate(items):
        identity = list_key.identity(item)
        name = f"{parent}[{list_key.label(identity)}]" if identity is not None else None
        if name is None or name in names:
            name = f"{parent}[{index}]"
        names.append(name)
    return names


def is_keyed_list(path: tuple[str, ...], value: Any) -> bool:
    """Whether `value` at `path` is a merge-by-key list (as opposed to a leaf)."""
    return path in KEYED_LISTS and isinstance(value, list)


def leaves(config: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every leaf of a configuration with its path, in document order."""
    yield from _leaves(config, (), "")


def _leaves(node: dict[str, Any], path: tuple[str, ...], written: str) -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        child = path + (key,)
        child_written = child_path(written, key)
        if isinstance(value, dict) and value:
            yield from _leaves(value, child, child_written)
        elif is_keyed_list(child, value) and value:
            yield from zip(item_paths(child, child_written, value), value)
        else:
            yield child_written, value
