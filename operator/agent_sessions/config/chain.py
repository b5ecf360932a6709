"""The chain of templates a session's configuration is built on.

A session names one template (`spec.templateRef.name`); each template may name a parent
(`spec.extends`) in the same namespace. The chain is followed until a template extends nothing.
It is invalid when a link names a template that does not exist, when it loops back on itself,
or when it grows longer than `MAX_CHAIN_DEPTH` — a bound that keeps one misconfigured namespace
from making every reconcile walk an absurd chain, and that is far above any sensible hierarchy.
Each problem names the object holding the bad link, since that is the object to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .layers import session_layer, template_layer
from .problems import ConfigInvalid, Problem

MAX_CHAIN_DEPTH: Final = 16
"""Most templates one chain may hold."""

_ARROW: Final = " → "


def template_chain(
    name: str,
    templates: Mapping[str, dict[str, Any]],
    *,
    namespace: str = "",
    session: str = "",
) -> list[dict[str, Any]]:
    """The templates `name` builds on, root first, ending with `name` itself.

    `templates` maps name → full SessionTemplate object of the namespace. `namespace` and
    `session` (the referring AgentSession's name) only make messages precise.
    Raises ConfigInvalid naming the object with the broken link.
    """
    visited: list[str] = []
    found: list[dict[str, Any]] = []
    current = name
    while True:
        if current in visited:
            raise ConfigInvalid([_cycle(visited, current)])
        if len(visited) == MAX_CHAIN_DEPTH:
            raise ConfigInvalid([_too_deep(visited, current, session)])
        template = templates.get(current)
        if template is None:
            raise ConfigInvalid([_missing(visited, current, namespace, session)])
        visited.append(current)
        found.append(template)
        parent = (template.get("spec") or {}).get("extends")
        if not parent:
            return found[::-1]
        current = parent


def _cycle(visited: list[str], again: str) -> Problem:
    loop = visited[visited.index(again):] + [again]
    closer = template_layer(visited[-1])
    return Problem(
        field="spec.extends",
        layer=closer,
        message=f"template chain has a cycle: {_ARROW.join(loop)}",
        subject=closer,
    )


def _too_deep(visited: list[str], next_name: str, session: str) -> Problem:
    return Problem(
        field="spec.templateRef.name",
        layer=session_layer(session),
        message=(
            f"template chain is longer than {MAX_CHAIN_DEPTH} templates: "
            f"{_ARROW.join([*visited, next_name])}"
        ),
    )


def _missing(visited: list[str], name: str, namespace: str, session: str) -> Problem:
    if not visited:
        where = f' in namespace "{namespace}"' if namespace else ""
        return Problem(
            field="spec.templateRef.name",
            layer=session_layer(session),
            message=f'SessionTemplate "{name}" not found{where}',
        )
    referrer = template_layer(visited[-1])
    return Problem(
        field="spec.extends",
        layer=referrer,
        message=f'SessionTemplate "{name}" not found',
        subject=referrer,
    )
