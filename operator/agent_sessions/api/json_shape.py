"""JSON values of unknown shape: how deep they go and how to copy them, without recursion.

Why: the free-form fields (`spec.meta`, volume sources: `x-kubernetes-preserve-unknown-fields`)
are the one part of a session the API server cannot bound. CEL sees nothing inside them, and its
JSON decoder accepts 10,000 levels of nesting. Python's recursion stops at 1,000 frames, and
`copy.deepcopy` spends two per level: a 900-deep `meta` once raised `RecursionError` in the
operator's index, and the session never got a status. Everything that walks such a value before
its depth is known walks it here, with an explicit stack.
"""

from __future__ import annotations

import json
import sys
import zlib
from typing import Any, Final

MAX_FREE_FORM_DEPTH: Final = 32
"""Deepest nesting of objects and arrays the operator accepts inside a free-form field. The
deepest field the schema itself declares is about ten levels down."""


def nesting_depth(value: Any, stop_after: int = MAX_FREE_FORM_DEPTH) -> int:
    """Levels of objects and arrays in `value` (a scalar: 0, `{}`: 1, `{"a": []}`: 2). Stops
    counting, and returns `stop_after + 1`, as soon as it is deeper than `stop_after`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > stop_after:
            return stop_after + 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


SHARED_STRING_LENGTH = 32
"""`copy_json(shared=True)` shares string values up to this length (names, reasons, phases)."""


def copy_json(value: Any, *, shared: bool = False) -> Any:
    """A deep copy of a JSON-like value (dicts, lists, scalars) at any depth. Mappings and
    sequences of other types (kopf's body views) are copied as dicts and lists.

    `shared`: for copies kept long, many of a kind (every session's body): keys and short string
    values are interned (`sys.intern`), so the copies share one object per distinct string where
    each decoded watch event had its own (a key like "lastTransitionTime" is ~70 bytes, every time)."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, key = stack.pop()
        if isinstance(item, dict) or (hasattr(item, "items") and hasattr(item, "keys")):
            copied: Any = {}
            if shared:
                stack.extend((child, copied, sys.intern(name) if type(name) is str else name)
                             for name, child in item.items())
            else:
                stack.extend((child, copied, name) for name, child in item.items())
        elif isinstance(item, (list, tuple)):
            copied = [None] * len(item)
            stack.extend((child, copied, index) for index, child in enumerate(item))
        elif shared and type(item) is str and len(item) <= SHARED_STRING_LENGTH:
            copied = sys.intern(item)
        else:
            copied = item
        parent[key] = copied
    return root[0]


def pack_json(value: Any) -> bytes | Any:
    """`value` as compressed compact JSON, for objects held long and read seldom (every session
    and pod the operator follows: issue 11, memory at 10,000 sessions — a held body as Python
    objects is several KiB, packed well under one). Read it back with `unpack_json`, tens of
    microseconds. A value too deep for the encoder is returned as it is."""
    try:
        return zlib.compress(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(), 1)
    except (RecursionError, ValueError, TypeError):
        return value


def unpack_json(held: bytes | Any) -> Any:
    """A fresh copy of what `pack_json` packed."""
    return json.loads(zlib.decompress(held)) if isinstance(held, bytes) else copy_json(held)
