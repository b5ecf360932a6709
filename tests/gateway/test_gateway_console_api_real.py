"""Stop, start and restart through the gateway against a real kube-apiserver (KUBE_ASSETS): the
gateway runs as its own user with exactly its rules (conftest's GATEWAY_RBAC, which cannot write
AgentSessions), so every write the audit log shows is the caller's own request, authorized by the
real RBAC authorizer. Skipped without KUBE_ASSETS (failing under CI), like every real-tier test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent_sessions.api import constants as c
from agent_sessions.gateway.authz import PATCH
from agent_sessions.gateway.options import GatewayOptions
from agent_sessions.gateway.server import RunningGateway, serve_gateway
from agent_sessions.k8s.client import make_api_client
from support.cluster import fixtures as cluster_fixtures
from support.cluster.audit import AuditLog
from support.cluster.control_plane import ControlPlane
from support.embedded import CRDS
from support.waits import wait_until

from .conftest import GATEWAY_RBAC

NAMESPACE = "console-api"
RBAC = "rbac.authorization.k8s.io/v1"
control_plane = cluster_fixtures.control_plane  # the real-tier fixture, in this module


def _established(crd: dict | None) -> bool:
    return any(cond["type"] == "Established" and cond["status"] == "True"
               for cond in ((crd or {}).get("status") or {}).get("conditions") or [])


@pytest.fixture(scope="module")
def cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """CRDs; the `operator` user as the gateway (the gateway's rules); `tester` may get, list,
    watch and patch sessions in NAMESPACE; `scheduler` may do nothing with them."""
    admin = control_plane.client("admin")
    try:
        for crd in CRDS:
            if admin.get("customresourcedefinitions", None, crd["metadata"]["name"]) is None:
                admin.create("customresourcedefinitions", crd)
        admin.wait_for(lambda: all(_established(admin.get("customresourcedefinitions", None, crd["metadata"]["name"]))
                                   for crd in CRDS), timeout=30)
        admin.forget_discovery()
        admin.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        role, binding = GATEWAY_RBAC
        admin.create("clusterroles", {**role, "metadata": {"name": "console-api-gateway"}})
        admin.create("clusterrolebindings", {
            **binding, "metadata": {"name": "console-api-gateway"},
            "roleRef": {**binding["roleRef"], "name": "console-api-gateway"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": control_plane.users["operator"].name}]})
        admin.create("roles", {"apiVersion": RBAC, "kind": "Role",
                               "metadata": {"name": "session-operator", "namespace": NAMESPACE},
                               "rules": [{"apiGroups": [c.GROUP], "resources": [c.SESSION_PLURAL],
                                          "verbs": ["get", "list", "watch", "patch"]}]})
        admin.create("rolebindings", {
            "apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "tester-operates", "namespace": NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "session-operator"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": control_plane.users["tester"].name}]})
    finally:
        admin.close()
    yield control_plane


@pytest.fixture
async def gateway(cluster: ControlPlane, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    kube = await make_api_client(str(cluster.kubeconfig(tmp_path / "gateway.kubeconfig", "operator")))
    try:
        async with serve_gateway(GatewayOptions(host="127.0.0.1", port=0), kube) as running:
            yield running
    finally:
        await kube.close()


@pytest.fixture
def admin(cluster: ControlPlane) -> Iterator[Any]:
    client = cluster.client("admin")
    yield client
    for obj in client.list(c.SESSION_PLURAL, NAMESPACE):
        client.delete(c.SESSION_PLURAL, NAMESPACE, obj["metadata"]["name"])
    client.close()


def bearer(cluster: ControlPlane, user: str) -> dict:
    return {"Authorization": f"Bearer {cluster.tokens[user]}"}


def new_session(admin: Any, name: str) -> dict:
    return admin.create(c.SESSION_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                                           "metadata": {"name": name, "namespace": NAMESPACE},
                                           "spec": {"agent": {"image": "example.com/agent:1"}}}, NAMESPACE)


async def post(http: aiohttp.ClientSession, gateway: RunningGateway, name: str, action: str,
               headers: dict) -> tuple[int, dict]:
    async with http.post(f"{gateway.url}/v1/namespaces/{NAMESPACE}/sessions/{name}/{action}", headers=headers) as resp:
        return resp.status, await resp.json()


def session_writes(audit: AuditLog, name: str) -> list[tuple[str, str, int]]:
    return [(r.user, r.verb, r.code) for r in audit.records(writes_only=True)
            if r.resource == c.SESSION_PLURAL and r.name == name]


async def test_real_stop_start_restart_are_the_callers_own_patches(cluster, gateway, admin):
    new_session(admin, "worker")
    audit = AuditLog(cluster.audit_log)
    audit.reset()
    tester = bearer(cluster, "tester")
    async with aiohttp.ClientSession() as http:
        status, body = await post(http, gateway, "worker", "stop", tester)
        assert status == 200, body
        assert admin.get(c.SESSION_PLURAL, NAMESPACE, "worker")["spec"]["state"] == "Stopped"
        assert body["detail"]["state"] == "Stopped"
        status, body = await post(http, gateway, "worker", "start", tester)
        assert status == 200, body
        assert admin.get(c.SESSION_PLURAL, NAMESPACE, "worker")["spec"]["state"] == "Running"
        status, body = await post(http, gateway, "worker", "restart", tester)
        assert status == 200, body
        assert admin.get(c.SESSION_PLURAL, NAMESPACE, "worker")["metadata"]["annotations"][c.ANNOTATION_RESTART]

    user = cluster.users["tester"].name
    expected = [(user, "patch", 200)] * 3
    wait_until(lambda: session_writes(audit, "worker") == expected, timeout=10,
               what="the caller's three patches in the audit log")


async def test_real_a_caller_without_patch_is_refused_and_the_session_is_unchanged(cluster, gateway, admin):
    before = new_session(admin, "guarded")
    audit = AuditLog(cluster.audit_log)
    audit.reset()
    async with aiohttp.ClientSession() as http:
        # No right at all: the gateway's review refuses, nothing reaches the session.
        status, body = await post(http, gateway, "guarded", "stop", bearer(cluster, "scheduler"))
        assert (status, body["code"]) == (403, "forbidden"), body

        # A review that (wrongly) said yes: the API server itself refuses the caller's own patch.
        scheduler = cluster.users["scheduler"]
        caller = await gateway.service.authn.authenticate(cluster.tokens["scheduler"])
        assert caller.user == scheduler.name
        gateway.service.authz.cache.put((caller, PATCH, NAMESPACE, "guarded"), True)
        status, body = await post(http, gateway, "guarded", "stop", bearer(cluster, "scheduler"))
        assert (status, body["code"]) == (403, "forbidden"), body
        assert cluster.tokens["scheduler"] not in str(body)

    after = admin.get(c.SESSION_PLURAL, NAMESPACE, "guarded")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    wait_until(lambda: session_writes(audit, "guarded") == [(scheduler.name, "patch", 403)], timeout=10,
               what="the scheduler's refused patch in the audit log")
