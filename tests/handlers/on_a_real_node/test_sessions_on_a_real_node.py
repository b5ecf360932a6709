"""A session on the real API server whose pod really runs: the simulated node (process mode) runs
the runtime bridge and the demo agent as local processes, the apiserver proxies `pods/log` to the
node, the workspace claim is provisioned by the controller-manager, and stop/delete go through
graceful pod deletion (SIGTERM, grace period, then the node's grace-0 delete). The bridge reads
its token from the session's token Secret, mounted by the node as a secret volume: a caller
without it is refused, the operator's key opens it."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_sessions.api import constants as c
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.settings import OperatorOptions
from agent_sessions.wire.credentials import session_token
from support.backends import operator_on_a_real_node as real_node_operator
from support.cluster.control_plane import ControlPlane
from support.cluster.real_api import RealAPI
from support.waits import phase_is, ready, wait_session

pytestmark = pytest.mark.realcluster
DEMO = [sys.executable, "-m", "agent_sessions.runtime.demo_agent"]
TIMEOUT = 30.0
GC_TIMEOUT = 90.0


@pytest.fixture
def operator_on_a_real_node(control_plane: ControlPlane, tmp_path: Path) -> Iterator[tuple[RealAPI, OperatorThread]]:
    with real_node_operator(control_plane, tmp_path,
                            OperatorOptions(log_refresh_seconds=1.0, info_refresh_seconds=0.5)) as running:
        yield running


@pytest.fixture
def real(operator_on_a_real_node: tuple[RealAPI, OperatorThread]) -> RealAPI:
    return operator_on_a_real_node[0]


@pytest.fixture
def runtime_key(operator_on_a_real_node: tuple[RealAPI, OperatorThread]) -> bytes:
    operator = operator_on_a_real_node[1]
    assert operator.runtime is not None and operator.runtime.runtime_key is not None
    return operator.runtime.runtime_key


def post(url: str, body: dict, token: str | None) -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def get(url: str, token: str | None) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_a_session_answers_keeps_its_history_across_stop_and_resume_and_is_deleted_cleanly(real: RealAPI,
                                                                                          runtime_key: bytes):
    session = {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "metadata": {"name": "chat", "namespace": "default"},
               "spec": {"agent": {"image": "local", "command": DEMO}, "workspace": {"size": "1Gi"}}}
    real.create(c.SESSION_PLURAL, session)
    obj = wait_session(real, "chat", ready, timeout=TIMEOUT)
    endpoint = obj["status"]["provider"]["endpoint"]
    token = session_token(runtime_key, obj["metadata"]["uid"])
    for anyone in (None, session_token(runtime_key, "another-session")):  # the mounted Secret is required
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(f"{endpoint}/v1/messages", {"text": "let me in"}, anyone)
        assert (refused.value.code, json.load(refused.value)["code"]) == (401, "unauthorized")
    assert post(f"{endpoint}/v1/messages", {"text": "hello real cluster"}, token)["text"] == \
        "You said: hello real cluster"
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
    history = get(f"{obj['status']['provider']['endpoint']}/v1/history", token)
    assert "hello real cluster" in json.dumps(history)  # the workspace survived the stop

    real.delete(c.SESSION_PLURAL, "default", "chat")
    real.wait_for(lambda: real.get(c.SESSION_PLURAL, "default", "chat") is None, timeout=TIMEOUT)
    assert real.list("pods", "default") == [] and real.list("persistentvolumeclaims", "default") == []
    # The token Secret is owned by the session: the controller-manager's garbage collector removes it
    # (once its discovery has picked up the CRD: it resyncs every 30 s).
    real.wait_for(lambda: not [s for s in real.list("secrets", "default")
                               if s["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "runtime-token"],
                  timeout=GC_TIMEOUT)

    requests = real.requests
    assert [r.path for r in requests if r.status == 409] == []
    assert sum(1 for r in requests if (r.method, r.resource) == ("DELETE", "pods")) == 2  # one per stop/delete
    assert sum(1 for r in requests if (r.method, r.resource) == ("POST", "pods")) == 2  # one per start


def test_a_converged_session_costs_no_request_until_its_log_changes(real: RealAPI, runtime_key: bytes):
    # Issue 11: observed from the pod watch, its log read only when the bridge's outputMark moved.
    # The operator refreshes a Running session every 0.5 s (info) and its log every 1 s here.
    session = {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "metadata": {"name": "quiet", "namespace": "default"},
               "spec": {"agent": {"image": "local", "command": DEMO}}}
    real.create(c.SESSION_PLURAL, session)
    obj = wait_session(real, "quiet", lambda o: ready(o) and "ACP session" in (o["status"].get("logs") or {}).get(
        "tail", ""), timeout=TIMEOUT)
    real.wait_for(lambda: _quiet_for(real, 2.0), timeout=TIMEOUT)  # Events, the token Secret: done

    real.reset_requests()
    time.sleep(5.0)  # ten info refreshes, five log refresh periods
    requests = [f"{r.method} {r.path}" for r in real.requests if not getattr(r, "watch", False)]
    # What is left is per namespace, not per session: its pod security label, read at most every
    # 30 s (providers.pod.namespace_labels).
    assert set(requests) <= {"GET /api/v1/namespaces/default"} and len(requests) <= 1, requests

    token = session_token(runtime_key, obj["metadata"]["uid"])
    post(f"{obj['status']['provider']['endpoint']}/v1/messages", {"text": "say something"}, token)
    tail = wait_session(real, "quiet", lambda o: "turn from seq" in (o["status"].get("logs") or {}).get("tail", ""),
                        timeout=TIMEOUT)["status"]["logs"]["tail"]
    assert "say something" not in tail  # message contents are never logged
    reads = {(r.resource, r.subresource) for r in real.requests if r.method == "GET" and not getattr(r, "watch", False)}
    assert ("pods", "log") in reads and ("pods", None) not in reads  # the pod came from the watch


def _quiet_for(real: RealAPI, seconds: float) -> bool:
    """No operator request (watches and the namespace label refresh aside) for `seconds`."""
    real.reset_requests()
    time.sleep(seconds)
    return not [r for r in real.requests if not getattr(r, "watch", False) and r.resource != "namespaces"]
