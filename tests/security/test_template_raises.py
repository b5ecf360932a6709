"""DESIGN §11: template authors (the platform team) may raise the operator's limits for the sessions
that use their templates — pod security level, ServiceAccounts, http platforms — each raise
explicit and shown by `explain`; session authors can raise nothing.

Replayed against the real operator on both backends (the strict embedded API, and a real
kube-apiserver where the operator runs with exactly the chart's RBAC):

* a session that writes the templates' `spec.policy` block into its own spec is refused by
  admission (kubectl's strict field validation: 400 naming the field) and, sent without it,
  stored without the block (pruned): it never reaches the operator;
* a root or privileged pod without a raising template is refused, as before, with the hint that a
  template could raise the level — and, where the namespace's label enforces the level, no hint;
* a session referencing a template that raises the level to `baseline` runs as root; a privileged
  container is still refused, naming the template that set `baseline`; the namespace's
  `pod-security.kubernetes.io/enforce` label binds over the template;
* an http platform only the template allows is used for the template's sessions, and an attacker's
  URL in such a session is still refused, its server receiving nothing;
* `agent-sessions explain` names each raise and the template it came from.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.backends import api, kubelet, real_cluster  # noqa: F401 (fixtures, parametrised by backend)
from support.cluster.fixtures import control_plane  # noqa: F401
from support.embedded import kubeconfig  # noqa: F401
from support.http_server import ThreadedServer
from support.namespace_labels import label_default, root_refused_by_restricted_label  # noqa: F401
from support.operators import operator, operators, start_operator  # noqa: F401
from support.sessions import IMAGE, pods_of, session, template
from support.waits import condition, phase_is, ready, wait_session

from agent_sessions.api import constants as c
from agent_sessions.cli.main import main
from agent_sessions.dev.provider_server import ProviderServerThread, running_provider_server

NAMESPACE = "default"
POD_SC = "spec.podTemplate.securityContext"
CONTAINER_SC = "spec.podTemplate.containerSecurityContext"
RAISED_BY = "raised by SessionTemplate default/gpu-agents"
AGENT = {"image": IMAGE, "command": ["agent-sessions", "demo-agent"]}
ROOT_POD_TEMPLATE = {"securityContext": {"runAsUser": 0, "runAsNonRoot": False}}
"""Root in the container: allowed by `baseline`, forbidden by `restricted`."""
PRIVILEGED_POD_TEMPLATE = {"containerSecurityContext": {"privileged": True}}
"""Allowed by `privileged` only."""
HINT = "(a SessionTemplate's spec.policy.podSecurityLevel can raise the level for its sessions, up to {})"
TOKEN = "platform-token-3f9a"


def refused(obj: dict | None) -> bool:
    return (condition(obj, c.COND_CONFIG_VALID) or {}).get("status") == "False"


def config_valid_message(api: Any, name: str) -> str:
    obj = wait_session(api, name, refused)
    cond = condition(obj, c.COND_CONFIG_VALID)
    assert cond["reason"] == c.REASON_INVALID_CONFIGURATION
    return cond["message"]


def gpu_agents(api: Any, **policy: Any) -> None:
    """The platform team's template: the agent, and the raises it grants."""
    api.create(c.TEMPLATE_PLURAL, template("gpu-agents", agent=AGENT, policy=policy))


def strict_create(api: Any, plural: str, body: dict) -> dict:
    """Create as kubectl does (`fieldValidation=Strict`), on either backend."""
    if hasattr(api, "store"):  # the embedded API
        return api.store.create(api.resource(plural), NAMESPACE, body, field_validation="Strict")
    return api.client.request("POST", f"/apis/{c.API_VERSION}/namespaces/{NAMESPACE}/{plural}", body=body,
                              query={"fieldValidation": "Strict"})


# --- a session cannot raise its own limits ---------------------------------------------------


