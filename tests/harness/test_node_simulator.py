"""The node simulator (tests/support/cluster/node.py) against a real kube-apiserver: it registers
a schedulable node, runs the pods kube-scheduler binds to it (fake kubelet or real processes),
serves their logs through the apiserver's `pods/log` proxy, and finishes graceful deletion."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_sessions.dev.pod_runner import LocalPodRunner
from support.cluster.control_plane import ControlPlane
from support.cluster.node import SimulatedNode
from support.cluster.rest import RestClient

TIMEOUT = 10.0


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture
def admin(real_api: RestClient) -> RestClient:
    return real_api  # the cluster admin's client (support.cluster.fixtures)


@pytest.fixture
def namespace(admin: RestClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of its own; deleted at the end, its pods gone while the node still runs
    (the node fixture is torn down after this one)."""
    name = f"node-sim-{uuid.uuid4().hex[:8]}"
    admin.create("namespaces", {"metadata": {"name": name}})
    yield name
    for item in admin.list("pods", name):  # the node finishes their deletion
        admin.delete("pods", name, item["metadata"]["name"])
    admin.wait_for(lambda: not admin.list("pods", name), timeout=TIMEOUT)
    admin.delete("namespaces", None, name)


@pytest.fixture
def fake_node(control_plane: ControlPlane) -> Iterator[SimulatedNode]:
    with SimulatedNode(control_plane, mode="fake") as node:
        yield node


@pytest.fixture
def process_node(control_plane: ControlPlane, tmp_path: Path) -> Iterator[SimulatedNode]:
    with SimulatedNode(control_plane, mode="process", root=tmp_path / "pods") as node:
        yield node


# --- helpers ---------------------------------------------------------------------------------

def pod(name: str, command: list[str] | None = None, **spec: object) -> dict:
    container: dict = {"name": "main", "image": "example.invalid/agent:1"}
    if command is not None:
        container["command"] = command
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container], **spec}}


def running_and_ready(admin: RestClient, namespace: str, name: str) -> dict:
    def check() -> dict | None:
        current = admin.get("pods", namespace, name)
        if current is None or (current.get("status") or {}).get("phase") != "Running":
            return None
        ready = {c["type"]: c["status"] for c in current["status"].get("conditions") or []}
        return current if ready.get("Ready") == "True" else None
    return admin.wait_for(check, timeout=TIMEOUT)


def restart_count(current: dict | None) -> int:
    statuses = ((current or {}).get("status") or {}).get("containerStatuses") or [{}]
    return statuses[0].get("restartCount", 0)


def log(admin: RestClient, namespace: str, name: str, **query: object) -> str:
    return admin.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}/log",
                         query=query, raw=True)


# --- the node --------------------------------------------------------------------------------

def test_node_is_registered_ready_with_a_lease(fake_node: SimulatedNode, admin: RestClient) -> None:
    node = admin.get("nodes", None, fake_node.name)
    assert node is not None
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == fake_node.port
    assert node["status"]["allocatable"]["pods"] == "500"
    assert not [t for t in node["spec"].get("taints") or [] if t["effect"] == "NoSchedule"]
    lease = admin.get("leases", "kube-node-lease", fake_node.name)
    assert lease is not None and lease["spec"]["holderIdentity"] == fake_node.name


def test_stop_deletes_the_node(control_plane: ControlPlane, admin: RestClient) -> None:
    with SimulatedNode(control_plane, mode="fake") as node:
        name = node.name
    assert admin.get("nodes", None, name) is None
    assert admin.get("leases", "kube-node-lease", name) is None


# --- fake mode -------------------------------------------------------------------------------

def test_fake_pod_is_scheduled_runs_and_serves_its_log(
        fake_node: SimulatedNode, admin: RestClient, namespace: str) -> None:
    admin.create("pods", pod("web"), namespace)
    current = running_and_ready(admin, namespace, "web")
    assert current["spec"]["nodeName"] == fake_node.name
    assert current["status"]["podIP"]
    fake_node.set_pod_log(namespace, "web", "one\ntwo\nthree\n")
    assert log(admin, namespace, "web", tailLines=2) == "two\nthree\n"
    fake_node.append_pod_log(namespace, "web", "four\n")
    assert log(admin, namespace, "web") == "one\ntwo\nthree\nfour\n"
    assert log(admin, namespace, "web", container="main", limitBytes=5) == "one\nt"
    assert log(admin, namespace, "web", previous="true") == ""


def test_fake_crash_restarts_the_container(
        fake_node: SimulatedNode, admin: RestClient, namespace: str) -> None:
    admin.create("pods", pod("agent"), namespace)
    running_and_ready(admin, namespace, "agent")
    fake_node.crash(namespace, "agent")
    current = admin.wait_for(lambda: restart_count(admin.get("pods", namespace, "agent")) == 1
                             and admin.get("pods", namespace, "agent"), timeout=TIMEOUT)
    status = current["status"]["containerStatuses"][0]
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert current["status"]["phase"] == "Running"


