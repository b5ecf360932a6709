"""The session NetworkPolicy: who may reach a session's runtime, as a pure builder.

The runtime (port 8080 of every session pod) has no authentication of its own: whoever reaches
it reads the session's history and talks to its agent. This policy, in every namespace where a
session pod runs, selects the session pods (label `agentsession.dev/session` exists) and admits
ingress only to the runtime port, only from the operator's and the gateway's pods in the install
namespace (told apart by their selector labels and by the namespace's
`kubernetes.io/metadata.name` label, which Kubernetes sets on every namespace). Egress is left
alone: the agent may still call out (model APIs).

The Helm chart renders the same policy (templates/networkpolicy.yaml) for namespaces it knows at
install time; the operator keeps one wherever it actually runs a session, because a cluster-wide
install cannot know those namespaces up front. The two are written independently and compared by
tests/providers/pod/test_network_policy_spec.py (same spec for the same inputs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from agent_sessions.api import constants as c

NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
COMPONENT: Final = "session-network-policy"

_NAME = r"[a-z0-9A-Z]([-a-z0-9A-Z_.]{0,61}[a-z0-9A-Z])?"
_LABEL_KEY = re.compile(rf"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}")
_LABEL_VALUE = re.compile(rf"({_NAME})?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


@dataclass(frozen=True)
class SessionNetworkPolicy:
    """Operator configuration: the policy to keep in every namespace where a session pod runs."""

    name: str
    """The NetworkPolicy's name (the chart's `<fullname>-session-runtime`)."""
    peer_namespace: str
    """The namespace of the pods that may reach the runtimes (the install's)."""
    peers: tuple[tuple[tuple[str, str], ...], ...]
    """One label set per kind of pod that may reach the runtimes (the gateway's, the operator's
    selector labels), in the order the rule lists them."""

    def __post_init__(self) -> None:
        problems = network_policy_problems(self.name, self.peer_namespace, self.peers)
        if problems:
            raise ValueError("; ".join(problems))


def network_policy_problems(name: str, peer_namespace: str, peers: Any) -> list[str]:
    """Why this configuration cannot make a policy (empty: it can). No peer at all is refused:
    an ingress rule with an empty `from` admits every source."""
    problems = []
    if not (len(name) <= 253 and _DNS_SUBDOMAIN.fullmatch(name or "")):
        problems.append(f"network policy name {name!r}: must be a DNS subdomain (lowercase, at most 253 characters)")
    if not (peer_namespace and _DNS_LABEL.fullmatch(peer_namespace)):
        problems.append(f"network policy peer namespace {peer_namespace!r}: must be a namespace name (DNS label)")
    if not peers:
        problems.append("network policy peers: at least one set of peer pod labels is required "
                        "(a rule without peers would admit every pod)")
    for labels in peers or ():
        if not labels:
            problems.append("network policy peer labels: empty (it would select every pod of the namespace)")
        for key, value in labels:
            if not (len(key.rpartition("/")[0]) <= 253 and _LABEL_KEY.fullmatch(key)):
                problems.append(f"network policy peer label {key!r}: not a valid label key")
            if not (len(value) <= 63 and _LABEL_VALUE.fullmatch(value)):
                problems.append(f"network policy peer label {key}={value!r}: not a valid label value")
    return problems


def parse_label_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """`a=1,b=2` → (("a", "1"), ("b", "2")); ValueError naming the bad entry."""
    pairs = []
    for entry in text.split(","):
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{entry!r}: expected KEY=VALUE")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


def build_network_policy(policy: SessionNetworkPolicy, namespace: str, *, runtime_port: int) -> dict[str, Any]:
    """The NetworkPolicy object for the session pods of `namespace`."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": policy.name,
            "namespace": namespace,
            "labels": {c.LABEL_MANAGED_BY: c.MANAGED_BY, COMPONENT_LABEL: COMPONENT},
        },
        "spec": network_policy_spec(policy, runtime_port=runtime_port),
    }


def network_policy_spec(policy: SessionNetworkPolicy, *, runtime_port: int) -> dict[str, Any]:
    peers = [
        {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: policy.peer_namespace}},
         "podSelector": {"matchLabels": dict(labels)}}
        for labels in policy.peers
    ]
    return {
        "podSelector": {"matchExpressions": [{"key": c.LABEL_SESSION, "operator": "Exists"}]},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": runtime_port}]}],
    }


def spec_patch(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch that makes the policy `current` (as the API server has it) have the
    `desired` spec again, or None when it already has. Keys someone added to the spec are set to
    null (removed); the desired keys are written whole (a merge patch replaces lists)."""
    spec = (current or {}).get("spec") or {}
    if _normalised(spec) == _normalised(desired):
        return None
    return {"spec": {**{key: None for key in spec if key not in desired}, **desired}}


def _normalised(spec: Mapping[str, Any]) -> Any:
    """The spec with what the API server adds on its own left out (an empty `egress`, a
    `policyTypes` it defaulted), so that a policy it stored as we sent it compares equal."""
    return {key: value for key, value in spec.items() if value not in (None, [], {})}
