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
    rows = [(path, resolved.origins.get(path, "?"), _render(path, value)) for path, value in leaves(resolved.config)]
    rows += [(path, layer, REMOVED) for path, layer in resolved.removed.items()]
    rows.sort(key=lambda row: _block_index(row[0]))  # stable: document order within a block
    header = ("PATH", "LAYER", "VALUE")
    path_width = max(len(row[0]) for row in [header, *rows])
    layer_width = max(len(row[1]) for row in [header, *rows])
    table = [f"{path:<{path_width}}  {layer:<{layer_width}}  {value}".rstrip() for path, layer, value in [header, *rows]]
    return "\n".join([*_summary(resolved), "", *table]) + "\n"


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


def _render(path: str, value: Any) -> str:
    if path.startswith("agent.env[") and isinstance(value, dict):
        # The name is in the path; show the literal value, or the reference it comes from.
        if set(value) <= {"name", "value"}:
            value = value.get("value", "")
        else:
            value = {key: member for key, member in value.items() if key != "name"}
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


def _block_index(path: str) -> int:
    block = path.split(".", 1)[0].split("[", 1)[0]
    return CONFIG_BLOCKS.index(block) if block in CONFIG_BLOCKS else len(CONFIG_BLOCKS)
