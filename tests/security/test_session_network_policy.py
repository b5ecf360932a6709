"""The session runtime is reachable by any pod (issue 10, item 7): the runtime (port 8080) has no
authentication of its own, and a cluster-wide install got no NetworkPolicy, because the chart only
renders one for namespaces it is told about.

Replayed against the real operator on both backends (the strict embedded API, and a real
kube-apiserver where the operator runs with exactly the chart's RBAC — `networkpolicies`
get/create/patch included): with the chart's `--session-network-policy`, the operator creates the
policy in a namespace it has never seen before that namespace's first session pod exists; further
sessions cost no request for it; a policy someone widened or deleted is restored by the next pod
creation; without the option nothing is created. (Whether the CNI enforces the policy is the
CNI's business; that the policy admits only the gateway and the operator, on 8080, is
tests/deploy/test_install.py's.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agent_sessions.api import constants as c
from agent_sessions.providers.pod.constants import RUNTIME_PORT
from agent_sessions.providers.pod.network_policy_spec import SessionNetworkPolicy, build_network_policy
from support.backends import api, kubelet, real_cluster  # noqa: F401 (fixtures, parametrised by backend)
from support.cluster.fixtures import control_plane  # noqa: F401
from support.embedded import kubeconfig  # noqa: F401
from support.operators import operators, start_operator  # noqa: F401
from support.sessions import pods_of, session

POLICY = SessionNetworkPolicy(
    "agent-session-operator-session-runtime", "agent-sessions-system",
    tuple(((("app.kubernetes.io/component", component), ("app.kubernetes.io/instance", "agent-session-operator"),
            ("app.kubernetes.io/name", "agent-session-operator")) for component in ("gateway", "operator"))),
)
"""What the chart passes by default (tests/deploy/test_install.py checks the command line)."""

NETWORK_POLICIES = "networkpolicies"


@pytest.fixture
def namespace(api: Any) -> Iterator[str]:
    """A namespace no session ever ran in; emptied and deleted afterwards."""
    name = f"np-{uuid.uuid4().hex[:8]}"
    api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    for obj in api.list(c.SESSION_PLURAL, name):
        if obj["metadata"].get("finalizers"):
            api.patch(c.SESSION_PLURAL, name, obj["metadata"]["name"], {"metadata": {"finalizers": None}})
    api.delete("namespaces", None, name)


def policy_requests(api: Any, namespace: str) -> list[tuple[str, int]]:
    """The operator's requests for NetworkPolicies in `namespace`: (method, status)."""
    return [(r.method, r.status) for r in list(api.requests)
            if r.resource == NETWORK_POLICIES and r.namespace == namespace]


def first_request(api: Any, method: str, resource: str, namespace: str) -> tuple[int, Any] | None:
    """(index, request) of the operator's first `method` on `resource` in `namespace`, if any."""
    for index, r in enumerate(list(api.requests)):
        if (r.method, r.resource, r.namespace, r.subresource) == (method, resource, namespace, None):
            return index, r
    return None


def pod_creates(api: Any, namespace: str) -> int:
    return len([r for r in list(api.requests)
                if (r.method, r.resource, r.namespace, r.subresource) == ("POST", "pods", namespace, None)])


def expected_spec(namespace: str) -> dict:
    return build_network_policy(POLICY, namespace, runtime_port=RUNTIME_PORT)["spec"]


def start_pod(api: Any, name: str, namespace: str) -> None:
    api.create(c.SESSION_PLURAL, session(name, namespace))
    api.wait_for(lambda: pods_of(api, name, namespace), timeout=30)


def test_a_session_in_a_fresh_namespace_gets_the_policy_before_its_pod(api, start_operator, kubelet, namespace):
    start_operator(session_network_policy=POLICY)
    start_pod(api, "first", namespace)
    policy = api.get(NETWORK_POLICIES, namespace, POLICY.name)
    assert policy["spec"] == expected_spec(namespace)
    assert policy["metadata"]["labels"][c.LABEL_MANAGED_BY] == c.MANAGED_BY
    # The audit log of a real server lags a little behind the objects.
    pod_created = api.wait_for(lambda: first_request(api, "POST", "pods", namespace))
    policy_created = first_request(api, "POST", NETWORK_POLICIES, namespace)
    assert policy_created is not None and policy_created[1].status == 201
    assert policy_created[0] < pod_created[0]


def test_a_second_session_costs_no_network_policy_request(api, start_operator, kubelet, namespace):
    start_operator(session_network_policy=POLICY)
    start_pod(api, "first", namespace)
    api.wait_for(lambda: ("POST", 201) in policy_requests(api, namespace))
    before = policy_requests(api, namespace)
    assert before == [("GET", 404), ("POST", 201)]
    start_pod(api, "second", namespace)
    start_pod(api, "third", namespace)
    api.wait_for(lambda: pod_creates(api, namespace) >= 3)  # everything the operator did is in the log
    assert policy_requests(api, namespace) == before


def test_a_widened_or_deleted_policy_is_restored_by_the_next_pod_creation(api, start_operator, kubelet, namespace):
    # Re-read at every pod creation (TTL 0) to show the restore without waiting a minute.
    start_operator(session_network_policy=POLICY, network_policy_recheck_seconds=0)
    start_pod(api, "first", namespace)
    api.patch(NETWORK_POLICIES, namespace, POLICY.name, {"spec": {"ingress": [{}]}})  # admit everyone
    assert api.get(NETWORK_POLICIES, namespace, POLICY.name)["spec"] != expected_spec(namespace)
    start_pod(api, "second", namespace)
    assert api.get(NETWORK_POLICIES, namespace, POLICY.name)["spec"] == expected_spec(namespace)
    api.wait_for(lambda: ("PATCH", 200) in policy_requests(api, namespace))

    api.delete(NETWORK_POLICIES, namespace, POLICY.name)
    start_pod(api, "third", namespace)
    assert api.get(NETWORK_POLICIES, namespace, POLICY.name)["spec"] == expected_spec(namespace)


def test_without_the_option_no_policy_is_created(api, start_operator, kubelet, namespace):
    start_operator()
    start_pod(api, "first", namespace)
    api.wait_for(lambda: pod_creates(api, namespace) >= 1)
    assert api.list(NETWORK_POLICIES, namespace) == []
    assert policy_requests(api, namespace) == []
