"""The gateway against a real kube-apiserver (KUBE_ASSETS), shared by the `*_real.py` modules of
this package: the CRDs, a namespace, the `operator` user as the gateway with exactly its rules
(conftest's GATEWAY_RBAC, which cannot write AgentSessions), and `tester` with the verbs a module
asks for; callers are then authorized by the real RBAC authorizer.

A module names its namespace and tester verbs, and takes the fixtures from here:

    NAMESPACE = "status-stream"
    control_plane = real_gateway.control_plane
    cluster = real_gateway.cluster_fixture(NAMESPACE, ["get", "list", "watch"])
    gateway, admin = real_gateway.gateway, real_gateway.admin_fixture(NAMESPACE)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_sessions.api import constants as c
from agent_sessions.gateway.options import GatewayOptions
from agent_sessions.gateway.server import RunningGateway, serve_gateway
from agent_sessions.k8s.client import make_api_client
from support.cluster import fixtures as cluster_fixtures
from support.cluster.control_plane import ControlPlane
from support.embedded import CRDS

from .conftest import GATEWAY_RBAC

RBAC = "rbac.authorization.k8s.io/v1"
control_plane = cluster_fixtures.control_plane  # the real-tier fixture, for the importing module


def _established(crd: dict | None) -> bool:
    return any(cond["type"] == "Established" and cond["status"] == "True"
               for cond in ((crd or {}).get("status") or {}).get("conditions") or [])


def _user(plane: ControlPlane, who: str) -> list[dict]:
    return [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": plane.users[who].name}]


def prepare(plane: ControlPlane, namespace: str, tester_verbs: list[str], *, send: bool = False) -> None:
    """CRDs, `namespace`, the gateway's rules for `operator` and `tester_verbs` on sessions there
    for `tester` (`scheduler` gets nothing); with `send`, `tester` may also send messages
    (`create agentsessions/messages`)."""
    admin = plane.client("admin")
    try:
        for crd in CRDS:
            if admin.get("customresourcedefinitions", None, crd["metadata"]["name"]) is None:
                admin.create("customresourcedefinitions", crd)
        admin.wait_for(lambda: all(_established(admin.get("customresourcedefinitions", None, crd["metadata"]["name"]))
                                   for crd in CRDS), timeout=30)
        admin.forget_discovery()
        admin.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        role, binding = GATEWAY_RBAC
        name = f"{namespace}-gateway"
        admin.create("clusterroles", {**role, "metadata": {"name": name}})
        admin.create("clusterrolebindings", {**binding, "metadata": {"name": name},
                                             "roleRef": {**binding["roleRef"], "name": name},
                                             "subjects": _user(plane, "operator")})
        admin.create("roles", {"apiVersion": RBAC, "kind": "Role",
                               "metadata": {"name": "sessions-for-tester", "namespace": namespace},
                               "rules": [{"apiGroups": [c.GROUP], "resources": [c.SESSION_PLURAL],
                                          "verbs": tester_verbs}]
                               + ([{"apiGroups": [c.GROUP], "resources": [f"{c.SESSION_PLURAL}/messages"],
                                    "verbs": ["create"]}] if send else [])})
        admin.create("rolebindings", {
            "apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "tester", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sessions-for-tester"},
            "subjects": _user(plane, "tester")})
    finally:
        admin.close()


def cluster_fixture(namespace: str, tester_verbs: list[str], *, send: bool = False) -> Callable[..., Iterator[ControlPlane]]:
    """A module-scoped `cluster` fixture: the control plane, `prepare`d."""

    @pytest.fixture(scope="module")
    def cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
        prepare(control_plane, namespace, tester_verbs, send=send)
        yield control_plane

    return cluster


@pytest.fixture
async def gateway(cluster: ControlPlane, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    """A gateway in the test's loop, as the `operator` user (the gateway's rules)."""
    kube = await make_api_client(str(cluster.kubeconfig(tmp_path / "gateway.kubeconfig", "operator")))
    try:
        async with serve_gateway(GatewayOptions(host="127.0.0.1", port=0), kube) as running:
            yield running
    finally:
        await kube.close()


def admin_fixture(namespace: str) -> Callable[..., Iterator[Any]]:
    """An `admin` fixture: the admin's client; the sessions of `namespace` deleted after the test."""

    @pytest.fixture
    def admin(cluster: ControlPlane) -> Iterator[Any]:
        client = cluster.client("admin")
        yield client
        for obj in client.list(c.SESSION_PLURAL, namespace):
            client.delete(c.SESSION_PLURAL, namespace, obj["metadata"]["name"])
        client.close()

    return admin


def bearer(cluster: ControlPlane, user: str) -> dict:
    return {"Authorization": f"Bearer {cluster.tokens[user]}"}


def new_session(admin: Any, namespace: str, name: str) -> dict:
    return admin.create(c.SESSION_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                                           "metadata": {"name": name, "namespace": namespace},
                                           "spec": {"agent": {"image": "example.com/agent:1"}}}, namespace)
