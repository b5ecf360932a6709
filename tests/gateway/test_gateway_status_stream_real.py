"""The session-status stream against a real kube-apiserver (KUBE_ASSETS): the gateway runs as its
own user with exactly the rules it needs (conftest's GATEWAY_RBAC), callers are authorized by the
real RBAC authorizer through SubjectAccessReviews, and resourceVersions, watches and 410 Gone are
the real API server's. Skipped without KUBE_ASSETS (failing under CI), like every real-tier test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent_sessions.api import constants as c
from agent_sessions.gateway.options import GatewayOptions
from agent_sessions.gateway.server import serve_gateway
from agent_sessions.k8s.client import make_api_client
from support.cluster.control_plane import ControlPlane
from support.cluster import fixtures as cluster_fixtures
from support.embedded import CRDS

from .conftest import GATEWAY_RBAC, read_sse
from .test_gateway_status_stream import count, stream, synced

NAMESPACE = "status-stream"
RBAC = "rbac.authorization.k8s.io/v1"
control_plane = cluster_fixtures.control_plane  # the real-tier fixture, in this module


def _established(crd: dict | None) -> bool:
    return any(cond["type"] == "Established" and cond["status"] == "True"
               for cond in ((crd or {}).get("status") or {}).get("conditions") or [])


@pytest.fixture(scope="module")
def cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """CRDs; the `operator` user as the gateway (the gateway's rules); `tester` may get, list and
    watch sessions in NAMESPACE; nobody else may."""
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
        admin.create("clusterroles", {**role, "metadata": {"name": "status-stream-gateway"}})
        admin.create("clusterrolebindings", {
            **binding, "metadata": {"name": "status-stream-gateway"},
            "roleRef": {**binding["roleRef"], "name": "status-stream-gateway"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": control_plane.users["operator"].name}]})
        admin.create("roles", {"apiVersion": RBAC, "kind": "Role",
                               "metadata": {"name": "session-watcher", "namespace": NAMESPACE},
                               "rules": [{"apiGroups": [c.GROUP], "resources": [c.SESSION_PLURAL],
                                          "verbs": ["get", "list", "watch"]}]})
        admin.create("rolebindings", {
            "apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "tester-watches", "namespace": NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "session-watcher"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": control_plane.users["tester"].name}]})
    finally:
        admin.close()
    yield control_plane


@pytest.fixture
async def gateway(cluster: ControlPlane, tmp_path: Path) -> AsyncIterator[str]:
    kube = await make_api_client(str(cluster.kubeconfig(tmp_path / "gateway.kubeconfig", "operator")))
    try:
        async with serve_gateway(GatewayOptions(host="127.0.0.1", port=0), kube) as running:
            yield running.url
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


async def test_real_rbac_decides_who_may_follow_a_namespace(cluster, gateway, admin):
    async with aiohttp.ClientSession() as http:
        async with stream(http, gateway, bearer(cluster, "scheduler"), namespace=NAMESPACE) as resp:
            assert resp.status == 403
            assert (await resp.json())["code"] == "forbidden"
        async with stream(http, gateway, bearer(cluster, "tester"), namespace=NAMESPACE) as resp:
            assert resp.status == 200
            assert (await read_sse(resp, synced))[-1]["event"] == "synced"


async def test_real_changes_arrive_in_order_and_resume_with_last_event_id(cluster, gateway, admin):
    tester = bearer(cluster, "tester")
    async with aiohttp.ClientSession() as http:
        async with stream(http, gateway, tester, namespace=NAMESPACE) as resp:
            await read_sse(resp, synced)
            created = new_session(admin, "one")
            running = admin.patch_status(c.SESSION_PLURAL, NAMESPACE, "one", {"phase": "Running"})
            changes = await read_sse(resp, count(2))
        assert [(m["event"], m["id"]) for m in changes] == [
            ("added", created["metadata"]["resourceVersion"]), ("modified", running["metadata"]["resourceVersion"])]

        admin.patch_status(c.SESSION_PLURAL, NAMESPACE, "one", {"phase": "Stopping"})
        admin.delete(c.SESSION_PLURAL, NAMESPACE, "one")
        async with stream(http, gateway, tester, namespace=NAMESPACE, last_event_id=changes[-1]["id"]) as resp:
            missed = await read_sse(resp, count(2))
        assert [(m["event"], m["data"]["info"]["phase"]) for m in missed] == [
            ("modified", "Stopping"), ("deleted", "Stopping")]

        # A position no replica keeps: reset, then the namespace as it is.
        async with stream(http, gateway, tester, namespace=NAMESPACE, last_event_id="1") as resp:
            messages = await read_sse(resp, synced)
        assert [m["event"] for m in messages] == ["reset", "synced"]
        assert messages[0]["data"]["reason"] == "expired"
