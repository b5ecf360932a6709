"""The gateway in-process, against the strict embedded Kubernetes API (tokens + RBAC) and a fake
runtime. No operator: tests write AgentSession status themselves, as the operator would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from agent_sessions.api import constants as c
from agent_sessions.dev.authorization import RBACAuthorizer
from agent_sessions.dev.strict_api import StrictKubernetesAPI, running_api
from agent_sessions.gateway.options import GatewayOptions
from agent_sessions.gateway.server import RunningGateway, serve_gateway
from agent_sessions.k8s.client import make_api_client

from .fake_runtime import FakeRuntime

ROOT = Path(__file__).resolve().parents[2]
CRDS = [yaml.safe_load((ROOT / "crds" / n).read_text()) for n in ("agentsessions.yaml", "sessiontemplates.yaml")]
DEADLINE = 10.0
RUNTIME_KEY = bytes(range(32))
"""The runtime key the gateways of these tests hold (it signs wake requests)."""

GATEWAY_USER = "system:serviceaccount:agent-sessions:agent-sessions-gateway"
TOKENS = {
    "alice-token": ("alice", ["team-a-devs"]),
    "bob-token": ("bob", []),
    "gateway-token": (GATEWAY_USER, ["system:serviceaccounts", "system:serviceaccounts:agent-sessions"]),
}
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}

RBAC_API = "rbac.authorization.k8s.io/v1"
GATEWAY_RBAC = [
    {"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": {"name": "agent-sessions-gateway"}, "rules": [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
        {"apiGroups": [c.GROUP], "resources": [c.SESSION_PLURAL], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [c.GROUP], "resources": [c.TEMPLATE_PLURAL], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]},
    {"apiVersion": RBAC_API, "kind": "ClusterRoleBinding", "metadata": {"name": "agent-sessions-gateway"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "agent-sessions-gateway"},
     "subjects": [{"kind": "ServiceAccount", "name": "agent-sessions-gateway", "namespace": "agent-sessions"}]},
]
"""Exactly the RBAC the gateway needs: anything missing here fails a test."""
GATEWAY_GET_ONLY_RULES = [{**rule, "verbs": ["get"]} if c.SESSION_PLURAL in rule["resources"] else rule
                          for rule in GATEWAY_RBAC[0]["rules"]]
"""The gateway's rules with `get agentsessions` only (no list, no watch), as a hand-written Role
might allow: it cannot watch a namespace, so it reads the session for every message."""

USER_RBAC = [
    {"apiVersion": RBAC_API, "kind": "Role", "metadata": {"name": "session-user", "namespace": "team-a"}, "rules": [
        {"apiGroups": [c.GROUP], "resources": [c.SESSION_PLURAL], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [c.GROUP], "resources": [f"{c.SESSION_PLURAL}/messages"], "verbs": ["create"]},
    ]},
    {"apiVersion": RBAC_API, "kind": "Role", "metadata": {"name": "session-reader", "namespace": "team-a"}, "rules": [
        {"apiGroups": [c.GROUP], "resources": [c.SESSION_PLURAL], "verbs": ["get"]},
    ]},
    {"apiVersion": RBAC_API, "kind": "RoleBinding", "metadata": {"name": "alice-uses", "namespace": "team-a"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "session-user"},
     "subjects": [{"kind": "User", "name": "alice"}]},
    {"apiVersion": RBAC_API, "kind": "RoleBinding", "metadata": {"name": "bob-reads", "namespace": "team-a"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "session-reader"},
     "subjects": [{"kind": "User", "name": "bob"}]},
]
"""alice may read, list and message sessions in team-a; bob may only get them; nobody may see team-b."""


@pytest.fixture
def api() -> Iterator[StrictKubernetesAPI]:
    authorizer = RBACAuthorizer.from_manifests([*GATEWAY_RBAC, *USER_RBAC])
    with running_api(crds=CRDS, tokens=TOKENS, authorizer=authorizer) as server:
        for namespace in ("team-a", "team-b"):
            server.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        yield server


@pytest.fixture
async def runtime() -> AsyncIterator[FakeRuntime]:
    fake = FakeRuntime()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


StartGateway = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def start_gateway(api: StrictKubernetesAPI, tmp_path: Path) -> AsyncIterator[StartGateway]:
    """Start a gateway with test-friendly options; `.url` is its base URL, `.service` its insides."""
    kubeconfig = api.write_kubeconfig(tmp_path / "gateway-kubeconfig", token="gateway-token")
    stack: list[Any] = []

    async def start(**options: Any) -> RunningGateway:
        client = await make_api_client(str(kubeconfig))
        settings = {"host": "127.0.0.1", "port": 0, "keepalive_seconds": 15.0, "history_poll_seconds": 0.05,
                    "wake_timeout_seconds": DEADLINE, **options}
        context = serve_gateway(GatewayOptions(**settings), client)
        running = await context.__aenter__()
        stack.append((context, client))
        if getattr(running.service, "runtime_key", None) is None:
            running.service.runtime_key = RUNTIME_KEY  # what it reads from the runtime key Secret
        return running

    yield start
    for context, client in reversed(stack):
        await context.__aexit__(None, None, None)
        await client.close()


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> str:
    return (await start_gateway()).url


def make_session(api: StrictKubernetesAPI, name: str, namespace: str = "team-a", *, phase: str | None = "Running",
                 endpoint: str | None = None, stopped_reason: str | None = None, **spec: Any) -> dict:
    """An AgentSession with the status the operator would have written."""
    if "templateRef" not in spec:
        spec.setdefault("agent", {"image": "example.com/agent:1"})
    api.create(c.SESSION_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                                  "metadata": {"name": name, "namespace": namespace}, "spec": spec})
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if endpoint is not None:
        status["provider"] = {"type": "pod", "id": f"{name}-pod", "endpoint": endpoint}
    if stopped_reason is not None:
        status["stoppedReason"] = stopped_reason
    if status:
        api.patch_status(c.SESSION_PLURAL, namespace, name, status)
    return api.get(c.SESSION_PLURAL, namespace, name)


def identity(obj: dict) -> dict:
    meta = obj["metadata"]
    return {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}


async def read_sse(response: aiohttp.ClientResponse, until: Callable[[list[dict]], bool],
                   timeout: float = DEADLINE, comments: list[str] | None = None) -> list[dict]:
    """SSE messages ({"id", "event", "data"}) read until `until(messages)` holds; comment lines are
    appended to `comments`."""
    messages: list[dict] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(timeout):
        while not until(messages):
            raw = await response.content.readline()
            if not raw:
                break
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                if comments is not None:
                    comments.append(line)
                continue
            if line == "":
                if current:
                    current["data"] = json.loads(current["data"]) if "data" in current else None
                    messages.append(current)
                current = {}
                continue
            key, _, value = line.partition(": ")
            current[key] = value
    return messages


def ended(messages: list[dict]) -> bool:
    return bool(messages) and messages[-1]["event"] in ("done", "error")
