"""Checks that only the merged configuration can answer.

No single layer is wrong when a template leaves `agent.image` to its sessions and a session
forgets it; only the merged result lacks it. So after merging: the provider's required fields
are checked, durations are parsed, and the whole result is validated against the API model
`ConfigBlocks` (the same model the CRD is generated from, so operator defaults — which the API
server never sees — get the same checks). Every finding becomes a Problem at the wire path,
blamed on the layer whose value is at fault.

Across layers: a session that sets the settings block of a provider other than the one its
configuration resolves to (`spec.http` on a session whose template says `provider: pod`) would
have them silently ignored; that is a problem naming the block, the resolved provider and who
chose it. Only the session's own blocks count: templates and operator defaults may well carry
settings for every provider their sessions might pick.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pydantic

from agent_sessions.api import constants as c
from agent_sessions.api.template import ConfigBlocks

from .durations import parse_duration
from .paths import child_path, is_keyed_list, item_paths
from .problems import Problem

#: Fields each provider cannot work without.
REQUIRED_BY_PROVIDER: Final[Mapping[str, tuple[str, ...]]] = {
    c.PROVIDER_POD: ("agent.image",),
    c.PROVIDER_HTTP: ("http.url",),
    c.PROVIDER_TMUX: (),
}

#: Settings blocks that only one provider reads.
BLOCK_OF_PROVIDER: Final[Mapping[str, str]] = {
    "podTemplate": c.PROVIDER_POD,
    "http": c.PROVIDER_HTTP,
    "tmux": c.PROVIDER_TMUX,
}

#: Duration fields of the config blocks.
DURATION_FIELDS: Final = ("lifecycle.idleTimeout", "lifecycle.maxDuration", "lifecycle.startTimeout")


def validate_merged(
    config: Mapping[str, Any],
    origins: Mapping[str, str],
    removed: Mapping[str, str],
    session: str,
) -> list[Problem]:
    """Problems of a merged configuration; `session` labels the layer blamed for gaps."""
    problems = required_field_problems(config, removed, session)
    problems += other_provider_problems(config, origins, session)
    problems += duration_problems(config, origins)
    reported = {problem.field for problem in problems}
    problems += [problem for problem in schema_problems(config, origins, session) if problem.field not in reported]
    return problems


def required_field_problems(config: Mapping[str, Any], removed: Mapping[str, str], session: str) -> list[Problem]:
    """A provider's required fields that no layer sets (or that a `null` removed)."""
    provider = config.get("provider")
    problems = []
    for path in REQUIRED_BY_PROVIDER.get(provider, ()) if isinstance(provider, str) else ():
        parent, _, key = path.rpartition(".")
        block = _lookup(config, parent)
        if block is not None and not isinstance(block, Mapping):
            continue  # e.g. `agent: "oops"`: the schema check reports the block itself
        if block is not None and block.get(key) is not None:
            continue
        remover = _removed_by(path, removed)
        why = f"removed by {remover}" if remover else "no layer sets it"
        problems.append(Problem(field=f"spec.{path}", layer=session, message=f"required for provider {provider}; {why}"))
    return problems


def other_provider_problems(config: Mapping[str, Any], origins: Mapping[str, str], session: str) -> list[Problem]:
    """Blocks the session sets for a provider other than the resolved one (they would be ignored)."""
    provider = config.get("provider")
    if not isinstance(provider, str):
        return []
    chosen_by = origins.get("provider", "")
    problems = []
    for block, owner in BLOCK_OF_PROVIDER.items():
        if owner == provider:
            continue
        if not any(layer == session and (path == block or path.startswith((f"{block}.", f"{block}[")))
                   for path, layer in origins.items()):
            continue
        problems.append(Problem(
            field=f"spec.{block}", layer=session,
            message=f"set, but the resolved provider is {provider} (from {chosen_by}); {block} applies only to "
                    f"provider {owner}: set spec.provider: {owner}, or remove spec.{block}",
        ))
    return problems


def duration_problems(config: Mapping[str, Any], origins: Mapping[str, str]) -> list[Problem]:
    """Duration fields that do not parse, or are negative."""
    problems = []
    for path in DURATION_FIELDS:
        value = _lookup(config, path)
        if not isinstance(value, str):
            continue  # absent, or the wrong type: the schema check says so
        layer = origins.get(path, "")
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            message = str(error)
        else:
            if seconds >= 0:
                continue
            message = f"invalid duration {value!r}: must not be negative"
        problems.append(Problem(field=f"spec.{path}", layer=layer, message=f"{message} (set by {layer})"))
    return problems


def schema_problems(config: Mapping[str, Any], origins: Mapping[str, str], session: str) -> list[Problem]:
    """Violations of the API model, one Problem per wire path (messages of one path joined:
    a union such as int-or-string reports once per member)."""
    try:
        ConfigBlocks.model_validate(config, strict=True, by_alias=True, by_name=False)
    except pydantic.ValidationError as error:
        messages: dict[str, list[str]] = {}
        for entry in error.errors(include_url=False, include_input=False):
            path = _written_path(config, entry["loc"], missing=entry["type"] == "missing")
            if entry["msg"] not in messages.setdefault(path, []):
                messages[path].append(entry["msg"])
        problems = []
        for path, texts in messages.items():
            layer = _origin_of(path, origins) or session
            problems.append(Problem(field=f"spec.{path}", layer=layer, message=f"{'; '.join(texts)} (set by {layer})"))
        return problems
    return []


def _written_path(config: Mapping[str, Any], loc: tuple[int | str, ...], *, missing: bool) -> str:
    """The path of a pydantic error location, written like origins (`agent.env[API_URL].value`).

    Location parts that are not in the data (union member tags such as `int` or `str`) are
    dropped; the last part of a `missing` error names the absent field and is kept.
    """
    node: Any = config
    path: tuple[str, ...] = ()
    written = ""
    keyed_parent: tuple[str, ...] | None = None
    for position, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path = path + (part,)
            written = child_path(written, part)
            keyed_parent = path if is_keyed_list(path, node[part]) else None
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if keyed_parent is not None:
                written = item_paths(keyed_parent, written, node)[part]
            else:
                written = f"{written}[{part}]"
            keyed_parent = None
            node = node[part]
        else:
            if missing and position == len(loc) - 1 and isinstance(part, str):
                written = child_path(written, part)
            break
    return written


def _origin_of(path: str, origins: Mapping[str, str]) -> str | None:
    """The layer of the value at `path`: its own origin, its nearest ancestor's, or the layers
    of everything below it (for an object made up by several layers)."""
    candidate = path
    while candidate:
        if candidate in origins:
            return origins[candidate]
        cut = max(candidate.rfind("."), candidate.rfind("["))
        candidate = candidate[:cut] if cut > 0 else ""
    below = [layer for leaf, layer in origins.items() if leaf.startswith((f"{path}.", f"{path}["))]
    return ", ".join(dict.fromkeys(below)) or None


def _lookup(config: Mapping[str, Any], path: str) -> Any:
    node: Any = config
    for segment in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(segment)
    return node


def _removed_by(path: str, removed: Mapping[str, str]) -> str | None:
    segments = path.split(".")
    for depth in range(len(segments), 0, -1):
        layer = removed.get(".".join(segments[:depth]))
        if layer:
            return layer
    return None
