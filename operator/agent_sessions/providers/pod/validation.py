"""What the pod provider needs from a resolved configuration beyond what the schema checks.

The config layer already validated the merged configuration against the API model; these are
the pod provider's own requirements, reported as precise `spec.<path>: why` messages before any
object is created — a pod the kubelet cannot start would otherwise fail minutes later, far from
its cause.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from agent_sessions.api import constants as c

from ..environment import expansion_problems
from ..validation import block, protocol_problems, reserved_env_problem
from .constants import RESERVED_VOLUMES, TOKEN_DIRECTORY, WORKSPACE_PATH
from .security import container_security_context, pod_security_context, runs_as_root_against_policy

_ZERO_QUANTITY: Final = re.compile(r"^[+]?0*(\.0*)?([eE][+-]?\d+|[KMGTPE]i?|[munk])?$")
_ACCESS_MODES: Final = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")


def pod_problems(config: Mapping[str, Any], *, operator_image: str | None = None,
                 root_allowed: bool = True) -> list[str]:
    """Every reason the pod provider cannot run `config` (empty when it can). `root_allowed`:
    whether the pod security level lets a pod run as root at all; where it does not, the policy
    reports a root user itself, and the hint how to run as root would only mislead."""
    agent = block(config, "agent")
    problems: list[str] = []
    if not agent.get("image") and not operator_image:
        problems.append("spec.agent.image: required by the pod provider (the agent's container image)")
    if not agent.get("command"):
        problems.append(
            "spec.agent.command: required by the pod provider: the runtime bridge starts the agent"
            " (`agent-sessions runtime -- <command> <args>`) and cannot know the image's entrypoint"
        )
    problems += protocol_problems(agent)
    policy = block(config, "lifecycle").get("restartPolicy")
    if policy is not None and policy not in (c.RESTART_NEVER, c.RESTART_ON_FAILURE):
        problems.append(f"spec.lifecycle.restartPolicy: {policy!r} is not Never or OnFailure")
    problems += _env_problems(agent)
    problems += _volume_problems(agent, block(config, "podTemplate"))
    problems += _workspace_problems(block(config, "workspace"))
    if root_allowed:
        problems += _security_problems(block(config, "podTemplate"))
    return problems


def _env_problems(agent: Mapping[str, Any]) -> list[str]:
    """Reserved names, and values whose `$(VAR)` expansion by the kubelet would be too large: a
    bomb is refused here, before any pod reaches a node."""
    entries = (entry for entry in agent.get("env") or () if isinstance(entry, Mapping))
    reserved = [problem for entry in entries if (problem := reserved_env_problem(entry.get("name")))]
    return reserved + expansion_problems(agent)


def _volume_problems(agent: Mapping[str, Any], pod_template: Mapping[str, Any]) -> list[str]:
    problems = [
        f"spec.podTemplate.volumes[{volume.get('name')}]: the name is reserved for the operator's own volume"
        for volume in pod_template.get("volumes") or ()
        if isinstance(volume, Mapping) and volume.get("name") in RESERVED_VOLUMES
    ]
    problems += [
        f"spec.agent.volumeMounts[{mount.get('mountPath')}]: {WORKSPACE_PATH} is the session's workspace;"
        " size it with spec.workspace instead"
        for mount in agent.get("volumeMounts") or ()
        if isinstance(mount, Mapping) and str(mount.get("mountPath", "")).rstrip("/") == WORKSPACE_PATH
    ]
    problems += [
        f"spec.agent.volumeMounts[{mount.get('mountPath')}]: {TOKEN_DIRECTORY} is reserved for the session "
        "runtime's token"
        for mount in agent.get("volumeMounts") or ()
        if isinstance(mount, Mapping) and str(mount.get("mountPath", "")).rstrip("/") == TOKEN_DIRECTORY
    ]
    return problems


def _workspace_problems(workspace: Mapping[str, Any]) -> list[str]:
    size = workspace.get("size")
    if size is None:
        return []
    problems = []
    if isinstance(size, bool) or (isinstance(size, int | float) and size <= 0) or (
        isinstance(size, str) and _ZERO_QUANTITY.match(size.strip())
    ):
        problems.append(f"spec.workspace.size: {size!r} is not a positive size, e.g. 10Gi")
    modes = list(workspace.get("accessModes") or ())
    unknown = [mode for mode in modes if mode not in _ACCESS_MODES]
    if unknown:
        problems.append(f"spec.workspace.accessModes: unknown access modes {unknown} (one of {list(_ACCESS_MODES)})")
    elif "ReadWriteOncePod" in modes and len(modes) > 1:
        problems.append("spec.workspace.accessModes: ReadWriteOncePod cannot be combined with other access modes")
    elif modes and set(modes) == {"ReadOnlyMany"}:
        problems.append("spec.workspace.accessModes: the agent writes to its workspace; ReadOnlyMany alone cannot work")
    return problems


def _security_problems(pod_template: Mapping[str, Any]) -> list[str]:
    pod = pod_security_context(_mapping(pod_template.get("securityContext")))
    container = container_security_context(_mapping(pod_template.get("containerSecurityContext")))
    if runs_as_root_against_policy(pod, container):
        return [
            "spec.podTemplate.securityContext: runAsUser 0 (root) conflicts with runAsNonRoot, which is on"
            " by default; set runAsNonRoot: false explicitly to run the agent as root"
        ]
    return []


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None
