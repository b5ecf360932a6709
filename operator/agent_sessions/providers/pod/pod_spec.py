"""The desired Pod of a session, as a pure function of the session and its resolved config.

One Pod per session, named from its uid (`names`), owned by the AgentSession so that deleting
the session garbage-collects the pod even when the operator is down. The agent container's
entrypoint is the runtime bridge, which starts the agent's own command and serves the session's
endpoint (§7); the image must therefore ship `agent-sessions` on its PATH.

The workspace is always a volume at `/workspace` (the bridge keeps the history there): the
session's PVC when `workspace.size` is set, otherwise an `emptyDir` that lives as long as the
pod (history is then lost on stop). The agent's working directory defaults to it.

Resources: the agent's `resources` as written, and for each resource it says nothing about
(neither a request nor a limit: `cpu`, `memory`, …) the operator's default request and limit
(`--pod-default-request`/`--pod-default-limit`, chart `sessionPods.resources`). A resource the
session names keeps exactly what it says: a default request next to its own lower limit, or a
default limit under its own higher request, would make a pod the API server refuses.

Label and annotation precedence: the template's `podTemplate.labels`/`annotations` first, the
operator's own on top — a template cannot detach a pod from its session by overriding them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.config import config_hash
from agent_sessions.wire.credentials import ENV_TOKEN_FILE
from agent_sessions.wire.paths import HEALTH_PATH

from ..base import SessionRef
from ..errors import InvalidConfiguration
from .constants import (
    ANNOTATION_CONFIG_HASH,
    CONTAINER_NAME,
    ENV_SESSION_NAME,
    ENV_SESSION_NAMESPACE,
    ENV_SESSION_UID,
    RUNTIME_EXECUTABLE,
    RUNTIME_PORT,
    RUNTIME_PORT_NAME,
    TMP_PATH,
    TMP_VOLUME,
    WORKSPACE_PATH,
    WORKSPACE_VOLUME,
)
from .names import label_value, pod_name, pvc_name
from .security import container_security_context, pod_security_context
from .token_secret import token_env, token_mount, token_volume
from .validation import block, pod_problems

#: podTemplate fields copied to the pod spec as written.
COPIED_POD_FIELDS = (
    "serviceAccountName",
    "nodeSelector",
    "tolerations",
    "affinity",
    "runtimeClassName",
    "priorityClassName",
    "imagePullSecrets",
)

#: agent fields copied to the container as written.
COPIED_CONTAINER_FIELDS = ("envFrom",)


def session_labels(session: SessionRef) -> dict[str, str]:
    """The labels that tie an object to its session (selectors, `kubectl get pods -l`)."""
    return {
        c.LABEL_SESSION: label_value(session.name),
        c.LABEL_SESSION_UID: label_value(session.uid),
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
    }


def runtime_command(config: Mapping[str, Any], *, runtime_port: int = RUNTIME_PORT) -> list[str]:
    """The container command: the runtime bridge, wrapping the agent's command and args."""
    agent = block(config, "agent")
    return [
        RUNTIME_EXECUTABLE,
        "runtime",
        "--port",
        str(runtime_port),
        "--workspace",
        WORKSPACE_PATH,
        "--protocol",
        agent.get("protocol") or c.PROTOCOL_ACP,
        "--",
        *(str(arg) for arg in agent.get("command") or ()),
        *(str(arg) for arg in agent.get("args") or ()),
    ]


