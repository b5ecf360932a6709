"""The merge of one layer over another (§5), on traced values so origins follow the values.

Rules, lowest layer first, each later layer over the result so far:

* objects merge key by key (an empty object therefore changes nothing);
* scalars and lists replace — except the merge-by-key lists of `list_keys`, where a later
  item replaces the earlier item with the same key whole, in its place, and new keys are
  appended in the later layer's order;
* an explicit `null` removes the inherited value with everything below it (a tombstone).

Built-in defaults are applied last with `nulls_remove=False`: they fill every gap, including
the ones a `null` made — a `null` removes what a layer *set*, not what a field means when unset
(see `defaults`).
"""

from __future__ import annotations

from collections.abc import Mapping

from .list_keys import KEYED_LISTS, ListKey
from .traced import KeyedList, Leaf, Traced


def merge_layers(
    base: Mapping[str, Traced], overlay: Mapping[str, Traced], *, nulls_remove: bool = True
) -> dict[str, Traced]:
    """`overlay` merged over `base` (both traced config blocks); neither is modified.

    With `nulls_remove=False` a tombstone in `overlay` keeps whatever `base` has at its path.
    """
    return _merge_object(base, overlay, (), nulls_remove)


def _merge_object(
    base: Mapping[str, Traced], overlay: Mapping[str, Traced], path: tuple[str, ...], nulls_remove: bool
) -> dict[str, Traced]:
    merged = dict(base)
    for key, node in overlay.items():
        merged[key] = _merge(base.get(key), node, path + (key,), nulls_remove)
    return merged


def _merge(base: Traced | None, overlay: Traced, path: tuple[str, ...], nulls_remove: bool) -> Traced:
    if base is None:
        return overlay
    if isinstance(overlay, Leaf) and overlay.value is None:
        return overlay if nulls_remove or _is_tombstone(base) else base
    if isinstance(overlay, dict):
        return _merge_object(base, overlay, path, nulls_remove) if isinstance(base, dict) else overlay
    if isinstance(overlay, KeyedList) and isinstance(base, KeyedList):
        return _merge_keyed(base, overlay, KEYED_LISTS[path])
    if isinstance(overlay, Leaf) and overlay.value == {} and isinstance(base, dict):
        return base
    return overlay


def _is_tombstone(node: Traced) -> bool:
    return isinstance(node, Leaf) and node.value is None


def _merge_keyed(base: KeyedList, overlay: KeyedList, list_key: ListKey) -> KeyedList:
    # Group the overlay's items by key; items without a key get a key of their own.
    groups: dict[object, list[Leaf]] = {}
    for leaf in overlay.items:
        identity = list_key.identity(leaf.value)
        groups.setdefault(identity if identity is not None else object(), []).append(leaf)
    items: list[Leaf] = []
    placed: set[object] = set()
    for leaf in base.items:
        identity = list_key.identity(leaf.value)
        if identity is None or identity not in groups:
            items.append(leaf)
        elif identity not in placed:
            items.extend(groups[identity])
            placed.add(identity)
    for identity, group in groups.items():
        if identity not in placed:
            items.extend(group)
    return KeyedList(tuple(items), overlay.layer if overlay.items else base.layer)
