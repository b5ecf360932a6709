"""Hardened security defaults, and the explicit way a template relaxes them.

An agent runs code an LLM chose, so its pod starts from the restricted Pod Security Standard:
not root, no privilege escalation, no capabilities, the runtime's default seccomp profile, no
ServiceAccount token. A platform team that needs more (root for a package manager, a capability
for a network tool) says so in `podTemplate.securityContext` / `containerSecurityContext`: each
field set there replaces the default of the same name, and nothing else changes — setting
`runAsUser: 1000` does not quietly drop `runAsNonRoot`. Nested objects (`capabilities`,
`seccompProfile`) merge the same way, one level down: `capabilities: {add: [NET_BIND_SERVICE]}`
keeps `drop: [ALL]`; `drop: []` removes it explicitly. How far a relaxation may go is not decided
here: the pod security policy (`policy`) holds the result to the operator's Pod Security
Standards level, `restricted` by default, whichever layer asked for it.

`readOnlyRootFilesystem` defaults to **false**. Agents install packages, write caches and
config under `$HOME` and elsewhere in images the platform team does not control; a read-only
root breaks most of them with errors far from the cause. The workspace (`/workspace`) is always a
volume. A template may set it to true; the pod then gets an `emptyDir` at `/tmp` (unless a mount
there exists), so the runtime and most tools keep a writable scratch space.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .constants import NON_ROOT_ID

POD_SECURITY_DEFAULTS: Final[Mapping[str, Any]] = {
    "runAsNonRoot": True,
    "runAsUser": NON_ROOT_ID,
    "runAsGroup": NON_ROOT_ID,
    "fsGroup": NON_ROOT_ID,
    "seccompProfile": {"type": "RuntimeDefault"},
}

CONTAINER_SECURITY_DEFAULTS: Final[Mapping[str, Any]] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": False,
}


def pod_security_context(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The pod's securityContext: hardened defaults, each field `overrides` sets replacing one."""
    return _overlay(POD_SECURITY_DEFAULTS, overrides or {})


def container_security_context(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The agent container's securityContext, same rule."""
    return _overlay(CONTAINER_SECURITY_DEFAULTS, overrides or {})


def runs_as_root_against_policy(pod: Mapping[str, Any], container: Mapping[str, Any]) -> bool:
    """runAsNonRoot is in force while uid 0 is asked for: the kubelet would refuse to start the
    container (`CreateContainerConfigError`) long after the session was accepted."""
    non_root = container.get("runAsNonRoot", pod.get("runAsNonRoot"))
    user = container.get("runAsUser", pod.get("runAsUser"))
    return non_root is True and user == 0


def _overlay(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {key: _copy(value) for key, value in defaults.items()}
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = {**result[key], **_copy(value)}
        else:
            result[key] = _copy(value)
    return result


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
