"""Privileged pods by proxy (issue 10, item 1): a user who may create AgentSessions but not Pods
asked the operator for a privileged root pod with the node's filesystem, and got it.

Replayed against the real operator on both backends (the strict embedded API, and a real
kube-apiserver where the operator runs with exactly the chart's RBAC — `get namespaces` included):
the pod security policy refuses the session with the field and the rule in `ConfigValid`, and no
pod is created; a namespace's `pod-security.kubernetes.io/enforce` label raises the level and never
lowers it; a compliant session still runs.
"""

from __future__ import annotations

from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.providers.pod.policy import ENFORCE_LABEL
from support.backends import api, kubelet, real_cluster  # noqa: F401 (fixtures, parametrised by backend)
from support.cluster.fixtures import control_plane  # noqa: F401
from support.embedded import kubeconfig  # noqa: F401
from support.namespace_labels import label_default, root_refused_by_restricted_label  # noqa: F401
from support.operators import operator, operators, start_operator  # noqa: F401
from support.sessions import pods_of, session
from support.waits import condition, phase_is, ready, wait_session

CONTAINER_SC = "spec.podTemplate.containerSecurityContext"
POD_SC = "spec.podTemplate.securityContext"

PRIVILEGED_POD_TEMPLATE = {
    "serviceAccountName": "default",
    "automountServiceAccountToken": True,
    "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "seccompProfile": {"type": "Unconfined"}},
    "containerSecurityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}, "procMount": "Unmasked"},
    "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
}
"""The session of the report, no templateRef: root, privileged, SYS_ADMIN, no seccomp, unmasked
/proc, the node's / mounted with Bidirectional propagation, the default ServiceAccount's token."""

ROOT_POD_TEMPLATE = {"securityContext": {"runAsUser": 0, "runAsNonRoot": False}}
"""Root in the container: allowed by `baseline`, forbidden by `restricted`."""


def privileged_session(name: str) -> dict:
    body = session(name, podTemplate=PRIVILEGED_POD_TEMPLATE)
    body["spec"]["agent"]["volumeMounts"] = [{"name": "host", "mountPath": "/host", "mountPropagation": "Bidirectional"}]
    return body


def refused(obj: dict | None) -> bool:
    cond = condition(obj, c.COND_CONFIG_VALID)
    return cond is not None and cond["status"] == "False"


def config_valid_message(api: Any, name: str) -> str:
    obj = wait_session(api, name, refused)
    cond = condition(obj, c.COND_CONFIG_VALID)
    assert cond["reason"] == c.REASON_INVALID_CONFIGURATION
    wait_session(api, name, phase_is(c.PHASE_FAILED))
    return cond["message"]


def test_the_privileged_session_is_refused_field_by_field_and_no_pod_is_created(api, operator):
    api.create(c.SESSION_PLURAL, privileged_session("root-on-node"))
    problems = config_valid_message(api, "root-on-node").split("; ")
    by_restricted = "not allowed by the restricted pod security level (operator policy)"
    # Where a SessionTemplate could lift a violation, the message says so, and up to which level.
    to_baseline, to_privileged = (f" (a SessionTemplate's spec.policy.podSecurityLevel can raise the level for its"
                                  f" sessions, up to {level})" for level in ("baseline", "privileged"))
    assert problems == [
        f"{CONTAINER_SC}.privileged: {by_restricted}: privileged containers are forbidden{to_privileged}",
        f"spec.podTemplate.volumes[host].hostPath: {by_restricted}: hostPath volumes are forbidden{to_privileged}",
        f"{CONTAINER_SC}.procMount: {by_restricted}: procMount Unmasked is forbidden (Default only){to_privileged}",
        f"{POD_SC}.seccompProfile.type: {by_restricted}: the Unconfined seccomp profile is forbidden{to_privileged}",
        f"{CONTAINER_SC}.capabilities.add: {by_restricted}: adding SYS_ADMIN is forbidden (allowed: NET_BIND_SERVICE)"
        f"{to_privileged}",
        f"{POD_SC}.runAsNonRoot: {by_restricted}: containers must run as non-root (true){to_baseline}",
        f"{POD_SC}.runAsUser: {by_restricted}: running as uid 0 (root) is forbidden{to_baseline}",
        "spec.podTemplate.automountServiceAccountToken: mounting a token of ServiceAccount 'default' is not"
        " allowed by the operator configuration (--allow-service-account: none) or a SessionTemplate's"
        " spec.policy.serviceAccounts",
    ]
    assert pods_of(api, "root-on-node") == []


