"""A session on the real API server whose pod really runs: the simulated node (process mode) runs
the runtime bridge and the demo agent as local processes, the apiserver proxies `pods/log` to the
node, the workspace claim is provisioned by the controller-manager, and stop/delete go through
graceful pod deletion (SIGTERM, grace period, then the node's grace-0 delete)."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_sessions.api import constants as c
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.settings import OperatorOptions
from support.backends import OPERATOR_ROLE, RealCluster, grant_operator_role
from support.cluster.control_plane import ControlPlane
from support.cluster.fault_proxy import FaultProxy
from support.cluster.node import SimulatedNode
from support.cluster.real_api import RealAPI
from support.waits import phase_is, ready, wait_session

pytestmark = pytest.mark.realcluster
DEMO = [sys.executable, "-m", "agent_sessions.runtime.demo_agent"]
TIMEOUT = 30.0


@pytest.fixture
def real(control_plane: ControlPlane, tmp_path: Path) -> Iterator[RealAPI]:
    admin = control_plane.client("admin")
    try:
        if admin.get("clusterroles", None, OPERATOR_ROLE) is None:
            grant_operator_role(control_plane)
    finally:
        admin.close()
    with FaultProxy(control_plane.url, control_plane.ca_file) as proxy, \
            SimulatedNode(control_plane, mode="process", root=tmp_path / "node") as node:
        RealCluster(control_plane, proxy, node).ensure_crds()
        api = RealAPI(control_plane, proxy, node)
        operator = OperatorThread(OperatorOptions(log_refresh_seconds=1.0, info_refresh_seconds=0.5),
                                  kubeconfig=str(api.write_kubeconfig(tmp_path / "operator.kubeconfig"))).start()
        try:
            yield api
        finally:
            operator.stop()
            api.reset_namespace("default")
            api.close()


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def test_a_session_answers_keeps_its_history_across_stop_and_resume_and_is_deleted_cleanly(real: RealAPI):
    session = {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "metadata": {"name": "chat", "namespace": "default"},
               "spec": {"agent": {"image": "local", "command": DEMO}, "workspace": {"size": "1Gi"}}}
    real.create(c.SESSION_PLURAL, session)
    obj = wait_session(real, "chat", ready, timeout=TIMEOUT)
    endpoint = obj["status"]["provider"]["endpoint"]
    assert post(f"{endpoint}/v1/messages", {"text": "hello real cluster"})["text"] == "You said: hello real cluster"
    claim = real.list("persistentvolumeclaims", "default")[0]
    assert claim["status"]["phase"] == "Bound"  # provisioned by the controller-manager

    # The log tail comes through pods/log: apiserver → the node's kubelet port (HTTPS).
    wait_session(real, "chat", lambda o: bool(((o["status"].get("logs") or {}).get("tail") or "").strip()),
                 timeout=TIMEOUT)

    real.patch(c.SESSION_PLURAL, "default", "chat", {"spec": {"state": "Stopped"}})
    wait_session(real, "chat", phase_is(c.PHASE_STOPPED), timeout=TIMEOUT)
    assert real.list("pods", "default") == []  # Stopped only once the pod is really gone

    real.patch(c.SESSION_PLURAL, "default", "chat", {"spec": {"state": "Running"}})
    obj = wait_session(real, "chat", ready, timeout=TIMEOUT)
    history = get(f"{obj['status']['provider']['endpoint']}/v1/history")
    assert "hello real cluster" in json.dumps(history)  # the workspace survived the stop

    real.delete(c.SESSION_PLURAL, "default", "chat")
    real.wait_for(lambda: real.get(c.SESSION_PLURAL, "default", "chat") is None, timeout=TIMEOUT)
    assert real.list("pods", "default") == [] and real.list("persistentvolumeclaims", "default") == []

    requests = real.requests
    assert [r.path for r in requests if r.status == 409] == []
    assert sum(1 for r in requests if (r.method, r.resource) == ("DELETE", "pods")) == 2  # one per stop/delete
    assert sum(1 for r in requests if (r.method, r.resource) == ("POST", "pods")) == 2  # one per start
