"""The session NetworkPolicy: the pure builder and drift patch, and how the pod provider keeps it
(before the pod, once per namespace and TTL, a write only when missing or changed, fail closed).

The builder against the chart's rendering: tests/deploy/test_install.py
(`test_the_operator_keeps_the_charts_network_policy`); on both API servers:
tests/security/test_session_network_policy.py.
"""

from __future__ import annotations

import asyncio
import copy

import pytest

from agent_sessions.api import constants as c
from agent_sessions.providers import ProviderUnavailable, SessionRef
from agent_sessions.providers.pod import PodProvider
from agent_sessions.providers.pod.network_policy_spec import (
    SessionNetworkPolicy,
    build_network_policy,
    parse_label_pairs,
    spec_patch,
)

from .test_pod_provider import NS, UID, FakeCoreV1Api, api_exception, watching

pytestmark = pytest.mark.unit

GATEWAY = (("app.kubernetes.io/component", "gateway"), ("app.kubernetes.io/name", "ags"))
OPERATOR = (("app.kubernetes.io/component", "operator"), ("app.kubernetes.io/name", "ags"))
POLICY = SessionNetworkPolicy("ags-session-runtime", "agent-sessions-system", (GATEWAY, OPERATOR))
CONFIG = {"provider": "pod", "agent": {"image": "ghcr.io/acme/agent:1.4", "command": ["agent"]}}


def session(name: str = "demo", namespace: str = NS) -> SessionRef:
    return SessionRef(namespace=namespace, name=name, uid=f"{UID[:-4]}{len(name):04d}", config=CONFIG)


# --- the builder ---------------------------------------------------------------------------------


def test_the_policy_admits_only_the_peers_on_the_runtime_port():
    policy = build_network_policy(POLICY, NS, runtime_port=8080)
    assert policy["metadata"] == {"name": "ags-session-runtime", "namespace": NS, "labels": {
        c.LABEL_MANAGED_BY: c.MANAGED_BY, "app.kubernetes.io/component": "session-network-policy"}}
    release = {"matchLabels": {"kubernetes.io/metadata.name": "agent-sessions-system"}}
    assert policy["spec"] == {
        "podSelector": {"matchExpressions": [{"key": c.LABEL_SESSION, "operator": "Exists"}]},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": release, "podSelector": {"matchLabels": dict(GATEWAY)}},
                              {"namespaceSelector": release, "podSelector": {"matchLabels": dict(OPERATOR)}}],
                     "ports": [{"protocol": "TCP", "port": 8080}]}],
    }


@pytest.mark.parametrize(("name", "namespace", "peers", "in_message"), [
    ("Bad_Name", "ns", (GATEWAY,), "network policy name 'Bad_Name'"),
    ("p", "", (GATEWAY,), "peer namespace ''"),
    ("p", "ns", (), "at least one set of peer pod labels"),
    ("p", "ns", ((),), "it would select every pod"),
    ("p", "ns", ((("bad key!", "x"),),), "'bad key!': not a valid label key"),
    ("p", "ns", ((("k", "v" * 64),),), "not a valid label value"),
], ids=["name", "namespace", "no-peer", "empty-peer", "label-key", "label-value"])
def test_a_policy_that_would_admit_more_or_be_refused_is_not_built(name, namespace, peers, in_message):
    with pytest.raises(ValueError, match=in_message):
        SessionNetworkPolicy(name, namespace, peers)


def test_peer_labels_parse_as_key_value_pairs():
    assert parse_label_pairs("a=1, b/c=2") == (("a", "1"), ("b/c", "2"))
    with pytest.raises(ValueError, match="'b': expected KEY=VALUE"):
        parse_label_pairs("a=1,b")


def test_drift_patch_restores_the_spec_and_removes_what_was_added():
    desired = build_network_policy(POLICY, NS, runtime_port=8080)["spec"]
    assert spec_patch({"spec": copy.deepcopy(desired)}, desired) is None
    assert spec_patch({"spec": {**desired, "egress": []}}, desired) is None  # nothing the server adds counts
    widened = {**desired, "ingress": [{}], "egress": [{}]}
    assert spec_patch({"spec": widened}, desired) == {"spec": {"egress": None, **desired}}
    assert spec_patch(None, desired) == {"spec": desired}


# --- the provider keeps it ----------------------------------------------------------------------


