"""Reading a Pod as an `Observation`: what the lifecycle needs to know, in its vocabulary.

A pure function of the Pod JSON, so every pod state the cluster can produce is one table row in
the tests. The mapping, and the decisions behind it:

* no pod → `ABSENT`; a pod being deleted (`deletionTimestamp`) → `TERMINATING`, whatever it
  still reports: on a real node it lives on for up to its grace period, holding its name, and
  the lifecycle waits for it instead of deleting it again or creating its replacement.
* `Pending`: unschedulable → `PENDING` with the scheduler's message (not permanent: an
  autoscaler may add a node). Image errors (`ImagePullBackOff`, `ErrImagePull`,
  `InvalidImageName`) → `PENDING`, **permanent**: the session fails at once instead of waiting
  for its start timeout. `CreateContainerConfigError` (a missing Secret, ConfigMap or key) is
  **not** permanent: the kubelet retries by itself, and with GitOps or an external-secrets
  controller the Secret routinely appears a little after the session — the start timeout bounds
  the wait, and the message says what is missing meanwhile.
* `Running`: ready → `RUNNING`, ready, with the endpoint `http://<podIP>:<port>`.
  `CrashLoopBackOff` → `RUNNING`, not ready: the kubelet restarts the container by itself
  (`restartPolicy: OnFailure`), so the lifecycle sees the crashes through a growing `restarts`
  (restartCount) and enforces `backoffLimit` on them. When the last crash was `OOMKilled`, that
  is the reason reported: it says what to fix.
* `Succeeded` → `SUCCEEDED` (exit code 0). `Failed` → `FAILED` with the exit code and the reason
  (the pod's own, e.g. `Evicted`, else the container's, e.g. `OOMKilled`, `Error`).
* `Unknown` (the node stopped reporting) → `RUNNING`, not ready, reason `NodeLost`.

Container-written text (termination messages) goes through pattern redaction: it ends up in
conditions and Events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from agent_sessions.api import constants as c
from agent_sessions.lifecycle.observation import BackingState, HealthProbe, Observation

from ..redaction import redact
from .constants import CONTAINER_NAME, RUNTIME_PORT

PERMANENT_WAITING_REASONS: Final = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName"})
"""Waiting reasons that will not fix themselves: fail the session now."""
CRASH_LOOP: Final = "CrashLoopBackOff"
OOM_KILLED: Final = "OOMKilled"
UNSCHEDULABLE: Final = "Unschedulable"
NODE_LOST: Final = "NodeLost"


def observe_pod(
    pod: Mapping[str, Any] | None, *, stopping: bool = False, runtime_port: int = RUNTIME_PORT
) -> Observation:
    """What `pod` (Pod JSON, camelCase; None when there is none) says about its session.

    `stopping` reports an existing pod as TERMINATING: for callers that know a stop was
    requested before the API server shows it.
    """
    if pod is None:
        return Observation(BackingState.ABSENT)
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    name = metadata.get("name")
    container = _container_status(status)
    restarts = int(container.get("restartCount") or 0)
    base: dict[str, Any] = {"id": name, "restarts": restarts}

    if stopping or metadata.get("deletionTimestamp"):
        return Observation(BackingState.TERMINATING, message="the pod is being deleted", **base)

    phase = status.get("phase") or "Pending"
    if phase == "Succeeded":
        terminated = _terminated(container)
        return Observation(
            BackingState.SUCCEEDED,
            reason=terminated.get("reason") or c.REASON_COMPLETED,
            message=_text(terminated.get("message")),
            exit_code=_exit_code(terminated, default=0),
            **base,
        )
    if phase == "Failed":
        return _failed(status, container, base)
    if phase == "Pending":
        return _pending(status, container, base)
    if phase == "Unknown":
        return Observation(
            BackingState.RUNNING,
            reason=NODE_LOST,
            message=status.get("message") or "the pod's node stopped reporting its state",
            **base,
        )
    return _running(status, container, base, runtime_port)


def _pending(status: Mapping[str, Any], container: Mapping[str, Any], base: dict[str, Any]) -> Observation:
    waiting = (container.get("state") or {}).get("waiting")
    if waiting:
        reason = waiting.get("reason") or "Waiting"
        return Observation(
            BackingState.PENDING,
            reason=reason,
            message=_text(waiting.get("message")) or _WAITING_MESSAGES.get(reason, ""),
            permanent=reason in PERMANENT_WAITING_REASONS,
            **base,
        )
    scheduled = _condition(status, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False":
        return Observation(
            BackingState.PENDING,
            reason=scheduled.get("reason") or UNSCHEDULABLE,
            message=scheduled.get("message") or "the pod cannot be scheduled",
            **base,
        )
    return Observation(BackingState.PENDING, message=status.get("message") or "", **base)


def _running(
    status: Mapping[str, Any], container: Mapping[str, Any], base: dict[str, Any], runtime_port: int
) -> Observation:
    pod_ip = status.get("podIP")
    endpoint = f"http://{pod_ip}:{runtime_port}" if pod_ip else None
    state = container.get("state") or {}
    last = (container.get("lastState") or {}).get("terminated") or {}
    last_oom = last.get("reason") == OOM_KILLED

    waiting = state.get("waiting")
    if waiting:
        reason = waiting.get("reason") or "Waiting"
        message = _text(waiting.get("message")) or _WAITING_MESSAGES.get(reason, "")
        if last:
            message = _join(message, f"last exit: {_describe_exit(last)}")
        crash_loop = reason == CRASH_LOOP
        return Observation(
            BackingState.RUNNING,
            endpoint=endpoint,
            reason=OOM_KILLED if crash_loop and last_oom else reason,
            message=message,
            permanent=reason in PERMANENT_WAITING_REASONS,
            health=HealthProbe(c.HEALTH_UNHEALTHY, _join(reason, message, ": ")) if crash_loop else None,
            **base,
        )
    terminated = state.get("terminated")
    if terminated:
        # Exited, not yet restarted (OnFailure) or not yet reflected in the phase (Never).
        return Observation(
            BackingState.RUNNING,
            endpoint=endpoint,
            reason=terminated.get("reason") or c.REASON_AGENT_EXITED,
            message=f"the agent exited: {_describe_exit(terminated)}",
            exit_code=_exit_code(terminated),
            **base,
        )
    ready_condition = _condition(status, "Ready")
    ready = bool(container.get("ready", True)) and (ready_condition or {}).get("status") == "True"
    if ready:
        # After a restart, say why the container last ended (e.g. OOMKilled): the lifecycle puts
        # it in the Restarted event.
        return Observation(
            BackingState.RUNNING,
            ready=True,
            endpoint=endpoint,
            reason=(last.get("reason") or c.REASON_AGENT_EXITED) if last else None,
            message=f"last exit: {_describe_exit(last)}" if last else "",
            health=HealthProbe(c.HEALTH_HEALTHY),
            **base,
        )
    return Observation(
        BackingState.RUNNING,
        endpoint=endpoint,
        reason=OOM_KILLED if last_oom else None,
        message=(ready_condition or {}).get("message") or "the runtime is not ready yet",
        **base,
    )


def _failed(status: Mapping[str, Any], container: Mapping[str, Any], base: dict[str, Any]) -> Observation:
    terminated = _terminated(container)
    reason = status.get("reason") or terminated.get("reason") or c.REASON_FAILED
    message = status.get("message") or ""
    if terminated:
        message = _join(message, f"the agent exited: {_describe_exit(terminated)}")
    return Observation(
        BackingState.FAILED,
        reason=reason,
        message=message or "the pod failed",
        exit_code=_exit_code(terminated),
        **base,
    )


_WAITING_MESSAGES: Final = {
    "ContainerCreating": "the container is being created",
    "PodInitializing": "the pod is initializing",
    CRASH_LOOP: "the agent keeps crashing; the kubelet restarts it with back-off",
}


def _container_status(status: Mapping[str, Any]) -> Mapping[str, Any]:
    statuses = [s for s in status.get("containerStatuses") or () if isinstance(s, Mapping)]
    for entry in statuses:
        if entry.get("name") == CONTAINER_NAME:
            return entry
    return statuses[0] if statuses else {}


def _terminated(container: Mapping[str, Any]) -> Mapping[str, Any]:
    """The container's termination: current, else the last one (a pod that ended while the
    container was being restarted keeps it there)."""
    return (container.get("state") or {}).get("terminated") or (container.get("lastState") or {}).get(
        "terminated"
    ) or {}


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def _exit_code(terminated: Mapping[str, Any], default: int | None = None) -> int | None:
    code = terminated.get("exitCode")
    return int(code) if isinstance(code, int) else default


def _describe_exit(terminated: Mapping[str, Any]) -> str:
    parts = []
    if isinstance(terminated.get("exitCode"), int):
        parts.append(f"code {terminated['exitCode']}")
    if terminated.get("reason"):
        parts.append(f"({terminated['reason']})")
    text = " ".join(parts) or "unknown"
    detail = _text(terminated.get("message"))
    return f"{text}: {detail}" if detail else text


def _text(value: Any) -> str:
    """Container-written text, trimmed and redacted."""
    return redact(str(value).strip()) if value else ""


def _join(first: str, second: str, separator: str = "; ") -> str:
    return f"{first}{separator}{second}" if first and second else first or second
