"""Which Secrets and ConfigMaps each session depends on, and so which sessions a change concerns.

A session can wait for an object that does not exist yet: an http session for the Secret of its
`credentialsSecretRef`, an http or tmux session for a Secret or ConfigMap its environment reads
(`ProviderUnavailable`, retried with a backoff that reaches 5 minutes). Without a watch it found
out at its next retry, up to minutes after the object appeared (issue 12). The operator watches
Secrets and ConfigMaps, and each event re-triggers exactly the sessions naming that object,
found in this index (object → sessions): an event costs a lookup, whatever the number of
sessions, and an object no session names costs nothing more.

A session names an object in its own spec or in a template of its chain (`spec.templateRef`,
then each template's `spec.extends`). References are found by their shape wherever they are
(`named_objects`), not by a list of paths, so a field added to the API later is covered: naming an
object the session does not use costs one reconcile that writes nothing, missing one costs the
old delay. The index is refreshed when a session changes and, for its namespace's sessions, when a
template changes.

Nothing of an object's content reaches the operator through the watch: its informer asks the
server for metadata alone, and the handler reads which object changed (kind, namespace, name)
(docs/security.md).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import Any, Final

from agent_sessions.config.chain import MAX_CHAIN_DEPTH
from agent_sessions.providers.pod.token_secret import TOKEN_COMPONENT

SECRETS: Final = "secrets"
CONFIG_MAPS: Final = "configmaps"
SELECTORS: Final = {
    # (label selector, field selector) of each watch. No label selector can find the objects
    # sessions name (any object may be named), so all are watched (docs/security.md), except what
    # is never a session's: the runtime token Secrets the operator makes itself, one per session
    # (10,000 more objects at 10,000 sessions), and Helm's release Secrets, which hold most of a
    # cluster's Secret bytes (every revision's manifest). The server leaves both out.
    SECRETS: (f"app.kubernetes.io/component!={TOKEN_COMPONENT}", "type!=helm.sh/release.v1"),
    CONFIG_MAPS: (None, None),
}

MAX_DEPTH: Final = 32
"""How deep a spec is searched for references (free-form fields may nest far deeper)."""

_REFERENCE_FIELDS: Final = {
    # env[].valueFrom, envFrom[], the http provider's bearer token
    "secretKeyRef": SECRETS,
    "secretRef": SECRETS,
    "credentialsSecretRef": SECRETS,
    "configMapKeyRef": CONFIG_MAPS,
    "configMapRef": CONFIG_MAPS,
    # volumes[].configMap and projected sources[].secret / sources[].configMap (`name`)
    "configMap": CONFIG_MAPS,
}

Dependency = tuple[str, str]
"""(plural, name): an object of the session's namespace."""


def named_objects(spec: Any) -> set[Dependency]:
    """The Secrets and ConfigMaps `spec` (a session's or a template's) names, as (plural, name)."""
    found: set[Dependency] = set()
    for field_name, value in _mappings(spec, 0):
        if field_name in _REFERENCE_FIELDS and isinstance(value.get("name"), str):
            found.add((_REFERENCE_FIELDS[field_name], value["name"]))
        elif field_name == "secret":
            name = value.get("secretName", value.get("name"))  # a volume, a projected source
            if isinstance(name, str):
                found.add((SECRETS, name))
    return found


def _mappings(value: Any, depth: int) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every (field name, mapping value) pair in `value`, at most `MAX_DEPTH` levels down."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        for field_name, item in value.items():
            if isinstance(item, Mapping):
                yield field_name, item
            yield from _mappings(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _mappings(item, depth + 1)


def session_dependencies(session: Mapping[str, Any], templates: Mapping[str, Mapping[str, Any]]) -> frozenset[Dependency]:
    """What `session` (a full AgentSession) names, itself or through its template chain.

    `templates` maps name → SessionTemplate of the session's namespace. A broken chain (missing
    template, loop) yields what its existing links name: the reconcile reports the problem, and
    the template's creation re-triggers the session anyway."""
    spec = session.get("spec") or {}
    found = named_objects(spec)
    reference = spec.get("templateRef")
    current = reference.get("name") if isinstance(reference, Mapping) else None
    visited: set[str] = set()
    while isinstance(current, str) and current not in visited and len(visited) < MAX_CHAIN_DEPTH:
        visited.add(current)
        template = templates.get(current)
        if template is None:
            break
        template_spec = template.get("spec") or {}
        found |= named_objects(template_spec)
        current = template_spec.get("extends")
    return frozenset(found)


class DependencyIndex:
    """Sessions by the objects they name, and the reverse (to update a session's entry)."""

    def __init__(self) -> None:
        self._of: dict[Hashable, tuple[str, frozenset[Dependency]]] = {}
        self._naming: dict[tuple[str, str, str], set[Hashable]] = {}

    def update(self, key: Hashable, namespace: str, dependencies: frozenset[Dependency]) -> None:
        """Session `key` (in `namespace`) now names exactly `dependencies`."""
        previous = self._of.get(key)
        if previous == (namespace, dependencies):
            return
        self.forget(key)
        if not dependencies:
            return
        self._of[key] = (namespace, dependencies)
        for plural, name in dependencies:
            self._naming.setdefault((plural, namespace, name), set()).add(key)

    def forget(self, key: Hashable) -> None:
        """Session `key` is gone."""
        previous = self._of.pop(key, None)
        if previous is None:
            return
        namespace, dependencies = previous
        for plural, name in dependencies:
            sessions = self._naming.get((plural, namespace, name))
            if sessions is not None:
                sessions.discard(key)
                if not sessions:
                    del self._naming[(plural, namespace, name)]

    def sessions_naming(self, plural: str, namespace: str, name: str) -> list[Hashable]:
        """The sessions that name object `name` of kind `plural` in `namespace`."""
        return list(self._naming.get((plural, namespace, name), ()))

    def dependencies_of(self, key: Hashable) -> frozenset[Dependency]:
        return self._of.get(key, ("", frozenset()))[1]

    def __len__(self) -> int:
        """Objects named by at least one session."""
        return len(self._naming)