def test_a_session_that_writes_the_policy_block_is_refused_by_admission(api):
    body = session("self-raised", podTemplate=ROOT_POD_TEMPLATE)
    body["spec"]["policy"] = {"podSecurityLevel": "privileged", "serviceAccounts": ["cluster-admin"],
                              "httpPlatforms": ["https://attacker.example"]}
    with pytest.raises(Exception) as raised:
        strict_create(api, c.SESSION_PLURAL, body)
    assert raised.value.code == 400
    assert 'unknown field "spec.policy"' in raised.value.message
    assert api.get(c.SESSION_PLURAL, NAMESPACE, "self-raised") is None

    # Without strict validation the API server prunes the block: what is stored raises nothing.
    stored = api.create(c.SESSION_PLURAL, body)
    assert "policy" not in stored["spec"]


def test_a_root_session_without_a_raising_template_is_refused_with_the_hint(api, operator):
    api.create(c.TEMPLATE_PLURAL, template("plain", agent=AGENT))
    api.create(c.SESSION_PLURAL, session("root-agent", templateRef={"name": "plain"}, podTemplate=ROOT_POD_TEMPLATE))
    by_operator = "not allowed by the restricted pod security level (operator policy)"
    assert config_valid_message(api, "root-agent").split("; ") == [
        f"{POD_SC}.runAsNonRoot: {by_operator}: containers must run as non-root (true) {HINT.format('baseline')}",
        f"{POD_SC}.runAsUser: {by_operator}: running as uid 0 (root) is forbidden {HINT.format('baseline')}",
    ]
    wait_session(api, "root-agent", phase_is(c.PHASE_FAILED))
    assert pods_of(api, "root-agent") == []


def test_a_template_in_the_namespace_that_the_session_does_not_reference_raises_nothing(api, operator):
    gpu_agents(api, podSecurityLevel="privileged")
    api.create(c.SESSION_PLURAL, session("bystander", podTemplate=ROOT_POD_TEMPLATE))
    assert "(operator policy)" in config_valid_message(api, "bystander")
    assert pods_of(api, "bystander") == []


# --- a template raises them for its sessions ---------------------------------------------------


def test_a_session_of_a_template_raised_to_baseline_runs_as_root(api, operator):
    gpu_agents(api, podSecurityLevel="baseline")
    api.create(c.SESSION_PLURAL, session("root-agent", templateRef={"name": "gpu-agents"},
                                         podTemplate=ROOT_POD_TEMPLATE))
    obj = wait_session(api, "root-agent", ready)
    assert condition(obj, c.COND_CONFIG_VALID)["status"] == "True"
    (pod,) = pods_of(api, "root-agent")
    assert pod["spec"]["securityContext"]["runAsUser"] == 0


def test_a_template_raised_to_baseline_still_refuses_a_privileged_container_naming_itself(api, operator):
    gpu_agents(api, podSecurityLevel="baseline")
    api.create(c.SESSION_PLURAL, session("privileged", templateRef={"name": "gpu-agents"},
                                         podTemplate=PRIVILEGED_POD_TEMPLATE))
    assert config_valid_message(api, "privileged") == (
        f"{CONTAINER_SC}.privileged: not allowed by the baseline pod security level ({RAISED_BY}): privileged"
        f" containers are forbidden {HINT.format('privileged')}")
    assert pods_of(api, "privileged") == []


def test_the_namespaces_label_binds_over_a_raising_template_and_no_template_is_hinted(api, start_operator, kubelet,
                                                                                     label_default):
    label_default("restricted")
    start_operator()
    gpu_agents(api, podSecurityLevel="privileged")
    api.create(c.SESSION_PLURAL, session("root-agent", templateRef={"name": "gpu-agents"},
                                         podTemplate=ROOT_POD_TEMPLATE))
    assert config_valid_message(api, "root-agent").split("; ") == root_refused_by_restricted_label(POD_SC)
    assert pods_of(api, "root-agent") == []