def test_fake_graceful_deletion_then_same_name(
        control_plane: ControlPlane, admin: RestClient, namespace: str) -> None:
    with SimulatedNode(control_plane, mode="fake", termination_delay=0.5) as node:
        created = admin.create("pods", pod("agent"), namespace)
        running_and_ready(admin, namespace, "agent")
        deleted = admin.delete("pods", namespace, "agent")
        assert deleted["metadata"].get("deletionTimestamp")
        terminating = admin.get("pods", namespace, "agent")
        assert terminating is not None and terminating["metadata"].get("deletionTimestamp")
        admin.wait_for(lambda: admin.get("pods", namespace, "agent") is None, timeout=TIMEOUT)
        again = admin.create("pods", pod("agent"), namespace)
        assert again["metadata"]["uid"] != created["metadata"]["uid"]
        running_and_ready(admin, namespace, "agent")
        admin.delete("pods", namespace, "agent")
        admin.wait_for(lambda: admin.get("pods", namespace, "agent") is None, timeout=TIMEOUT)
        assert node.kubelet is not None


# --- process mode ----------------------------------------------------------------------------

def test_process_pod_runs_its_command_and_logs(
        process_node: SimulatedNode, admin: RestClient, namespace: str) -> None:
    script = "for n in 1 2 3; do echo line $n; done; exec sleep 30"
    admin.create("pods", pod("printer", ["sh", "-c", script]), namespace)
    running_and_ready(admin, namespace, "printer")
    assert admin.wait_for(lambda: log(admin, namespace, "printer", tailLines=2) == "line 2\nline 3\n",
                          timeout=TIMEOUT)


def test_process_graceful_deletion_sends_sigterm_first(
        process_node: SimulatedNode, admin: RestClient, namespace: str, tmp_path: Path) -> None:
    marker = tmp_path / "terminated"
    script = (f"trap 'echo bye > {marker}; sleep 0.3; exit 0' TERM; echo up; "
              "while :; do sleep 0.1; done")
    admin.create("pods", pod("agent", ["sh", "-c", script], terminationGracePeriodSeconds=5),
                 namespace)
    running_and_ready(admin, namespace, "agent")
    admin.wait_for(lambda: log(admin, namespace, "agent") == "up\n", timeout=TIMEOUT)
    deleted = admin.delete("pods", namespace, "agent")
    assert deleted["metadata"].get("deletionTimestamp")
    terminating = admin.get("pods", namespace, "agent")
    assert terminating is not None and terminating["metadata"].get("deletionTimestamp")
    admin.wait_for(lambda: admin.get("pods", namespace, "agent") is None, timeout=TIMEOUT)
    assert marker.read_text() == "bye\n"  # written on SIGTERM, before the pod went
    admin.create("pods", pod("agent", ["sleep", "30"]), namespace)
    running_and_ready(admin, namespace, "agent")


def test_process_env_from_a_secret_and_restart_after_a_crash(
        process_node: SimulatedNode, admin: RestClient, namespace: str) -> None:
    admin.create("secrets", {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}},
                 namespace)
    spec = pod("agent", ["sh", "-c", "echo token=$TOKEN; sleep 0.2; exit 3"],
               restartPolicy="OnFailure")
    spec["spec"]["containers"][0]["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    admin.create("pods", spec, namespace)
    current = admin.wait_for(lambda: restart_count(admin.get("pods", namespace, "agent")) >= 1
                             and admin.get("pods", namespace, "agent"), timeout=TIMEOUT)
    last = current["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 3
    assert log(admin, namespace, "agent", tailLines=1) == "token=s3cret\n"


def test_follow_streams_the_log_until_the_pod_goes(
        control_plane: ControlPlane, fake_node: SimulatedNode, admin: RestClient,
        namespace: str) -> None:
    admin.create("pods", pod("web"), namespace)
    running_and_ready(admin, namespace, "web")
    fake_node.set_pod_log(namespace, "web", "first\n")
    received: list[str] = []
    follower = control_plane.client("admin")

    def follow() -> None:
        received.append(log(follower, namespace, "web", follow="true"))

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(0.3)
    fake_node.append_pod_log(namespace, "web", "second\n")
    time.sleep(0.3)
    admin.delete("pods", namespace, "web")
    thread.join(TIMEOUT)
    follower.close()
    assert received == ["first\nsecond\n"]


def test_stop_ends_the_processes_it_started(
        control_plane: ControlPlane, admin: RestClient, namespace: str, tmp_path: Path) -> None:
    with SimulatedNode(control_plane, mode="process", root=tmp_path / "pods") as node:
        admin.create("pods", pod("sleeper", ["sleep", "30"]), namespace)
        running_and_ready(admin, namespace, "sleeper")
        assert isinstance(node.kubelet, LocalPodRunner)
        process = node.kubelet.process(namespace, "sleeper")
        assert process is not None and process.poll() is None
    assert process.poll() is not None
    # Nothing finishes its graceful deletion any more: the pod goes at once.
    admin.delete("pods", namespace, "sleeper", grace_period_seconds=0)
