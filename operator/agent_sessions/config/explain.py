"""`agent-sessions explain NAME`: the resolved configuration, field by field, with its origin.

When five layers feed one session, "why does my session run with this image?" has no answer
without this table. Values are printed as JSON, exactly as resolved. An environment variable
taken from a Secret shows its `secretKeyRef` — the reference is all the configuration holds;
nothing here reads a Secret. Fields a `null` removed are listed as `(removed)` with the layer
that removed them.

The limits the session's templates raise above the operator's configuration (`spec.policy`: pod
security level, ServiceAccounts, http platforms and endpoints) are listed with the template that
raised each (DESIGN §11: every raise explicit and visible here). The operator's own configuration
is not known to whoever runs `explain`; the effective limit is the operator's, widened by these,
and a namespace's pod-security.kubernetes.io/enforce label still binds over them.
"""

from __future__ import annotations

import json
from typing import Any

from .layers import CONFIG_BLOCKS
from .paths import leaves
from .resolve import ResolvedConfig

REMOVED = "(removed)"
NOTHING_RAISED = "(none: the operator's configuration applies)"
RAISED_NOTE = ("(each above the operator's configuration; a namespace's"
               " pod-security.kubernetes.io/enforce label still binds)")


def explain(resolved: ResolvedConfig) -> str:
    """A text table of every leaf path, the layer that set it and its value (JSON), preceded
    by the template chain, the locked fields and the hash."""
    rows = [(path, layer, REMOVED if value is _REMOVED else json.dumps(value, ensure_ascii=False, sort_keys=False))
            for path, layer, value in _rows(resolved)]
    header = ("PATH", "LAYER", "VALUE")
    path_width = max(len(row[0]) for row in [header, *rows])
    layer_width = max(len(row[1]) for row in [header, *rows])
    table = [f"{path:<{path_width}}  {layer:<{layer_width}}  {value}".rstrip() for path, layer, value in [header, *rows]]
    return "\n".join([*_summary(resolved), "", *table]) + "\n"


def explain_data(resolved: ResolvedConfig) -> dict[str, Any]:
    """What `explain` prints, as JSON-ready data (the gateway's `GET …/sessions/{name}/config`):
    `fields` are the table's rows with a value (the value itself, as `explain` prints it in
    JSON), `removed` its `(removed)` rows, `raised` the raised limits, in the same order."""
    fields: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    for path, layer, value in _rows(resolved):
        if value is _REMOVED:
            removed.append({"path": path, "layer": layer})
        else:
            fields.append({"path": path, "layer": layer, "value": value})
    return {
        "templateChain": [{"name": name, "generation": generation} for name, generation in resolved.template_chain],
        "lockedFields": sorted(resolved.locked_fields),
        "hash": resolved.hash,
        "fields": fields,
        "removed": removed,
        "raised": [{"key": key, "value": item.value, "origin": item.origin} for key, item in resolved.raises.rows()],
    }


_REMOVED = object()
"""The value of a row a `null` removed."""


def _rows(resolved: ResolvedConfig) -> list[tuple[str, str, Any]]:
    """(path, layer, value shown) of every leaf and every removed path, in block order."""
    rows = [(path, resolved.origins.get(path, "?"), _shown(path, value)) for path, value in leaves(resolved.config)]
    rows += [(path, layer, _REMOVED) for path, layer in resolved.removed.items()]
    rows.sort(key=lambda row: _block_index(row[0]))  # stable: document order within a block
    return rows


def _summary(resolved: ResolvedConfig) -> list[str]:
    chain = " → ".join(name if generation is None else f"{name} (generation {generation})"
                       for name, generation in resolved.template_chain)
    locked = ", ".join(sorted(resolved.locked_fields))
    return [
        f"Template chain: {chain or '(none)'}",
        f"Locked fields:  {locked or '(none)'}",
        *_raised_limits(resolved),
        f"Hash:           {resolved.hash}",
    ]


def _raised_limits(resolved: ResolvedConfig) -> list[str]:
    rows = [f"{key}: {item}" for key, item in resolved.raises.rows()]
    if not rows:
        return [f"Raised limits:  {NOTHING_RAISED}"]
    indent = " " * len("Raised limits:  ")
    return [f"Raised limits:  {rows[0]}", *(indent + row for row in rows[1:]), indent + RAISED_NOTE]


def _shown(path: str, value: Any) -> Any:
    if path.startswith("agent.env[") and isinstance(value, dict):
        # The name is in the path; show the literal value, or the reference it comes from.
        if set(value) <= {"name", "value"}:
            return value.get("value", "")
        return {key: member for key, member in value.items() if key != "name"}
    return value


def _block_index(path: str) -> int:
    block = path.split(".", 1)[0].split("[", 1)[0]
    return CONFIG_BLOCKS.index(block) if block in CONFIG_BLOCKS else len(CONFIG_BLOCKS)
