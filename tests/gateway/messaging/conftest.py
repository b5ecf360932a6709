"""Everything real: the embedded API (tokens + RBAC), the local pod runner running the runtime
bridge and the demo agent as processes, the operator, and the gateway."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent_sessions.api import constants as c
from agent_sessions.dev.authorization import RBACAuthorizer
from agent_sessions.dev.pod_runner import LocalPodRunner
from agent_sessions.dev.strict_api import StrictKubernetesAPI, running_api
from agent_sessions.gateway.options import GatewayOptions
from agent_sessions.gateway.server import serve_gateway
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.k8s.client import make_api_client
from gateway.conftest import CRDS, GATEWAY_RBAC, RBAC_API, TOKENS, USER_RBAC
from support.operators import Operators, operators  # noqa: F401 (fixture)
from support.waits import wait_session_async

HERE = Path(__file__).resolve().parent
NAMESPACE = "team-a"
OPERATOR_USER = "system:serviceaccount:agent-sessions:agent-session-operator"
OPERATOR_RBAC = [
    {"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": {"name": "operator-all"},
     "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
    {"apiVersion": RBAC_API, "kind": "ClusterRoleBinding", "metadata": {"name": "operator-all"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "operator-all"},
     "subjects": [{"kind": "ServiceAccount", "name": "agent-session-operator", "namespace": "agent-sessions"}]},
]
"""The operator's own RBAC is proven minimal in tests/handlers/test_operator_rbac.py."""
INSTALL_NAMESPACE = "agent-sessions"
RUNTIME_KEY_SECRET = f"{INSTALL_NAMESPACE}/agent-sessions-runtime-key"
"""The runtime key Secret: the operator creates it, the gateway reads it (as the chart sets them up)."""
GATEWAY_KEY_RBAC = [
    {"apiVersion": RBAC_API, "kind": "Role", "metadata": {"name": "runtime-key", "namespace": INSTALL_NAMESPACE},
     "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["agent-sessions-runtime-key"],
                "verbs": ["get"]}]},
    {"apiVersion": RBAC_API, "kind": "RoleBinding", "metadata": {"name": "runtime-key", "namespace": INSTALL_NAMESPACE},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "runtime-key"},
     "subjects": [{"kind": "ServiceAccount", "name": "agent-sessions-gateway", "namespace": "agent-sessions"}]},
]
DEMO = [sys.executable, "-m", "agent_sessions.runtime.demo_agent"]
INFO_AGENT = [sys.executable, str(HERE / "info_agent.py")]


@pytest.fixture
def api() -> Iterator[StrictKubernetesAPI]:
    tokens = {**TOKENS, "operator-token": (OPERATOR_USER, ["system:serviceaccounts"])}
    authorizer = RBACAuthorizer.from_manifests([*GATEWAY_RBAC, *GATEWAY_KEY_RBAC, *USER_RBAC, *OPERATOR_RBAC])
    with running_api(crds=CRDS, tokens=tokens, authorizer=authorizer) as server:
        server.create("namespaces", {"metadata": {"name": NAMESPACE}})
        server.create("namespaces", {"metadata": {"name": INSTALL_NAMESPACE}})
        yield server


@pytest.fixture
def runner(api: StrictKubernetesAPI, tmp_path: Path) -> Iterator[LocalPodRunner]:
    with LocalPodRunner(api, tmp_path / "pods") as local:
        yield local


@pytest.fixture
def start_operator(api: StrictKubernetesAPI, tmp_path: Path, operators: Operators) -> Callable[..., OperatorThread]:
    kubeconfig = str(api.write_kubeconfig(tmp_path / "operator-kubeconfig", token="operator-token"))
    return operators.starter(kubeconfig, info_refresh_seconds=0.3, log_refresh_seconds=1.0,
                             runtime_key_secret=RUNTIME_KEY_SECRET)


@pytest.fixture
def operator(runner: LocalPodRunner, start_operator: Callable[..., OperatorThread]) -> OperatorThread:
    return start_operator()


@pytest.fixture
async def gateway(api: StrictKubernetesAPI, tmp_path: Path) -> AsyncIterator[str]:
    kubeconfig = api.write_kubeconfig(tmp_path / "gateway-kubeconfig", token="gateway-token")
    client = await make_api_client(str(kubeconfig))
    options = GatewayOptions(host="127.0.0.1", port=0, keepalive_seconds=15.0, history_poll_seconds=0.05,
                             wake_timeout_seconds=60.0, runtime_key_secret=RUNTIME_KEY_SECRET,
                             runtime_key_retry_seconds=0.05)
    try:
        async with serve_gateway(options, client) as running:
            yield running.url
    finally:
        await client.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer alice-token"}) as session:
        yield session


def agent_session(name: str, command: list[str] = DEMO, **spec: Any) -> dict:
    spec.setdefault("agent", {"image": "local", "command": command})
    return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}


def condition(obj: dict, type_: str) -> dict | None:
    return next((x for x in (obj.get("status") or {}).get("conditions") or [] if x["type"] == type_), None)


def is_ready(obj: dict | None) -> bool:
    cond = condition(obj or {}, c.COND_READY)
    return bool(cond and cond["status"] == "True")


async def wait_session(api: StrictKubernetesAPI, name: str, predicate: Callable[[dict], bool],
                       timeout: float = 30.0) -> dict:
    return await wait_session_async(api, name, predicate, NAMESPACE, timeout)


def url(gateway: str, name: str, tail: str = "") -> str:
    return f"{gateway}/v1/namespaces/{NAMESPACE}/sessions/{name}{tail}"
