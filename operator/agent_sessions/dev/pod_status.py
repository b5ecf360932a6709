"""Pod status documents shaped as a kubelet writes them.

Two stand-ins play the kubelet's part for the embedded API: the fake kubelet (which only marks
pods Running) and the local pod runner (which really runs them). The operator reads what they
write exactly as it reads a real node's reports (`providers/pod/observe.py`), so both build
their documents here, from the same pieces: one shape, whichever stand-in wrote it.
"""

from __future__ import annotations

from typing import Any

NODE_NAME = "embedded-node"
"""The node both stand-ins bind the pods they take to (``POST pods/{name}/binding``, as the
scheduler would): a real server deletes only pods bound to a node gracefully."""


def container_name(pod: dict) -> str:
    return pod["spec"]["containers"][0]["name"]


def container_image(pod: dict) -> str:
    return pod["spec"]["containers"][0].get("image", "")


def first_container_status(status: dict) -> dict:
    statuses = status.get("containerStatuses") or []
    return statuses[0] if statuses else {}


def conditions(ready: bool, now: str) -> list[dict]:
    """The conditions of a scheduled, initialized pod whose containers are (not) ready."""
    flag = "True" if ready else "False"
    return [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
        {"type": "Ready", "status": flag, "lastTransitionTime": now},
    ]


def container_status(
    pod: dict,
    *,
    state: dict,
    restarts: int = 0,
    ready: bool = False,
    started: bool = False,
    last_state: dict | None = None,
    container_id: str | None = None,
    image_id: str = "",
) -> dict:
    """The first container's entry of `status.containerStatuses`."""
    status: dict[str, Any] = {
        "name": container_name(pod),
        "image": container_image(pod),
        "imageID": image_id,
        "ready": ready,
        "started": started,
        "restartCount": restarts,
        "state": state,
    }
    if container_id is not None:
        status["containerID"] = container_id
    if last_state:
        status["lastState"] = last_state
    return status


def started_status(pod: dict, container: dict, *, ip: str, host_ip: str, start_time: str, now: str,
                   phase: str = "Running") -> dict:
    """The status of a pod that has its sandbox (an IP) and `container` (a `container_status`);
    the pod is ready when the container is."""
    return {
        "phase": phase,
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "hostIP": host_ip,
        "startTime": start_time,
        "conditions": conditions(ready=bool(container.get("ready")), now=now),
        "containerStatuses": [container],
    }


def pending_status(pod: dict, reason: str, message: str = "", *, now: str) -> dict:
    """A scheduled pod whose container waits (`ContainerCreating`, `ImagePullBackOff`, ...)."""
    waiting = {"reason": reason}
    if message:
        waiting["message"] = message
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
        "containerStatuses": [container_status(pod, state={"waiting": waiting})],
    }


def terminated_status(pod: dict, phase: str, terminated: dict, *, now: str) -> dict:
    """The pod's current status, turned terminal (`Succeeded`/`Failed`) with `terminated` as
    the container's state."""
    status = dict(pod.get("status") or {})
    container = dict(first_container_status(status)) or {
        "name": container_name(pod), "image": container_image(pod), "imageID": "", "restartCount": 0,
    }
    container.update(ready=False, started=False, state={"terminated": terminated})
    status.update(phase=phase, containerStatuses=[container], conditions=conditions(False, now))
    return status