def test_a_namespace_labelled_privileged_does_not_lower_the_operators_baseline(api, start_operator, kubelet,
                                                                               label_default):
    label_default("privileged")
    start_operator(pod_security_level="baseline")
    api.create(c.SESSION_PLURAL, privileged_session("still-refused"))
    message = config_valid_message(api, "still-refused")
    assert f"{CONTAINER_SC}.privileged: not allowed by the baseline pod security level (operator policy)" in message
    assert "spec.podTemplate.volumes[host].hostPath: not allowed by the baseline pod security level" in message
    assert "restricted" not in message and "label" not in message
    assert pods_of(api, "still-refused") == []


def test_a_namespace_labelled_restricted_raises_the_operators_baseline(api, start_operator, kubelet, label_default):
    label_default("restricted")
    start_operator(pod_security_level="baseline")
    api.create(c.SESSION_PLURAL, session("root-agent", podTemplate=ROOT_POD_TEMPLATE))
    assert config_valid_message(api, "root-agent").split("; ") == root_refused_by_restricted_label(POD_SC)
    assert pods_of(api, "root-agent") == []


def test_without_the_label_the_same_root_session_runs_under_baseline(api, start_operator, kubelet):
    start_operator(pod_security_level="baseline")
    api.create(c.SESSION_PLURAL, session("root-agent", podTemplate=ROOT_POD_TEMPLATE))
    obj = wait_session(api, "root-agent", ready)
    assert condition(obj, c.COND_CONFIG_VALID)["status"] == "True"
    (pod,) = pods_of(api, "root-agent")
    assert pod["spec"]["securityContext"]["runAsUser"] == 0


def test_a_namespace_raised_under_running_sessions_marks_them_and_they_keep_running(api, start_operator, kubelet,
                                                                                     label_default):
    """The level is checked on every reconcile, not only at creation: after the label is raised
    (here: seen by a restarted operator, whose cache is fresh) a running session that no longer
    complies says so in ConfigValid, and keeps running as any session whose configuration broke."""
    first = start_operator(pod_security_level="baseline")
    api.create(c.SESSION_PLURAL, session("root-agent", podTemplate=ROOT_POD_TEMPLATE))
    wait_session(api, "root-agent", ready)
    first.stop()
    label_default("restricted")
    start_operator(pod_security_level="baseline")
    obj = wait_session(api, "root-agent", refused)
    assert obj["status"]["phase"] == c.PHASE_RUNNING
    assert (f"{POD_SC}.runAsUser: not allowed by the restricted pod security level (label {ENFORCE_LABEL}=restricted"
            " of namespace default)") in condition(obj, c.COND_CONFIG_VALID)["message"]
    assert len(pods_of(api, "root-agent")) == 1


def test_a_service_account_outside_the_allowlist_is_refused(api, operator):
    api.create(c.SESSION_PLURAL, session("impersonator", podTemplate={"serviceAccountName": "cluster-admin-sa"}))
    assert config_valid_message(api, "impersonator") == (
        "spec.podTemplate.serviceAccountName: ServiceAccount 'cluster-admin-sa' is not allowed by the operator"
        " configuration (--allow-service-account: none) or a SessionTemplate's spec.policy.serviceAccounts")
    assert pods_of(api, "impersonator") == []


def test_a_compliant_session_still_runs_with_the_operators_default_resources(api, start_operator, kubelet):
    start_operator(pod_default_resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}})
    api.create(c.SESSION_PLURAL, session("compliant", podTemplate={
        "containerSecurityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}, "readOnlyRootFilesystem": True},
    }))
    obj = wait_session(api, "compliant", ready)
    assert condition(obj, c.COND_CONFIG_VALID)["status"] == "True"
    (pod,) = pods_of(api, "compliant")
    (container,) = pod["spec"]["containers"]
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}
    assert pod["spec"]["automountServiceAccountToken"] is False
