"""Resolving a session's configuration: the entry point of the `config` layer (§5).

Pure: it takes the session, its namespace's templates and the operator defaults as plain dicts
(exactly as the API server returns them, camelCase and explicit nulls included) and returns the
merged configuration with, for every field, the layer that set it. The reconciler calls it on
every pass, so it does no I/O and never mutates its inputs.

Order, lowest first: built-in defaults < operator defaults < root template < … < referenced
template < the session. Built-in defaults are applied last as a floor (see `defaults`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent_sessions.api.json_shape import MAX_FREE_FORM_DEPTH, nesting_depth

from .chain import template_chain
from .defaults import BUILTIN_DEFAULTS
from .hashing import config_hash
from .layers import (
    BUILTIN_LAYER,
    CONFIG_BLOCKS,
    OPERATOR_LAYER,
    Layer,
    config_blocks,
    session_layer,
    template_layer,
)
from .locks import lock_problems
from .merge import merge_layers
from .problems import ConfigInvalid, Problem
from .raises import TemplateRaises, template_raises
from .traced import Traced, trace, untrace
from .validation import validate_merged

__all__ = ["ConfigInvalid", "Problem", "ResolvedConfig", "resolve_config"]


@dataclass(frozen=True)
class ResolvedConfig:
    """A session's effective configuration and where each part of it came from."""

    config: dict[str, Any]
    """Merged config blocks (camelCase), built-in defaults applied."""
    origins: Mapping[str, str]
    """Every leaf path → the layer that set it, e.g. `agent.env[API_URL]` → `AgentSession "demo"`."""
    template_chain: tuple[tuple[str, int | None], ...]
    """(name, metadata.generation) of each template applied, root first."""
    locked_fields: frozenset[str]
    """Every path locked by a template of the chain."""
    hash: str
    """Stable hash of `config`: equal configurations, equal hashes, whatever the key order."""
    removed: Mapping[str, str] = field(default_factory=dict)
    """Paths an explicit `null` removed and no default filled again → the layer of the `null`."""
    raises: TemplateRaises = field(default_factory=TemplateRaises)
    """The limits the chain's templates raise (`spec.policy`), each with its template; never
    anything from the session itself."""


def resolve_config(
    session: Mapping[str, Any],
    templates: Mapping[str, dict[str, Any]],
    operator_defaults: Mapping[str, Any] | None = None,
) -> ResolvedConfig:
    """The effective configuration of `session` (a full AgentSession object).

    `templates` maps name → full SessionTemplate object of the session's namespace;
    `operator_defaults` has the shape of a template's config blocks (Helm values).
    Raises ConfigInvalid with every problem found.
    """
    metadata = session.get("metadata") or {}
    spec = session.get("spec") or {}
    name = metadata.get("name", "")
    chain = _chain(spec, templates, namespace=metadata.get("namespace", ""), session=name)

    problems: list[Problem] = []
    layers: list[Layer] = []
    if operator_defaults:
        problems += _unknown_blocks(operator_defaults)
        layers.append(Layer(OPERATOR_LAYER, config_blocks(operator_defaults)))
    for template in chain:
        layers.append(_template_layer(template))
    layers.append(Layer(session_layer(name), config_blocks(spec)))
    too_deep = [Problem(field=f"spec.{key}", layer=layer.label, message=f"nested more than {MAX_FREE_FORM_DEPTH}"
                        f" levels deep (set by {layer.label})") for layer in layers for key, value in layer.blocks.items()
                if nesting_depth(value) > MAX_FREE_FORM_DEPTH]
    if too_deep:  # merging walks every level recursively: a free-form field may not go that deep
        raise ConfigInvalid(problems + too_deep)
    problems += lock_problems(layers)

    merged: dict[str, Traced] = {}
    for layer in layers:
        merged = merge_layers(merged, trace(layer.blocks, layer.label))
    merged = merge_layers(trace(BUILTIN_DEFAULTS, BUILTIN_LAYER), merged, nulls_remove=False)
    result = untrace(_in_block_order(merged))

    problems += validate_merged(result.config, result.origins, result.removed, session_layer(name))
    if problems:
        raise ConfigInvalid(problems)
    return ResolvedConfig(
        config=result.config,
        origins=result.origins,
        template_chain=tuple(_chain_entry(template) for template in chain),
        locked_fields=frozenset(path for layer in layers for path in layer.locked_fields),
        hash=config_hash(result.config),
        removed=result.removed,
        raises=template_raises(chain, metadata.get("namespace", "")),
    )


def _chain(
    spec: Mapping[str, Any], templates: Mapping[str, dict[str, Any]], *, namespace: str, session: str
) -> list[dict[str, Any]]:
    reference = spec.get("templateRef") or {}
    name = reference.get("name") if isinstance(reference, Mapping) else None
    if not name:
        return []
    return template_chain(name, templates, namespace=namespace, session=session)


def _template_name(template: Mapping[str, Any]) -> str:
    return (template.get("metadata") or {}).get("name", "")


def _chain_entry(template: Mapping[str, Any]) -> tuple[str, int | None]:
    return _template_name(template), (template.get("metadata") or {}).get("generation")


def _template_layer(template: Mapping[str, Any]) -> Layer:
    spec = template.get("spec") or {}
    locked = spec.get("lockedFields") or ()
    return Layer(
        label=template_layer(_template_name(template)),
        blocks=config_blocks(spec),
        locked_fields=tuple(path for path in locked if isinstance(path, str)),
    )


def _unknown_blocks(operator_defaults: Mapping[str, Any]) -> list[Problem]:
    """Operator defaults are config blocks only; anything else is a typo that would be ignored."""
    return [
        Problem(
            field=key,
            layer=OPERATOR_LAYER,
            message=f"not a configuration block (expected one of {', '.join(CONFIG_BLOCKS)})",
            subject=OPERATOR_LAYER,
        )
        for key in operator_defaults
        if key not in CONFIG_BLOCKS
    ]


def _in_block_order(merged: Mapping[str, Traced]) -> dict[str, Traced]:
    return {key: merged[key] for key in CONFIG_BLOCKS if key in merged}