def build_pod(
    session: SessionRef,
    config: Mapping[str, Any],
    *,
    runtime_port: int = RUNTIME_PORT,
    operator_image: str | None = None,
    default_resources: Mapping[str, Any] | None = None,
    runtime_token: bool = False,
) -> dict[str, Any]:
    """The Pod that runs `session` with `config` (its resolved configuration), as Kubernetes JSON.

    `operator_image` is the image used when `agent.image` is unset (it ships the bridge and the
    demo agent); `default_resources` (`{requests: {...}, limits: {...}}`) fills the resources the
    agent says nothing about. `runtime_token`: mount the session's token Secret (`token_secret`)
    and point the bridge at it. Raises InvalidConfiguration when the pod provider cannot run `config`.
    """
    problems = pod_problems(config, operator_image=operator_image)
    if problems:
        raise InvalidConfiguration(problems)
    agent = block(config, "agent")
    pod_template = block(config, "podTemplate")
    workspace = block(config, "workspace")

    container_security = container_security_context(pod_template.get("containerSecurityContext"))
    mounts = [dict(mount) for mount in agent.get("volumeMounts") or ()]
    volumes = [dict(volume) for volume in pod_template.get("volumes") or ()]
    mounts.append({"name": WORKSPACE_VOLUME, "mountPath": WORKSPACE_PATH})
    if workspace.get("size") is not None:
        claim = pvc_name(session.namespace, session.name, session.uid)
        volumes.append({"name": WORKSPACE_VOLUME, "persistentVolumeClaim": {"claimName": claim}})
    else:
        volumes.append({"name": WORKSPACE_VOLUME, "emptyDir": {}})
    if runtime_token:
        mounts.append(token_mount())
        volumes.append(token_volume(session))
    if container_security.get("readOnlyRootFilesystem") is True and not _mounted(mounts, TMP_PATH):
        mounts.append({"name": TMP_VOLUME, "mountPath": TMP_PATH})
        volumes.append({"name": TMP_VOLUME, "emptyDir": {}})

    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": agent.get("image") or operator_image,
        "command": runtime_command(config, runtime_port=runtime_port),
        "env": _env(session, agent) + ([token_env()] if runtime_token else []),
        **{key: agent[key] for key in COPIED_CONTAINER_FIELDS if agent.get(key) is not None},
        **_resources(agent.get("resources"), default_resources),
        "workingDir": agent.get("workingDir") or WORKSPACE_PATH,
        "ports": [{"name": RUNTIME_PORT_NAME, "containerPort": runtime_port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": HEALTH_PATH, "port": RUNTIME_PORT_NAME},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "volumeMounts": mounts,
        "securityContext": container_security,
    }
    lifecycle = block(config, "lifecycle")
    spec: dict[str, Any] = {
        "restartPolicy": c.RESTART_NEVER if lifecycle.get("restartPolicy") == c.RESTART_NEVER else c.RESTART_ON_FAILURE,
        "enableServiceLinks": False,
        "automountServiceAccountToken": pod_template.get("automountServiceAccountToken") is True,
        **{key: pod_template[key] for key in COPIED_POD_FIELDS if pod_template.get(key) is not None},
        "securityContext": pod_security_context(pod_template.get("securityContext")),
        "containers": [container],
        "volumes": volumes,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(session.namespace, session.name, session.uid),
            "namespace": session.namespace,
            "labels": {**(pod_template.get("labels") or {}), **session_labels(session)},
            "annotations": {
                **(pod_template.get("annotations") or {}),
                ANNOTATION_CONFIG_HASH: session.config_hash or config_hash(config),
            },
            "ownerReferences": [session.owner_reference()],
        },
        "spec": spec,
    }


def _env(session: SessionRef, agent: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The agent's env as written (`valueFrom` included: secrets are resolved by the kubelet,
    never read by the operator), then the session's identity."""
    identity = {
        ENV_SESSION_NAME: session.name,
        ENV_SESSION_NAMESPACE: session.namespace,
        ENV_SESSION_UID: session.uid,
    }
    env = [dict(entry) for entry in agent.get("env") or ()
           if entry.get("name") not in identity and entry.get("name") != ENV_TOKEN_FILE]
    env += [{"name": name, "value": value} for name, value in identity.items()]
    return env


def _resources(given: Any, defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    """`{"resources": …}` for the container (empty when there is nothing to say); see the module doc."""
    resources = {key: dict(value) if isinstance(value, Mapping) else value
                 for key, value in (given.items() if isinstance(given, Mapping) else ()) if value is not None}
    named = {name for key in ("requests", "limits") if isinstance(resources.get(key), Mapping)
             for name in resources[key]}
    for key in ("requests", "limits"):
        fill = {name: value for name, value in ((defaults or {}).get(key) or {}).items() if name not in named}
        if fill:
            resources[key] = {**fill, **(resources.get(key) or {})}
    return {"resources": resources} if resources else {}


def _mounted(mounts: list[dict[str, Any]], path: str) -> bool:
    return any(str(mount.get("mountPath", "")).rstrip("/") == path for mount in mounts)
