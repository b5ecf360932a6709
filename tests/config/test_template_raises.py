"""The limits a session's templates raise (`spec.policy`, DESIGN §11): merged over the chain, raising
only, each with its template; nothing from the session itself; shown by `explain`."""

from __future__ import annotations

from typing import Any

import pytest

from agent_sessions.config import Raise, TemplateRaises, explain, resolve_config, template_raises

NS = "team-a"
IMAGE = "ghcr.io/acme/agent:1.4"


def template(name: str, policy: Any = None, *, extends: str | None = None, **blocks: Any) -> dict[str, Any]:
    spec: dict[str, Any] = dict(blocks)
    if policy is not None:
        spec["policy"] = policy
    if extends:
        spec["extends"] = extends
    return {"apiVersion": "agentsession.dev/v1alpha1", "kind": "SessionTemplate",
            "metadata": {"name": name, "namespace": NS, "generation": 1}, "spec": spec}


def a_session(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "agentsession.dev/v1alpha1", "kind": "AgentSession",
            "metadata": {"name": "demo", "namespace": NS}, "spec": {"agent": {"image": IMAGE, "command": ["a"]}, **spec}}


def origin(name: str) -> str:
    return f"SessionTemplate {NS}/{name}"


def test_a_chain_without_policies_raises_nothing():
    raises = template_raises([template("base"), template("child", extends="base")])
    assert raises == TemplateRaises() and not raises


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        pytest.param(["baseline"], Raise("baseline", origin("t0")), id="one"),
        pytest.param(["baseline", "privileged"], Raise("privileged", origin("t1")), id="child-raises-further"),
        pytest.param(["privileged", "baseline"], Raise("privileged", origin("t0")), id="child-never-lowers"),
        pytest.param(["baseline", "baseline"], Raise("baseline", origin("t0")), id="first-grant-is-the-origin"),
        pytest.param(["restricted"], None, id="restricted-raises-nothing"),
        pytest.param(["baseline", "restricted"], Raise("baseline", origin("t0")), id="restricted-lowers-nothing"),
        pytest.param(["root"], None, id="not-a-level-raises-nothing"),
        pytest.param([["privileged"]], None, id="wrong-shape-raises-nothing"),
    ],
)
def test_the_most_permissive_level_of_the_chain_counts(levels, expected):
    chain = [template(f"t{index}", {"podSecurityLevel": level}) for index, level in enumerate(levels)]
    assert template_raises(chain).pod_security_level == expected


def test_lists_are_the_union_over_the_chain_each_entry_with_the_template_that_first_granted_it():
    chain = [
        template("base", {"serviceAccounts": ["builder"], "httpPlatforms": ["https://a.example/v1"]}),
        template("child", {"serviceAccounts": ["builder", "deployer"], "httpEndpoints": ["http://10.0.0.7:*"]},
                 extends="base"),
    ]
    raises = template_raises(chain)
    assert raises.service_accounts == (Raise("builder", origin("base")), Raise("deployer", origin("child")))
    assert raises.http_platforms == (Raise("https://a.example/v1", origin("base")),)
    assert raises.http_endpoints == (Raise("http://10.0.0.7:*", origin("child")),)


def test_entries_of_the_wrong_shape_raise_nothing():
    raises = template_raises([template("t", {"serviceAccounts": "builder", "httpPlatforms": [1, "", None]})])
    assert raises == TemplateRaises()


def test_resolve_config_carries_the_raises_of_the_chain():
    templates = {"gpu-agents": template("gpu-agents", {"podSecurityLevel": "baseline", "serviceAccounts": ["builder"]})}
    resolved = resolve_config(a_session({"templateRef": {"name": "gpu-agents"}}), templates)
    assert resolved.raises == TemplateRaises(pod_security_level=Raise("baseline", origin("gpu-agents")),
                                             service_accounts=(Raise("builder", origin("gpu-agents")),))


def test_a_policy_in_the_sessions_own_spec_raises_nothing():
    # Admission refuses `spec.policy` on an AgentSession (tests/api/invalid/87-*); should one reach
    # the operator anyway, it is not read.
    policy = {"podSecurityLevel": "privileged", "serviceAccounts": ["cluster-admin"],
              "httpPlatforms": ["https://attacker.example"]}
    assert resolve_config(a_session({"policy": policy}), {}).raises == TemplateRaises()
    templates = {"plain": template("plain")}
    assert resolve_config(a_session({"templateRef": {"name": "plain"}, "policy": policy}), templates).raises \
        == TemplateRaises()


def test_a_template_the_session_does_not_reference_raises_nothing_for_it():
    templates = {"gpu-agents": template("gpu-agents", {"podSecurityLevel": "privileged"}), "plain": template("plain")}
    assert resolve_config(a_session({"templateRef": {"name": "plain"}}), templates).raises == TemplateRaises()


def test_the_policy_block_is_not_configuration():
    templates = {"t": template("t", {"podSecurityLevel": "baseline"})}
    resolved = resolve_config(a_session({"templateRef": {"name": "t"}}), templates)
    assert "policy" not in resolved.config
    assert not any(path.startswith("policy") for path in resolved.origins)


def test_explain_shows_each_raise_and_the_template_that_raised_it():
    templates = {
        "base": template("base", {"httpPlatforms": ["https://agents.example.com/v1"]}),
        "gpu-agents": template("gpu-agents", {"podSecurityLevel": "baseline", "serviceAccounts": ["builder"]},
                               extends="base"),
    }
    text = explain(resolve_config(a_session({"templateRef": {"name": "gpu-agents"}}), templates))
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("Raised limits:"))
    assert lines[start:start + 4] == [
        "Raised limits:  podSecurityLevel: baseline (raised by SessionTemplate team-a/gpu-agents)",
        "                serviceAccounts: builder (raised by SessionTemplate team-a/gpu-agents)",
        "                httpPlatforms: https://agents.example.com/v1 (raised by SessionTemplate team-a/base)",
        "                (each above the operator's configuration; a namespace's"
        " pod-security.kubernetes.io/enforce label still binds)",
    ]


def test_explain_says_when_nothing_is_raised():
    text = explain(resolve_config(a_session({}), {}))
    assert "Raised limits:  (none: the operator's configuration applies)" in text.splitlines()
