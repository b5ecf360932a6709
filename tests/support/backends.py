"""One scenario, two API servers: the `api` and `kubelet` fixtures, parametrised by backend.

* `embedded`: the strict embedded API (`agent-sessions dev`'s) and its fake kubelet, one per test.
* `real`: kube-apiserver + etcd + controller-manager + scheduler on loopback (`KUBE_ASSETS`),
  started once per test session, with a simulated node (the fake kubelet's behaviour, against the
  real API) and a fault proxy between the operator and the apiserver. The operator runs as its
  own user with exactly the chart's ClusterRole, so every scenario is also an RBAC check; its
  requests are read from the audit log. Each test gets namespace `default` emptied afterwards.

Without `KUBE_ASSETS` the `real` cases skip with the reason (and fail under `CI=true`), see
`support.cluster.fixtures`. DESIGN.md §10: where the two backends disagree, the embedded API is
wrong.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_sessions.dev.fake_kubelet import FakeKubelet
from agent_sessions.dev.strict_api import running_api
from support.cluster.control_plane import ControlPlane
from support.cluster.fault_proxy import FaultProxy
from support.cluster.real_api import RealAPI
from support.embedded import CRDS
from support.tools import find_tool

ROOT = Path(__file__).resolve().parents[1].parent
CHART = ROOT / "charts" / "agent-session-operator"
BACKENDS = ("embedded", "real")
OPERATOR_ROLE = "agent-session-operator-under-test"
"""The chart's operator ClusterRole, under a name of its own (an install test may install the
chart itself into the same cluster)."""


@dataclass
class RealCluster:
    plane: ControlPlane
    proxy: FaultProxy
    node: Any

    def ensure_crds(self) -> None:
        """(Re)apply the CRDs: an install test may have removed them."""
        admin = self.plane.client("admin")
        try:
            for crd in CRDS:
                if admin.get("customresourcedefinitions", None, crd["metadata"]["name"]) is None:
                    admin.create("customresourcedefinitions", crd)
            admin.wait_for(lambda: all(_established(admin.get("customresourcedefinitions", None,
                                                               crd["metadata"]["name"])) for crd in CRDS),
                           timeout=30)
            admin.forget_discovery()
        finally:
            admin.close()


def _established(crd: dict | None) -> bool:
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def chart_operator_role() -> dict:
    """The operator's ClusterRole as `helm template` renders it (cluster-wide mode) for an
    installation with an http platform: the tests run http sessions too (which adds `get
    configmaps`: the values of a session's environment the operator sends to the platform)."""
    helm = find_tool("helm")
    rendered = subprocess.run([helm, "template", "agent-session-operator", str(CHART),
                               "--set", "httpProvider.platforms[0]=http://127.0.0.1"], capture_output=True,
                              text=True, timeout=120, check=True).stdout
    (role,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ClusterRole"
               and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "gateway"]
    return role


def grant_operator_role(plane: ControlPlane, user: str = "operator") -> None:
    """Give the operator's user exactly the chart's ClusterRole."""
    role = chart_operator_role()
    admin = plane.client("admin")
    try:
        admin.create("clusterroles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                      "metadata": {"name": OPERATOR_ROLE}, "rules": role["rules"]})
        admin.create("clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": OPERATOR_ROLE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR_ROLE},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": plane.users[user].name}],
        })
    finally:
        admin.close()


@pytest.fixture(scope="package")
def real_cluster(control_plane: ControlPlane) -> Iterator[RealCluster]:
    from support.cluster.node import SimulatedNode  # noqa: PLC0415 (only where the tier runs)

    grant_operator_role(control_plane)
    with FaultProxy(control_plane.url, control_plane.ca_file) as proxy, \
            SimulatedNode(control_plane, mode="fake") as node:
        cluster = RealCluster(control_plane, proxy, node)
        cluster.ensure_crds()
        yield cluster


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "embedded":
        with running_api(crds=CRDS) as server:
            yield server
        return
    cluster: RealCluster = request.getfixturevalue("real_cluster")
    cluster.ensure_crds()
    real = RealAPI(cluster.plane, cluster.proxy, cluster.node)
    try:
        yield real
    finally:
        cluster.proxy.clear_faults()
        real.reset_namespace("default")
        cluster.node.reset()
        real.close()


@pytest.fixture
def kubelet(api: Any) -> Iterator[FakeKubelet]:
    if isinstance(api, RealAPI):
        yield api.node.kubelet
        return
    with FakeKubelet(api) as fake:
        yield fake


@contextlib.contextmanager
def operator_on_a_real_node(plane: ControlPlane, work: Path, options: Any) -> Iterator[tuple[RealAPI, Any]]:
    """The real API server with the operator's role, a simulated node in process mode (pods' commands
    run as local processes under `work/node`) and an operator (`OperatorThread` with `options`);
    the default namespace is emptied afterwards."""
    from agent_sessions.handlers.operator import OperatorThread  # noqa: PLC0415
    from support.cluster.node import SimulatedNode  # noqa: PLC0415

    admin = plane.client("admin")
    try:
        if admin.get("clusterroles", None, OPERATOR_ROLE) is None:
            grant_operator_role(plane)
    finally:
        admin.close()
    with FaultProxy(plane.url, plane.ca_file) as proxy, \
            SimulatedNode(plane, mode="process", root=work / "node") as node:
        RealCluster(plane, proxy, node).ensure_crds()
        api = RealAPI(plane, proxy, node)
        operator = OperatorThread(options, kubeconfig=str(api.write_kubeconfig(work / "operator.kubeconfig"))).start()
        try:
            yield api, operator
        finally:
            operator.stop()
            api.reset_namespace("default")
            api.close()
