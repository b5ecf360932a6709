"""Which lists merge by key across layers, and what an item's key is.

Most lists are atomic: a later layer's `args` replaces the inherited `args` whole, because a
positional merge of arguments has no sensible meaning. A few lists are collections of
independently named things — environment variables, volumes, mounts, tolerations — to which a
template and a session each contribute; those merge by key (the same keys the CRD declares as
`x-kubernetes-list-map-keys` where Kubernetes allows one). A later layer's item replaces the
earlier item with the same key *whole*: items are small, and merging, say, a `value` into an
inherited `valueFrom` would produce an invalid variable.

`envFrom` is keyed by the referenced object *and its kind*, so a ConfigMap and a Secret that
share a name stay two items. Tolerations are keyed by (`key`, `effect`), an absent key or
effect meaning "all" (shown as `*`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

Identity = tuple[str, ...]


@dataclass(frozen=True)
class ListKey:
    """How items of one merge-by-key list are identified and labelled in paths."""

    identity: Callable[[Any], Identity | None]
    """The item's key; None when the item has none (it is then never merged, only appended,
    and schema validation reports it)."""
    label: Callable[[Identity], str]
    """The key as shown in a path: `agent.env[API_URL]`."""


def _string_field(item: Any, name: str) -> str | None:
    value = item.get(name) if isinstance(item, dict) else None
    return value if isinstance(value, str) else None


def _by_field(name: str) -> ListKey:
    def identity(item: Any) -> Identity | None:
        value = _string_field(item, name)
        return None if value is None else (value,)

    return ListKey(identity=identity, label=lambda key: key[0])


def _env_from_identity(item: Any) -> Identity | None:
    for kind in ("configMapRef", "secretRef"):
        reference = item.get(kind) if isinstance(item, dict) else None
        name = _string_field(reference, "name")
        if name is not None:
            return (kind, name)
    return None


def _toleration_identity(item: Any) -> Identity | None:
    if not isinstance(item, dict):
        return None
    # Kubernetes treats an empty key or effect like an absent one (match all).
    return (_string_field(item, "key") or "", _string_field(item, "effect") or "")


KEYED_LISTS: Final[Mapping[tuple[str, ...], ListKey]] = {
    ("agent", "env"): _by_field("name"),
    ("agent", "envFrom"): ListKey(identity=_env_from_identity, label=lambda key: f"{key[0]}:{key[1]}"),
    ("agent", "volumeMounts"): _by_field("mountPath"),
    ("podTemplate", "volumes"): _by_field("name"),
    ("podTemplate", "tolerations"): ListKey(
        identity=_toleration_identity,
        label=lambda key: f"{key[0] or '*'}:{key[1] or '*'}",
    ),
}
"""Merge-by-key lists by their path from the root of the config blocks."""
