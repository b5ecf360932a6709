"""What the tmux provider cannot do, said before anything starts.

The tmux provider runs the agent as a process of the operator's user on the operator's host. A
setting it cannot honour is a problem, not a silent no-op: a session whose author asked for a
memory limit, a sized volume or pod settings and quietly got none would behave differently from
what its spec says — exactly the surprise `status.capabilities.resourceLimits: false` exists to
prevent. So `resources`, `workspace.size`/`storageClassName`, `podTemplate` and
`agent.volumeMounts` make the configuration invalid (`ConfigValid=False`), each with the reason.
A template written for pods is reused with tmux by overriding those fields with `null` (§5).

Ignored, because they promise nothing the tmux provider breaks: `agent.image` (the command runs
with the host's tools, as with the local pod runner) and `agent.workingDir` (the agent runs in
its workspace, as in a pod).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any, Final

from ..validation import block, protocol_problems, reserved_env_problem

SUPPORTED_VALUE_FROM: Final = ("secretKeyRef", "configMapKeyRef")
UNSUPPORTED_WORKSPACE: Final = ("size", "storageClassName")
"""`accessModes` is not among them: it has a built-in default (`ReadWriteOnce`) in every resolved
configuration, and means nothing without a size."""


def tmux_problems(config: Mapping[str, Any]) -> list[str]:
    """Every reason the tmux provider cannot run `config` as written (empty when it can)."""
    agent = block(config, "agent")
    problems: list[str] = []
    if not agent.get("command"):
        problems.append(
            "spec.agent.command: required by the tmux provider: the runtime bridge starts the agent"
            " (`python -m agent_sessions.runtime -- <command> <args>`) on the operator's host"
        )
    problems += protocol_problems(agent)
    resources = block(agent, "resources")
    if any(resources.get(key) for key in ("limits", "requests", "claims")):
        problems.append("spec.agent.resources: not supported by the tmux provider (resourceLimits: false)")
    if agent.get("volumeMounts"):
        problems.append("spec.agent.volumeMounts: not supported by the tmux provider (there are no pod volumes)")
    if block(config, "podTemplate"):
        problems.append("spec.podTemplate: not supported by the tmux provider (pod settings)")
    workspace = block(config, "workspace")
    for key in UNSUPPORTED_WORKSPACE:
        if workspace.get(key) is not None:
            problems.append(
                f"spec.workspace.{key}: not supported by the tmux provider: the workspace is a directory"
                " on the operator's host, kept across stop and resume, without a size or storage class"
                " (set it to null to override a template)"
            )
    problems += _env_problems(agent)
    shell = block(config, "tmux").get("shell")
    if shell is not None:
        try:
            if not shlex.split(str(shell)):
                raise ValueError("empty")
        except ValueError as error:
            problems.append(f"spec.tmux.shell: {shell!r} is not a command line ({error})")
    return problems


def _env_problems(agent: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for entry in agent.get("env") or ():
        if not isinstance(entry, Mapping):
            continue
        name = entry.get("name")
        if reserved := reserved_env_problem(name):
            problems.append(reserved)
        source = entry.get("valueFrom")
        if isinstance(source, Mapping):
            unsupported = sorted(key for key, value in source.items() if value and key not in SUPPORTED_VALUE_FROM)
            if unsupported:
                problems.append(
                    f"spec.agent.env[{name}].valueFrom.{unsupported[0]}: not supported by the tmux provider"
                    f" (only {' and '.join(SUPPORTED_VALUE_FROM)})"
                )
    return problems
