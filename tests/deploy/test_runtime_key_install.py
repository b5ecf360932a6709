"""The runtime key Secret in the install artefacts: both components are told its name, the
operator may read and create it, the gateway may only read it, in the chart (both modes) and in the
kustomize base alike. Its behaviour (the operator creates it, the gateway waits for it, runtimes
refuse callers without a token) is tests/security/test_runtime_credential.py's."""

from __future__ import annotations

import pytest

from deploy.test_install import (  # noqa: F401 (fixtures)
    GATEWAY,
    GATEWAY_RENDERINGS,
    NAMESPACE,
    OPERATOR,
    RELEASE,
    base_docs,
    deployments,
    gateway_container,
    helm_template_fails,
    kubectl,
    of_kind,
    operator_container,
)

TIER = "embedded"

SECRET = f"{RELEASE}-runtime-key"
GET_THE_KEY = {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET], "verbs": ["get"]}
CREATE_SECRETS = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
"""`create` cannot be restricted by resourceNames (the name of an object is not known to the
authorizer before it exists): the operator may create any Secret in the release namespace."""


def runtime_key_grants(docs: list[dict], component: str) -> tuple[list[dict], list[dict]]:
    roles = [r for r in of_kind(docs, "Role", component) if r["metadata"]["name"].endswith("-runtime-key")]
    bindings = [b for b in of_kind(docs, "RoleBinding", component) if b["metadata"]["name"].endswith("-runtime-key")]
    return roles, bindings


def flag(container: dict) -> str:
    (value,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--runtime-key-secret=")]
    return value


@pytest.mark.parametrize(("name", "docs_of"), deployments(), ids=[n for n, _ in deployments()])
def test_operator_is_always_told_the_runtime_key_secret_and_may_read_and_create_it(render, base_docs, name, docs_of):
    docs = docs_of(render, base_docs)
    assert flag(operator_container(docs)) == f"{NAMESPACE}/{SECRET}"
    (role,), (binding,) = runtime_key_grants(docs, OPERATOR)
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [GET_THE_KEY, CREATE_SECRETS]
    account = [a for a in of_kind(docs, "ServiceAccount", OPERATOR)][0]["metadata"]["name"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]


@pytest.mark.parametrize(("name", "docs_of"), deployments(GATEWAY_RENDERINGS),
                         ids=[n for n, _ in deployments(GATEWAY_RENDERINGS)])
def test_gateway_is_told_the_same_secret_and_may_only_get_it(render, base_docs, name, docs_of):
    docs = docs_of(render, base_docs)
    assert flag(gateway_container(docs)) == flag(operator_container(docs)) == f"{NAMESPACE}/{SECRET}"
    (role,), (binding,) = runtime_key_grants(docs, GATEWAY)
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [GET_THE_KEY]
    account = of_kind(docs, "ServiceAccount", GATEWAY)[0]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    # Nowhere else may the gateway read a Secret.
    for other in of_kind(docs, "ClusterRole", GATEWAY) + of_kind(docs, "Role", GATEWAY):
        if other is not role:
            assert not [r for r in other["rules"] if "secrets" in r["resources"]], other


def test_chart_and_base_grant_the_same_runtime_key_access(render, base_docs):
    for component in (OPERATOR, GATEWAY):
        chart_roles, _ = runtime_key_grants(render(), component)
        base_roles, _ = runtime_key_grants(base_docs, component)
        assert [r["rules"] for r in chart_roles] == [r["rules"] for r in base_roles]
        assert [r["metadata"]["name"] for r in chart_roles] == [r["metadata"]["name"] for r in base_roles]


def test_without_gateway_only_the_operator_gets_runtime_key_access(render):
    docs = render("gateway.enabled=false")
    assert runtime_key_grants(docs, GATEWAY) == ([], [])
    assert len(runtime_key_grants(docs, OPERATOR)[0]) == 1


def test_secret_name_is_a_value_used_by_flags_and_rules_alike(render):
    docs = render("runtimeKey.secretName=team-runtime-key")
    assert flag(operator_container(docs)) == flag(gateway_container(docs)) == f"{NAMESPACE}/team-runtime-key"
    for component in (OPERATOR, GATEWAY):
        (role,), _ = runtime_key_grants(docs, component)
        assert role["rules"][0]["resourceNames"] == ["team-runtime-key"]


def test_schema_refuses_a_secret_name_kubernetes_could_not_hold(helm):
    assert "secretName" in helm_template_fails(helm, "runtimeKey.secretName=Not_A_Name")
    assert "runtimeKey" in helm_template_fails(helm, "runtimeKey.other=1")


def test_the_cli_parses_the_rendered_flags(render):
    from agent_sessions.cli.main import build_parser

    docs = render()
    assert build_parser().parse_args(operator_container(docs)["args"]).runtime_key_secret == f"{NAMESPACE}/{SECRET}"
    assert build_parser().parse_args(gateway_container(docs)["args"]).runtime_key_secret == f"{NAMESPACE}/{SECRET}"


def test_the_cli_refuses_a_runtime_key_secret_that_is_not_namespace_slash_name(capsys):
    from agent_sessions.cli.main import build_parser

    for bad in ("just-a-name", "Upper/x", "ns/"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["run", f"--runtime-key-secret={bad}"])
        assert "expected NAMESPACE/NAME of a Secret" in capsys.readouterr().err