class FakeNetworkingV1Api:
    """The NetworkingV1Api methods the provider uses, over a dict; calls recorded in order with
    the core API's (one `log`)."""

    def __init__(self, log: list) -> None:
        self.objects: dict[tuple[str, str], dict] = {}
        self.log = log
        self.fail: dict[str, BaseException] = {}

    def _enter(self, method: str, kwargs: dict) -> None:
        self.log.append((method, kwargs))
        if method in self.fail:
            raise self.fail[method]

    async def read_namespaced_network_policy(self, name, namespace, **kwargs):
        self._enter("read_namespaced_network_policy", kwargs)
        await asyncio.sleep(0)
        if (namespace, name) not in self.objects:
            raise api_exception(404, f'networkpolicies.networking.k8s.io "{name}" not found')
        return copy.deepcopy(self.objects[(namespace, name)])

    async def create_namespaced_network_policy(self, namespace, body, **kwargs):
        self._enter("create_namespaced_network_policy", kwargs)
        if (namespace, body["metadata"]["name"]) in self.objects:
            raise api_exception(409, "already exists")
        self.objects[(namespace, body["metadata"]["name"])] = copy.deepcopy(body)
        return body

    async def patch_namespaced_network_policy(self, name, namespace, body, **kwargs):
        self._enter("patch_namespaced_network_policy", kwargs)
        assert kwargs["_content_type"] == "application/merge-patch+json"
        spec = self.objects[(namespace, name)]["spec"]
        for key, value in body["spec"].items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value
        return self.objects[(namespace, name)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider_with_policy(**kwargs) -> tuple[PodProvider, FakeCoreV1Api, FakeNetworkingV1Api]:
    core = FakeCoreV1Api()
    networking = FakeNetworkingV1Api(core.calls)
    provider = watching(PodProvider(core_api=core, networking_api=networking, network_policy=POLICY, **kwargs), core)
    return provider, core, networking


def methods(calls: list) -> list[str]:
    return [call[0] for call in calls]


async def test_the_policy_is_created_before_the_first_pod_of_a_namespace():
    provider, core, networking = provider_with_policy()
    await provider.ensure(session())
    assert methods(core.calls)[:3] == ["read_namespace", "read_namespaced_network_policy",
                                       "create_namespaced_network_policy"]
    assert methods(core.calls).index("create_namespaced_pod") > 2
    assert networking.objects[(NS, POLICY.name)] == build_network_policy(POLICY, NS, runtime_port=8080)


async def test_a_namespaces_further_pods_cost_no_policy_request_within_the_ttl():
    provider, core, _ = provider_with_policy()
    await provider.ensure(session("one"))
    core.calls.clear()
    await asyncio.gather(*(provider.ensure(session(f"s{i}")) for i in range(5)))
    assert not [m for m in methods(core.calls) if "network_policy" in m]
    await provider.ensure(session("other", "team-b"))  # another namespace gets its own
    assert "create_namespaced_network_policy" in methods(core.calls)


async def test_concurrent_first_pods_of_a_namespace_share_one_check():
    provider, core, _ = provider_with_policy()
    await asyncio.gather(*(provider.ensure(session(f"s{i}")) for i in range(5)))
    assert methods(core.calls).count("read_namespaced_network_policy") == 1
    assert methods(core.calls).count("create_namespaced_network_policy") == 1


async def test_a_matching_policy_costs_no_write_and_a_changed_one_is_restored_after_the_ttl():
    clock = Clock()
    provider, core, networking = provider_with_policy()
    provider.network_policies._clock = clock  # type: ignore[union-attr]
    desired = build_network_policy(POLICY, NS, runtime_port=8080)
    networking.objects[(NS, POLICY.name)] = {**copy.deepcopy(desired), "metadata": {"name": POLICY.name,
                                                                                   "labels": {"by": "helm"}}}
    await provider.ensure(session("one"))
    assert [m for m in methods(core.calls) if "network_policy" in m] == ["read_namespaced_network_policy"]

    networking.objects[(NS, POLICY.name)]["spec"].update(ingress=[{}], egress=[{}])  # a user widens it
    core.calls.clear()
    await provider.ensure(session("two"))
    assert not [m for m in methods(core.calls) if "network_policy" in m]  # trusted within the TTL
    clock.now += 61
    await provider.ensure(session("three"))
    assert [m for m in methods(core.calls) if "network_policy" in m] == ["read_namespaced_network_policy",
                                                                         "patch_namespaced_network_policy"]
    restored = networking.objects[(NS, POLICY.name)]
    assert restored["spec"] == desired["spec"]
    assert restored["metadata"]["labels"] == {"by": "helm"}  # only the spec is the operator's business


async def test_a_policy_created_meanwhile_is_compared_not_recreated():
    provider, core, networking = provider_with_policy()
    desired = build_network_policy(POLICY, NS, runtime_port=8080)
    real_read = networking.read_namespaced_network_policy
    reads = 0

    async def read_then_appears(name, namespace, **kwargs):
        nonlocal reads
        reads += 1
        if reads == 1:
            try:
                return await real_read(name, namespace, **kwargs)
            finally:  # another replica creates it between our read and our create
                networking.objects[(NS, POLICY.name)] = copy.deepcopy(desired)
        return await real_read(name, namespace, **kwargs)

    networking.read_namespaced_network_policy = read_then_appears  # type: ignore[method-assign]
    await provider.ensure(session())
    assert [m for m in methods(core.calls) if "network_policy" in m] == [
        "read_namespaced_network_policy", "create_namespaced_network_policy", "read_namespaced_network_policy"]
    assert "create_namespaced_pod" in methods(core.calls)


@pytest.mark.parametrize("failing", ["read_namespaced_network_policy", "create_namespaced_network_policy"])
async def test_no_pod_is_created_when_the_policy_cannot_be_kept(failing):
    provider, core, networking = provider_with_policy()
    networking.fail[failing] = api_exception(403, 'networkpolicies.networking.k8s.io is forbidden')
    with pytest.raises(ProviderUnavailable, match="networkpolicy ags-session-runtime: .*forbidden.*check the "
                                                  "operator's RBAC"):
        await provider.ensure(session())
    assert "create_namespaced_pod" not in methods(core.calls)
    del networking.fail[failing]
    await provider.ensure(session())  # not marked verified: the next ensure tries again
    assert "create_namespaced_pod" in methods(core.calls)


async def test_without_the_option_no_policy_is_touched():
    core = FakeCoreV1Api()
    provider = watching(PodProvider(core_api=core), core)
    assert provider.network_policies is None
    await provider.ensure(session())
    assert not [m for m in methods(core.calls) if "network_policy" in m]
