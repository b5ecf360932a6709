"""Reading a Pod as an Observation: one row per pod state the cluster produces.

Fixtures are written by hand after what the kubelet and scheduler really report.
"""

from __future__ import annotations

import pytest

from agent_sessions.lifecycle import BackingState, HealthProbe, Observation
from agent_sessions.providers.pod import observe_pod

NAME = "ags-demo-1a2b3c4d"


def pod(phase: str | None, *, containers: list[dict] | None = None, conditions: list[dict] | None = None,
        pod_ip: str | None = None, deleting: bool = False, **status) -> dict:
    metadata = {"name": NAME, "namespace": "team-a", "uid": "pod-uid"}
    if deleting:
        metadata["deletionTimestamp"] = "2025-03-01T09:00:00Z"
    body = {"phase": phase, **status} if phase else dict(status)
    if containers is not None:
        body["containerStatuses"] = containers
    if conditions is not None:
        body["conditions"] = conditions
    if pod_ip:
        body["podIP"] = pod_ip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {}, "status": body}


def agent(state: dict, *, ready: bool = False, restarts: int = 0, last: dict | None = None) -> dict:
    return {
        "name": "agent", "image": "ghcr.io/acme/agent:1.4", "imageID": "", "ready": ready,
        "restartCount": restarts, "started": "running" in state, "state": state,
        "lastState": {"terminated": last} if last else {},
    }


def condition(kind: str, status: str, reason: str | None = None, message: str | None = None) -> dict:
    result = {"type": kind, "status": status, "lastTransitionTime": "2025-03-01T09:00:00Z"}
    if reason:
        result["reason"] = reason
    if message:
        result["message"] = message
    return result


def waiting(reason: str, message: str | None = None) -> dict:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def terminated(code: int, reason: str, message: str | None = None) -> dict:
    return {"exitCode": code, "reason": reason, "startedAt": "2025-03-01T09:00:00Z",
            "finishedAt": "2025-03-01T09:01:00Z", **({"message": message} if message else {})}


RUNNING_STATE = {"running": {"startedAt": "2025-03-01T09:00:05Z"}}
READY = [condition("Initialized", "True"), condition("Ready", "True"), condition("ContainersReady", "True"),
         condition("PodScheduled", "True")]
NOT_READY = [condition("Initialized", "True"),
             condition("Ready", "False", "ContainersNotReady", "containers with unready status: [agent]"),
             condition("PodScheduled", "True")]
