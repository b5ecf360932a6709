"""The layers a configuration is assembled from, and how each is named in messages.

Layers are named the way a user would look them up (`kubectl get sessiontemplate base`), so a
message like `locked by SessionTemplate "base"` or an `explain` row tells them where to go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

#: The blocks a template and a session share, in the order they are shown. Every other spec key
#: (`templateRef`, `state`, `title`, `prompt`, `meta`, `extends`, `lockedFields`) describes the
#: object itself and is never layered.
CONFIG_BLOCKS: Final = ("provider", "agent", "workspace", "lifecycle", "podTemplate", "http", "tmux")

BUILTIN_LAYER: Final = "built-in defaults"
OPERATOR_LAYER: Final = "operator defaults"


def template_layer(name: str) -> str:
    """The label of a SessionTemplate layer: `SessionTemplate "base"`."""
    return f'SessionTemplate "{name}"'


def session_layer(name: str) -> str:
    """The label of an AgentSession layer: `AgentSession "demo"`."""
    return f'AgentSession "{name}"'


@dataclass(frozen=True)
class Layer:
    """One source of configuration: its label, its config blocks and the paths it locks."""

    label: str
    blocks: Mapping[str, Any]
    locked_fields: tuple[str, ...] = field(default=())


def config_blocks(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """The config blocks of a spec (explicit nulls kept), without its object-only keys."""
    spec = spec or {}
    return {key: spec[key] for key in CONFIG_BLOCKS if key in spec}