def test_a_service_account_the_template_does_not_add_is_still_refused(api, operator):
    gpu_agents(api, serviceAccounts=["builder"])
    api.create(c.SESSION_PLURAL, session("impersonator", templateRef={"name": "gpu-agents"},
                                         podTemplate={"serviceAccountName": "cluster-admin-sa"}))
    assert config_valid_message(api, "impersonator") == (
        "spec.podTemplate.serviceAccountName: ServiceAccount 'cluster-admin-sa' is not allowed by the operator"
        " configuration (--allow-service-account: none; SessionTemplate default/gpu-agents: builder) or a"
        " SessionTemplate's spec.policy.serviceAccounts")
    assert pods_of(api, "impersonator") == []


# --- http platforms ------------------------------------------------------------------------------


class RecordingServer(ThreadedServer):
    """The attacker's server: records every request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []

    async def answer(self, request: Any) -> Any:
        from aiohttp import web  # noqa: PLC0415

        self.requests.append(f"{request.method} {request.path_qs}")
        return web.json_response({"ok": True})


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[ProviderServerThread]:
    with running_provider_server(tokens=[TOKEN], workdir=tmp_path / "platform") as server:
        yield server


def http_spec(url: str) -> dict:
    return {"provider": "http", "http": {"url": url, "credentialsSecretRef": {"name": "platform"}, "maxRetries": 0}}


def test_a_platform_only_the_template_allows_is_used_for_its_sessions_and_nothing_else(api, platform,
                                                                                       start_operator):
    api.create("secrets", {"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "platform", "namespace": NAMESPACE},
                           "type": "Opaque", "data": {"token": base64.b64encode(TOKEN.encode()).decode()}})
    start_operator()  # no --http-platform: the operator allows none
    api.create(c.TEMPLATE_PLURAL, template("remote-agents", policy={"httpPlatforms": [platform.url]}))

    api.create(c.SESSION_PLURAL, session("remote", templateRef={"name": "remote-agents"}, **http_spec(platform.url)))
    wait_session(api, "remote", lambda o: ((o or {}).get("status", {}).get("provider") or {}).get("id"))
    assert platform.stats()["creates"] == 1

    with RecordingServer() as attacker:
        api.create(c.SESSION_PLURAL, session("exfil", templateRef={"name": "remote-agents"}, **http_spec(attacker.url)))
        assert config_valid_message(api, "exfil") == (
            f"spec.http.url: {attacker.url!r} is not an allowed http platform (this operator allows none;"
            f" SessionTemplate default/remote-agents allows {platform.url}): sessions and their Secrets are sent"
            " only to platforms the platform team allows, with `agent-sessions run --http-platform URL` (chart"
            " value httpProvider.platforms) or a SessionTemplate's spec.policy.httpPlatforms")
        # The same platform without the template: the operator allows none.
        api.create(c.SESSION_PLURAL, session("no-template", **http_spec(platform.url)))
        assert "(this operator allows none)" in config_valid_message(api, "no-template")
        assert attacker.requests == []
    assert platform.stats()["creates"] == 1


# --- explain -------------------------------------------------------------------------------------


def test_explain_shows_each_raise_and_the_template_it_came_from(api, kubeconfig, capsys):
    api.create(c.TEMPLATE_PLURAL, template("base", agent=AGENT,
                                           policy={"httpPlatforms": ["https://agents.example.com/v1"]}))
    api.create(c.TEMPLATE_PLURAL, template("gpu-agents", extends="base",
                                           policy={"podSecurityLevel": "baseline", "serviceAccounts": ["builder"]}))
    api.create(c.SESSION_PLURAL, session("explained", templateRef={"name": "gpu-agents"}))
    assert main(["explain", "explained", "--kubeconfig", kubeconfig]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"Raised limits:  podSecurityLevel: baseline ({RAISED_BY})" in out
    assert f"                serviceAccounts: builder ({RAISED_BY})" in out
    assert "                httpPlatforms: https://agents.example.com/v1 (raised by SessionTemplate default/base)" in out