UNSCHEDULABLE_MESSAGE = "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available."
PULL_MESSAGE = 'Back-off pulling image "ghcr.io/acme/agnet:1.4"'
SECRET_MESSAGE = 'couldn\'t find key token in Secret team-a/creds'


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(None, Observation(BackingState.ABSENT), id="no-pod-is-absent"),
        pytest.param(
            pod("Pending", conditions=[condition("PodScheduled", "False", "Unschedulable", UNSCHEDULABLE_MESSAGE)]),
            Observation(BackingState.PENDING, id=NAME, reason="Unschedulable", message=UNSCHEDULABLE_MESSAGE),
            id="unschedulable-is-pending-with-the-schedulers-message",
        ),
        pytest.param(
            pod("Pending", containers=[agent(waiting("ContainerCreating"))],
                conditions=[condition("PodScheduled", "True")]),
            Observation(BackingState.PENDING, id=NAME, reason="ContainerCreating",
                        message="the container is being created"),
            id="container-creating-is-pending",
        ),
        pytest.param(
            pod("Pending", containers=[agent(waiting("PodInitializing"))]),
            Observation(BackingState.PENDING, id=NAME, reason="PodInitializing", message="the pod is initializing"),
            id="pod-initializing-is-pending",
        ),
        pytest.param(
            pod("Pending", containers=[agent(waiting("ImagePullBackOff", PULL_MESSAGE))]),
            Observation(BackingState.PENDING, id=NAME, reason="ImagePullBackOff", message=PULL_MESSAGE, permanent=True),
            id="image-pull-backoff-is-permanent",
        ),
        pytest.param(
            pod("Pending", containers=[agent(waiting("ErrImagePull", "manifest unknown"))]),
            Observation(BackingState.PENDING, id=NAME, reason="ErrImagePull", message="manifest unknown",
                        permanent=True),
            id="err-image-pull-is-permanent",
        ),
        pytest.param(
            pod("Pending", containers=[agent(waiting("InvalidImageName", 'couldn\'t parse image "UPPER:case"'))]),
            Observation(BackingState.PENDING, id=NAME, reason="InvalidImageName",
                        message='couldn\'t parse image "UPPER:case"', permanent=True),
            id="invalid-image-name-is-permanent",
        ),
        pytest.param(
            pod("Pending", containers=[agent(waiting("CreateContainerConfigError", SECRET_MESSAGE))]),
            Observation(BackingState.PENDING, id=NAME, reason="CreateContainerConfigError", message=SECRET_MESSAGE),
            id="missing-secret-key-waits-for-the-secret",
        ),
        pytest.param(
            pod("Pending"),
            Observation(BackingState.PENDING, id=NAME),
            id="just-created-is-pending",
        ),
        pytest.param(
            pod("Running", containers=[agent(RUNNING_STATE, ready=True)], conditions=READY, pod_ip="10.1.2.3"),
            Observation(BackingState.RUNNING, ready=True, id=NAME, endpoint="http://10.1.2.3:8080",
                        health=HealthProbe("Healthy")),
            id="running-and-ready-serves-its-endpoint",
        ),
        pytest.param(
            pod("Running", containers=[agent(RUNNING_STATE)], conditions=NOT_READY, pod_ip="10.1.2.3"),
            Observation(BackingState.RUNNING, id=NAME, endpoint="http://10.1.2.3:8080",
                        message="containers with unready status: [agent]"),
            id="running-not-ready-yet",
        ),
        pytest.param(
            pod("Running", containers=[agent(waiting("CrashLoopBackOff", "back-off 40s restarting failed container"),
                                             restarts=3, last=terminated(1, "Error"))],
                conditions=NOT_READY, pod_ip="10.1.2.3"),
            Observation(BackingState.RUNNING, id=NAME, endpoint="http://10.1.2.3:8080", restarts=3,
                        reason="CrashLoopBackOff",
                        message="back-off 40s restarting failed container; last exit: code 1 (Error)",
                        health=HealthProbe("Unhealthy",
                                           "CrashLoopBackOff: back-off 40s restarting failed container; last exit: code 1 (Error)")),
            id="crash-loop-stays-running-and-counts-restarts",
        ),
        pytest.param(
            pod("Running", containers=[agent(waiting("CrashLoopBackOff", "back-off 10s"), restarts=1,
                                             last=terminated(137, "OOMKilled"))],
                conditions=NOT_READY, pod_ip="10.1.2.3"),
            Observation(BackingState.RUNNING, id=NAME, endpoint="http://10.1.2.3:8080", restarts=1,
                        reason="OOMKilled", message="back-off 10s; last exit: code 137 (OOMKilled)",
                        health=HealthProbe("Unhealthy", "CrashLoopBackOff: back-off 10s; last exit: code 137 (OOMKilled)")),
            id="crash-loop-after-oom-reports-oom-killed",
        ),
        pytest.param(
            pod("Running", containers=[agent(RUNNING_STATE, restarts=2, last=terminated(137, "OOMKilled"))],
                conditions=NOT_READY, pod_ip="10.1.2.3"),
            Observation(BackingState.RUNNING, id=NAME, endpoint="http://10.1.2.3:8080", restarts=2,
                        reason="OOMKilled", message="containers with unready status: [agent]"),
            id="restarted-after-oom-not-ready-yet",
        ),
        pytest.param(
            pod("Running", containers=[agent({"terminated": terminated(2, "Error", "boom")}, restarts=0)],
                conditions=NOT_READY, pod_ip="10.1.2.3"),
            Observation(BackingState.RUNNING, id=NAME, endpoint="http://10.1.2.3:8080", reason="Error",
                        message="the agent exited: code 2 (Error): boom", exit_code=2),
            id="exited-not-yet-restarted",
        ),
        pytest.param(
            pod("Succeeded", containers=[agent({"terminated": terminated(0, "Completed")})]),
            Observation(BackingState.SUCCEEDED, id=NAME, reason="Completed", exit_code=0),
            id="succeeded-with-exit-code-zero",
        ),
        pytest.param(
            pod("Failed", containers=[agent({"terminated": terminated(3, "Error")})]),
            Observation(BackingState.FAILED, id=NAME, reason="Error", message="the agent exited: code 3 (Error)",
                        exit_code=3),
            id="failed-with-exit-code",
        ),
        pytest.param(
            pod("Failed", containers=[agent({"terminated": terminated(137, "OOMKilled")})]),
            Observation(BackingState.FAILED, id=NAME, reason="OOMKilled",
                        message="the agent exited: code 137 (OOMKilled)", exit_code=137),
            id="oom-killed-without-restart-fails",
        ),
        pytest.param(
            pod("Failed", reason="Evicted",
                message="The node was low on resource: memory. Container agent was using 3Gi, request is 1Gi.",
                containers=[agent({"terminated": terminated(137, "ContainerStatusUnknown")})]),
            Observation(BackingState.FAILED, id=NAME, reason="Evicted",
                        message="The node was low on resource: memory. Container agent was using 3Gi, request is 1Gi."
                                "; the agent exited: code 137 (ContainerStatusUnknown)", exit_code=137),
            id="evicted-fails-with-the-eviction-message",
        ),
        pytest.param(
            pod("Running", containers=[agent(RUNNING_STATE, ready=True)], conditions=READY, pod_ip="10.1.2.3",
                deleting=True),
            Observation(BackingState.TERMINATING, id=NAME, message="the pod is being deleted"),
            id="being-deleted-is-terminating",
        ),
        pytest.param(
            pod("Failed", containers=[agent({"terminated": terminated(1, "Error")}, restarts=2)], deleting=True),
            Observation(BackingState.TERMINATING, id=NAME, restarts=2, message="the pod is being deleted"),
            id="a-failed-pod-being-replaced-is-terminating-not-failed-again",
        ),
        pytest.param(
            pod("Unknown", message="node ip-10-0-0-1 is not ready"),
            Observation(BackingState.RUNNING, id=NAME, reason="NodeLost", message="node ip-10-0-0-1 is not ready"),
            id="unknown-phase-is-a-lost-node",
        ),
    ],
)
def test_observe_pod(given, expected):
    assert observe_pod(given) == expected


def test_stopping_reports_an_existing_pod_as_stopped():
    running = pod("Running", containers=[agent(RUNNING_STATE, ready=True)], conditions=READY, pod_ip="10.1.2.3")
    assert observe_pod(running, stopping=True).state == BackingState.TERMINATING
    assert observe_pod(None, stopping=True).state == BackingState.ABSENT


def test_endpoint_uses_the_runtime_port():
    running = pod("Running", containers=[agent(RUNNING_STATE, ready=True)], conditions=READY, pod_ip="10.1.2.3")
    assert observe_pod(running, runtime_port=9000).endpoint == "http://10.1.2.3:9000"


def test_container_written_messages_are_redacted():
    leaking = pod("Failed", containers=[agent({"terminated": terminated(1, "Error", "auth failed: password=hunter2")})])
    assert "hunter2" not in observe_pod(leaking).message
