"""The install artefacts: Helm chart, kustomize base, container image recipe.

Rendered with the real `helm` and `kubectl` (from .tools/bin, installed by `make tools`, else
from PATH) and validated strictly against the Kubernetes OpenAPI schemas. Without the binaries
these tests skip on a workstation and fail in CI (CI=true), so CI can never pass by skipping.

The RBAC contracts — exactly the API calls the operator makes, and those the gateway makes — are
written out below once more, on purpose: the chart's rules (templates/_helpers.tpl), the kustomize
base's ClusterRoles and these lists must all agree (and the gateway's list with the RBAC its own
tests run under, tests/gateway/conftest.py).
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from support.tools import find_tool

TIER = "embedded"  # renders the chart with helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "agent-session-operator"
BASE = ROOT / "manifests" / "base"

RELEASE = "agent-session-operator"
NAMESPACE = "agent-sessions-system"
WATCHED = ["team-a", "team-b"]

# --- the RBAC contract -----------------------------------------------------------------------

SESSION_RULES = [
    {"apiGroups": ["agentsession.dev"], "resources": ["agentsessions"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["agentsession.dev"], "resources": ["agentsessions/status"], "verbs": ["patch"]},
    {"apiGroups": ["agentsession.dev"], "resources": ["agentsessions/finalizers"], "verbs": ["update"]},
    {"apiGroups": ["agentsession.dev"], "resources": ["sessiontemplates"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "create", "delete"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "patch"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "list", "watch"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "create", "patch"]},
]
"""What the operator does inside every namespace it watches (kopf's scanning is disabled, so
nothing cluster-scoped is listed or watched; the session's own namespace is read for its pod
security label, which a Role in that namespace can grant; the session NetworkPolicy is kept in
each namespace with a session pod, with networkPolicy.enabled, the default)."""

GATEWAY_AUTH_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
]
"""The gateway's cluster-scoped calls: a TokenReview per caller, a SubjectAccessReview per request.
A ClusterRole in both modes: these resources exist only at cluster scope."""

GATEWAY_SESSION_RULES = [
    {"apiGroups": ["agentsession.dev"], "resources": ["agentsessions"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["agentsession.dev"], "resources": ["sessiontemplates"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
"""What the gateway does in a namespace it serves: read, list and (waking) watch sessions, create a
signed wake request Event, list templates to resolve wakeOnMessage. No write to any AgentSession."""

GATEWAY_RULES = [*GATEWAY_AUTH_RULES, *GATEWAY_SESSION_RULES]
"""The gateway's cluster-wide ClusterRole; the same list as GATEWAY_RBAC in tests/gateway/conftest.py
(test_gateway_rbac_contract_is_what_the_gateway_tests_run_with)."""

PEERING_VERBS = ["list", "watch", "patch"]

CLUSTER_WIDE_RULES = [
    *SESSION_RULES,
    {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": PEERING_VERBS},
]
NAMESPACED_RULES = [
    *SESSION_RULES,
    {"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings"], "verbs": PEERING_VERBS},
]

SHARDED = ("shards=2", "replicas=3")
SHARD_LEASES = [f"{RELEASE}-shard-0", f"{RELEASE}-shard-1"]


def shard_lease_rules(names: list[str]) -> list[dict]:
    """The sharded operator's grant in the release namespace: read and renew the shard Leases by
    name, create them (create cannot be restricted by name). No list or watch: read by name."""
    return [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": names,
         "verbs": ["get", "update"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]


# Custom resources in the rendered output: kubernetes-validate has no schema for them (it would
# only warn), so they are checked against the CRDs of the same install instead.
CUSTOM_RESOURCES = {("kopf.dev/v1", "ClusterKopfPeering"), ("kopf.dev/v1", "KopfPeering")}

COMPONENT = "app.kubernetes.io/component"
OPERATOR, GATEWAY = "operator", "gateway"
RUNTIME_PORT = 8080
SESSION_LABEL = "agentsession.dev/session"

# The chart's minimum (Chart.yaml kubeVersion) and kubernetes-validate's newest schema.
KUBERNETES_VERSIONS = ["1.29.0", None]


# --- tools -----------------------------------------------------------------------------------




@pytest.fixture(scope="session")
def kubectl() -> str:
    return find_tool("kubectl")


def run(*cmd: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=120)


def load_all(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def base_docs(kubectl) -> list[dict]:
    result = run(kubectl, "kustomize", str(BASE))
    assert result.returncode == 0, result.stderr
    return load_all(result.stdout)


SHARDING_OVERLAY = ROOT / "manifests" / "sharding"


@pytest.fixture(scope="session")
def sharded_base_docs(kubectl) -> list[dict]:
    """manifests/sharding: the base with 2 shards over 3 replicas."""
    result = run(kubectl, "kustomize", str(SHARDING_OVERLAY))
    assert result.returncode == 0, result.stderr
    return load_all(result.stdout)


def helm_template_fails(helm: str, *sets: str) -> str:
    args = [arg for s in sets for arg in ("--set", s)]
    result = run(helm, "template", RELEASE, str(CHART), *args)
    assert result.returncode != 0, f"helm template accepted {sets}"
    return result.stderr


# --- helpers over rendered objects -----------------------------------------------------------

NAMESPACED_MODE = ("watchNamespaces={" + ",".join(WATCHED) + "}",)
NO_GATEWAY = ("gateway.enabled=false",)
PROTECTED_CLUSTER_WIDE = ("networkPolicy.namespaces={" + ",".join(WATCHED) + "}",)
RENDERINGS = {
    "cluster-wide": (),
    "namespaced": NAMESPACED_MODE,
    "two-replicas": ("replicas=2",),
    "standalone": ("peering.enabled=false",),
    "gateway-disabled": NO_GATEWAY,
    "sharded": SHARDED,
}
GATEWAY_RENDERINGS = ["cluster-wide", "namespaced"]
"""Renderings that have a gateway (the others differ from the default in the operator only)."""


def of_kind(docs: list[dict], kind: str, component: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind
            and (component is None or d["metadata"].get("labels", {}).get(COMPONENT) == component)]


RUNTIME_KEY_SUFFIX = "-runtime-key"
"""The Roles and RoleBindings of the runtime key Secret (release namespace, both modes); see
tests/deploy/test_runtime_key_install.py."""
SHARDS_SUFFIX = "-shards"
"""The Role and RoleBinding of the shard Leases (release namespace, shards > 1)."""


def session_grants(docs: list[dict], kind: str, component: str) -> list[dict]:
    """The Roles (RoleBindings) of `component` but those of the runtime key Secret and the shard Leases."""
    return [d for d in of_kind(docs, kind, component)
            if not d["metadata"]["name"].endswith((RUNTIME_KEY_SUFFIX, SHARDS_SUFFIX))]


def shard_grants(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in of_kind(docs, kind, OPERATOR) if d["metadata"]["name"].endswith(SHARDS_SUFFIX)]


def one(docs: list[dict], kind: str, component: str | None = None) -> dict:
    found = of_kind(docs, kind, component)
    assert len(found) == 1, f"expected one {kind} ({component or 'any component'}), found {len(found)}"
    return found[0]


def gateway_services(docs: list[dict]) -> tuple[dict, dict]:
    """The gateway's Service (the one to expose) and its metrics Service (`/metrics` alone)."""
    services = of_kind(docs, "Service", GATEWAY)
    metrics = [s for s in services if s["metadata"]["labels"].get("agentsession.dev/metrics") == "true"]
    public = [s for s in services if s not in metrics]
    assert (len(public), len(metrics)) == (1, 1), [s["metadata"]["name"] for s in services]
    return public[0], metrics[0]


def of_component(docs: list[dict], component: str) -> list[dict]:
    return [d for d in docs if d["metadata"].get("labels", {}).get(COMPONENT) == component]


def the_container(docs: list[dict], component: str) -> dict:
    (container,) = one(docs, "Deployment", component)["spec"]["template"]["spec"]["containers"]
    return container


def operator_container(docs: list[dict]) -> dict:
    return the_container(docs, OPERATOR)


def gateway_container(docs: list[dict]) -> dict:
    return the_container(docs, GATEWAY)


def validate_strictly(docs: list[dict]) -> None:
    """Built-in kinds through `kubernetes-validate --strict`; allowlisted custom resources
    against the CRDs rendered with them; anything else fails."""
    crds = {
        (f"{c['spec']['group']}/{v['name']}", c["spec"]["names"]["kind"]): c["spec"]["scope"]
        for c in of_kind(docs, "CustomResourceDefinition")
        for v in c["spec"]["versions"]
    }
    builtin = []
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        if key in CUSTOM_RESOURCES:
            assert key in crds, f"{key} is rendered without its CRD"
            namespaced = "namespace" in doc["metadata"]
            assert namespaced == (crds[key] == "Namespaced"), f"{key} {doc['metadata']} vs scope {crds[key]}"
            assert set(doc) <= {"apiVersion", "kind", "metadata"}, f"{key} carries more than metadata"
        else:
            builtin.append(doc)
    stream = yaml.safe_dump_all(builtin)
    exe = str(Path(sys.executable).with_name("kubernetes-validate"))
    for version in KUBERNETES_VERSIONS:
        result = run(exe, "--strict", *(["-k", version] if version else []), "-", input=stream)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        # An unknown kind only warns: every built-in object must have been checked.
        assert "WARN" not in output, output
        assert output.count(" passed ") == len(builtin), output


# --- helm lint and strict validation ---------------------------------------------------------


@pytest.mark.parametrize("sets", [(), NAMESPACED_MODE], ids=["cluster-wide", "namespaced"])
def test_helm_lint_strict_passes(helm, sets):
    args = [arg for s in sets for arg in ("--set", s)]
    result = run(helm, "lint", "--strict", str(CHART), *args)
    assert result.returncode == 0, result.stdout + result.stderr


VALIDATED = {**RENDERINGS, "protected-cluster-wide": PROTECTED_CLUSTER_WIDE}


@pytest.mark.parametrize("name", list(VALIDATED))
def test_helm_template_passes_strict_kubernetes_validation(render, name):
    validate_strictly(render(*VALIDATED[name]))


def test_kustomize_base_builds_and_passes_strict_kubernetes_validation(base_docs):
    validate_strictly(base_docs)


def test_strict_validation_catches_an_unknown_field(render):
    docs = render()
    one(docs, "Deployment", GATEWAY)["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(AssertionError, match="imagePullPolcy"):
        validate_strictly(docs)


def test_strict_validation_refuses_an_unlisted_custom_resource(render):
    docs = render() + [{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}]
    with pytest.raises(AssertionError, match="WARN"):
        validate_strictly(docs)


# --- values.schema.json ----------------------------------------------------------------------


def values_schema() -> dict:
    return json.loads((CHART / "values.schema.json").read_text())


def default_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def schema_errors(**overrides) -> list[str]:
    values = default_values()
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split("__")
        node = values
        for key in parents:
            node = node[key]
        node[leaf] = value
    validator = jsonschema.Draft7Validator(values_schema())
    return [e.message for e in validator.iter_errors(values)]


def test_values_schema_is_draft_07_and_accepts_the_defaults():
    schema = values_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema_errors() == []


def test_values_schema_is_closed_at_every_level():
    open_objects = []

    def walk(node: dict, path: str) -> None:
        if node.get("type") == "object" and "properties" in node and node.get("additionalProperties") is not False:
            open_objects.append(path or "/")
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}/{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(values_schema(), "")
    assert open_objects == []


def test_values_schema_declares_every_default_value():
    assert set(default_values()) == set(values_schema()["properties"])


@pytest.mark.parametrize(
    ("sets", "in_message"),
    [
        (("colour=blue",), "colour"),
        (("replicas=2", "peering.enabled=false"), "peering"),
        (("image.pullPolicy=Sometimes",), "pullPolicy"),
        (("image.tags=latest",), "tags"),
        (("logFormat=xml",), "logFormat"),
        (("watchNamespaces={Team_A}",), "watchNamespaces"),
        (("metrics.port=8080",), "metrics"),
        (("serviceAccount.create=false",), "serviceAccount"),
        (("gateway.colour=blue",), "colour"),
        (("gateway.replicas=-1",), "replicas"),
        (("gateway.maxMessageBytes=0",), "maxMessageBytes"),
        (("gateway.rateLimit.perSecond=-1",), "perSecond"),
        (("gateway.rateLimit.burst=0",), "burst"),
        (("gateway.logLevel=TRACE",), "logLevel"),
        (("gateway.service.type=ExternalName",), "type"),
        (("gateway.service.port=0",), "port"),
        (("gateway.serviceAccount.create=false",), "serviceAccount"),
        (("gateway.podDisruptionBudget.minAvailable=half",), "minAvailable"),
        (("networkPolicy.namespaces={Team_A}",), "namespaces"),
        (("networkPolicy.namespaces={a}", "watchNamespaces={b}"), "networkPolicy"),
    ],
    ids=["unknown-top-level-key", "two-replicas-without-peering", "bad-pull-policy",
         "unknown-nested-key", "bad-log-format", "bad-namespace-name", "metrics-on-health-port",
         "existing-service-account-without-name", "unknown-gateway-key", "negative-gateway-replicas",
         "zero-message-bytes", "negative-rate-limit", "zero-burst", "bad-gateway-log-level",
         "external-name-service", "service-port-zero", "existing-gateway-account-without-name",
         "bad-min-available", "bad-protected-namespace", "protected-namespaces-in-namespaced-mode"],
)
def test_helm_refuses_invalid_values(helm, sets, in_message):
    assert in_message in helm_template_fails(helm, *sets)


@pytest.mark.parametrize(
    "overrides",
    [{"colour": "blue"}, {"replicas": 2, "peering__enabled": False}, {"image__pullPolicy": "Sometimes"},
     {"gateway__replicas": -1}, {"gateway__rateLimit__perSecond": "fast"},
     {"gateway__podDisruptionBudget__minAvailable": 1.5},
     {"gateway__serviceAccount__create": False}, {"gateway__resources__requests": {"cpu": "lots"}},
     {"watchNamespaces": ["b"], "networkPolicy__namespaces": ["a"]}],
    ids=["unknown-top-level-key", "two-replicas-without-peering", "bad-pull-policy", "negative-gateway-replicas",
         "non-numeric-rate-limit", "fractional-min-available", "existing-gateway-account-without-name",
         "bad-gateway-quantity", "protected-namespaces-in-namespaced-mode"],
)
def test_values_schema_itself_rejects(overrides):
    assert schema_errors(**overrides) != []


@pytest.mark.parametrize(
    "overrides",
    [{"sessionPods__securityLevel": "strict"}, {"sessionPods__allowedServiceAccounts": ["Not_A_Name"]},
     {"sessionPods__resources__requests": {"cpu": "lots"}}, {"sessionPods__resources__limits": {"memory": -1}},
     {"sessionPods__resources__limits": {"memory": "-1Gi"}}, {"sessionPods__resources__burst": {}}],
    ids=["unknown-level", "bad-service-account-name", "bad-quantity", "negative-number", "negative-quantity",
         "unknown-key"],
)
def test_session_pod_values_are_checked_by_the_schema(overrides):
    assert schema_errors(**overrides) != []


def test_session_pod_values_reach_the_operator(render):
    from agent_sessions.cli.main import _pod_default_resources, build_parser

    docs = render("sessionPods.securityLevel=baseline", "sessionPods.allowedServiceAccounts={builder,default}",
                  "sessionPods.resources.requests.cpu=1", "sessionPods.resources.limits.nvidia\\.com/gpu=1")
    args = operator_container(docs)["args"]
    assert "--pod-security-level=baseline" in args
    assert [a for a in args if a.startswith("--allow-service-account")] == [
        "--allow-service-account=builder", "--allow-service-account=default"]
    parsed = build_parser().parse_args(args)
    assert (parsed.pod_security_level, parsed.allow_service_account) == ("baseline", ["builder", "default"])
    assert _pod_default_resources(parsed) == {"requests": {"cpu": "1", "memory": "512Mi"},
                                              "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}}


def test_session_pod_resources_can_be_emptied(render):
    docs = render("sessionPods.resources.requests=null", "sessionPods.resources.limits=null")
    assert not [a for a in operator_container(docs)["args"] if a.startswith("--pod-default-")]


@pytest.mark.parametrize(
    "overrides",
    [{"httpProvider__platforms": ["agents.example.com"]}, {"httpProvider__platforms": ["https://u@evil.io"]},
     {"httpProvider__platforms": ["https://agents.example.com/v1?tenant=a"]}, {"httpProvider__endpoints": "x"},
     {"httpProvider__trustSessions": True}],
    ids=["no-scheme", "userinfo", "query", "not-a-list", "unknown-key"],
)
def test_http_platform_values_are_checked_by_the_schema(overrides):
    assert schema_errors(**overrides) != []


def test_http_platform_values_reach_the_operator_and_none_are_allowed_by_default(render):
    from agent_sessions.cli.main import _http_allowlist, build_parser

    assert not [a for a in operator_container(render())["args"] if a.startswith("--http-")]
    docs = render("httpProvider.platforms={https://agents.example.com/v1,http://platform.internal:8089}",
                  "httpProvider.endpoints={https://runtimes.example.com:*}")
    args = [a for a in operator_container(docs)["args"] if a.startswith("--http-")]
    assert args == ["--http-platform=https://agents.example.com/v1", "--http-platform=http://platform.internal:8089",
                    "--http-endpoint=https://runtimes.example.com:*"]
    assert _http_allowlist(build_parser().parse_args(["run", *args])) == (
        ("https://agents.example.com/v1", "http://platform.internal:8089"), ("https://runtimes.example.com:*",))


@pytest.mark.parametrize(
    ("sets", "in_message"),
    [
        (("gateway.podDisruptionBudget.minAvailable=2",), "minAvailable must be below gateway.replicas"),
        (("gateway.serviceAccount.name=agent-session-operator",), "gateway.serviceAccount must differ"),
        (("networkPolicy.namespaces={a}", "watchNamespaces={b}"), "networkPolicy.namespaces is for cluster-wide"),
    ],
    ids=["budget-blocking-every-drain", "gateway-sharing-the-operators-account",
         "protected-namespaces-in-namespaced-mode"],
)
def test_the_templates_refuse_unsafe_gateway_values_even_without_schema_validation(helm, sets, in_message):
    args = [arg for s in sets for arg in ("--set", s)]
    result = run(helm, "template", RELEASE, str(CHART), "--skip-schema-validation", *args)
    assert result.returncode != 0 and in_message in result.stderr, result.stderr


def test_two_replicas_with_peering_are_accepted():
    assert schema_errors(replicas=2) == []


def test_decimal_rate_limits_are_accepted_as_helm_set_passes_them():
    # `--set gateway.rateLimit.perSecond=0.5` arrives as the string "0.5".
    assert schema_errors(gateway__rateLimit__perSecond="0.5") == []
    assert schema_errors(gateway__rateLimit__perSecond=0.5) == []


def test_the_template_refuses_two_replicas_without_peering_even_without_schema_validation(helm):
    result = run(helm, "template", RELEASE, str(CHART), "--skip-schema-validation",
                 "--set", "replicas=2", "--set", "peering.enabled=false")
    assert result.returncode != 0 and "requires peering.enabled" in result.stderr


def test_operator_defaults_blocks_are_the_session_template_config_blocks():
    crd = yaml.safe_load((ROOT / "crds" / "sessiontemplates.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    blocks = values_schema()["properties"]["operatorDefaults"]["properties"]
    assert set(blocks) == set(spec) - {"extends", "lockedFields", "policy"}  # `policy`: raises, not configuration
    assert blocks["provider"]["enum"] == spec["provider"]["enum"]


# --- CRDs ------------------------------------------------------------------------------------

GENERATED_CRDS = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))


@pytest.mark.parametrize("copy_dir", [CHART / "crds", BASE / "crds"], ids=["chart", "kustomize-base"])
@pytest.mark.parametrize("name", GENERATED_CRDS)
def test_crd_copies_are_byte_identical_to_crds(copy_dir, name):
    assert (copy_dir / name).read_bytes() == (ROOT / "crds" / name).read_bytes(), (
        f"{copy_dir.relative_to(ROOT)}/{name} differs from crds/{name}: run scripts/sync-crds.sh"
    )


def test_kopf_peering_crds_are_the_same_in_chart_and_base():
    base, chart = BASE / "crds" / "kopf-peerings.yaml", CHART / "crds" / "kopf-peerings.yaml"
    assert base.read_bytes() == chart.read_bytes(), (
        "manifests/base/crds/kopf-peerings.yaml differs from the chart's: run scripts/sync-crds.sh"
    )


@pytest.mark.parametrize("crd_dir", [CHART / "crds", BASE / "crds"], ids=["chart", "kustomize-base"])
def test_no_stray_crds(crd_dir):
    assert sorted(p.name for p in crd_dir.glob("*.yaml")) == sorted([*GENERATED_CRDS, "kopf-peerings.yaml"])


def test_kopf_peering_crds_serve_what_kopf_looks_for():
    crds = {c["metadata"]["name"]: c for c in load_all((CHART / "crds" / "kopf-peerings.yaml").read_text())}
    assert set(crds) == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    for name, scope, kind in [("clusterkopfpeerings.kopf.dev", "Cluster", "ClusterKopfPeering"),
                              ("kopfpeerings.kopf.dev", "Namespaced", "KopfPeering")]:
        spec = crds[name]["spec"]
        assert (spec["group"], spec["scope"], spec["names"]["kind"]) == ("kopf.dev", scope, kind)
        (version,) = spec["versions"]
        assert version["name"] == "v1" and version["served"] and version["storage"]
        # kopf writes keep-alives with a merge patch of the main resource, not a status subresource.
        assert "subresources" not in version
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


@pytest.mark.parametrize("source", ["chart", "kustomize-base"])
def test_every_crd_is_installed(render, base_docs, source):
    docs = render() if source == "chart" else base_docs
    names = {c["metadata"]["name"] for c in of_kind(docs, "CustomResourceDefinition")}
    assert names == {"agentsessions.agentsession.dev", "sessiontemplates.agentsession.dev",
                     "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}


# --- RBAC ------------------------------------------------------------------------------------


def test_cluster_role_rules_are_the_contract_in_chart_and_base(render, base_docs):
    chart_rules = one(render(), "ClusterRole", OPERATOR)["rules"]
    base_rules = one(base_docs, "ClusterRole", OPERATOR)["rules"]
    assert base_rules == chart_rules
    assert chart_rules == CLUSTER_WIDE_RULES


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_with_an_http_platform_the_operator_may_also_get_configmaps(render, mode):
    # An http session's environment may name ConfigMap values, which the operator reads and sends
    # to the platform (a pod's are read by the kubelet): granted only where http sessions can run.
    sets = ("httpProvider.platforms[0]=https://agents.example.com/v1",
            *(NAMESPACED_MODE if mode == "namespaced" else ()))
    docs = render(*sets)
    roles = [one(docs, "ClusterRole", OPERATOR)] if mode == "cluster-wide" else session_grants(docs, "Role", OPERATOR)
    for role in roles:
        expected = CLUSTER_WIDE_RULES if mode == "cluster-wide" else NAMESPACED_RULES
        configmaps = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
        assert role["rules"] == [configmaps if rule["resources"] == ["configmaps"] else rule for rule in expected]


@pytest.mark.parametrize("source", ["chart", "kustomize-base"])
def test_cluster_role_is_bound_to_the_operators_service_account(render, base_docs, source):
    docs = render() if source == "chart" else base_docs
    binding = one(docs, "ClusterRoleBinding", OPERATOR)
    account = one(docs, "ServiceAccount", OPERATOR)
    pod = one(docs, "Deployment", OPERATOR)["spec"]["template"]["spec"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": one(docs, "ClusterRole", OPERATOR)["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": NAMESPACE}]
    assert account["metadata"]["namespace"] == NAMESPACE
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_namespaced_mode_grants_a_role_in_each_watched_namespace_and_nothing_cluster_wide(render):
    docs = render(*NAMESPACED_MODE)
    assert of_kind(docs, "ClusterRole", OPERATOR) == [] and of_kind(docs, "ClusterRoleBinding", OPERATOR) == []
    roles = {r["metadata"]["namespace"]: r for r in session_grants(docs, "Role", OPERATOR)}
    bindings = {b["metadata"]["namespace"]: b for b in session_grants(docs, "RoleBinding", OPERATOR)}
    assert sorted(roles) == sorted(bindings) == sorted(WATCHED)
    account = one(docs, "ServiceAccount", OPERATOR)["metadata"]
    for namespace in WATCHED:
        assert roles[namespace]["rules"] == NAMESPACED_RULES
        assert bindings[namespace]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                  "name": roles[namespace]["metadata"]["name"]}
        assert bindings[namespace]["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                                    "namespace": account["namespace"]}]


@pytest.mark.parametrize("name", ["cluster-wide", "namespaced", "standalone", "sharded"])
def test_no_rule_uses_wildcards_resource_names_or_escalation_verbs(render, base_docs, sharded_base_docs, name):
    docs = render(*RENDERINGS[name]) + base_docs + sharded_base_docs
    rules = [rule for role in of_kind(docs, "ClusterRole") + of_kind(docs, "Role") for rule in role["rules"]]
    assert rules
    for rule in rules:
        if "resourceNames" in rule:  # `get` of the runtime key Secret (test_runtime_key_install.py) …
            if rule["resources"] == ["leases"]:  # … and get/update of the shard Leases
                assert rule == shard_lease_rules(SHARD_LEASES)[0], rule
                continue
            assert rule == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                            "resourceNames": [f"{RELEASE}-runtime-key"]}, rule
            continue
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], rule
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"]), rule
        if "update" in rule["verbs"]:  # only for owner references with blockOwnerDeletion
            assert rule == {"apiGroups": ["agentsession.dev"], "resources": ["agentsessions/finalizers"], "verbs": ["update"]}
        if rule["resources"] == ["leases"]:  # the shard Leases: created in the release namespace only
            assert rule == shard_lease_rules(SHARD_LEASES)[1], rule
        # Nothing reaches into a session pod but the runtime's HTTP port (NetworkPolicy below).
        reaching_in = {"pods/exec", "pods/attach", "pods/portforward", "pods/proxy", "services/proxy"}
        assert not reaching_in & set(rule["resources"]), rule


def test_standalone_mode_has_no_peering_rule_or_object(render):
    for docs in (render("peering.enabled=false"), render("peering.enabled=false", *NAMESPACED_MODE)):
        rules = [rule for role in of_kind(docs, "ClusterRole") + of_kind(docs, "Role") for rule in role["rules"]]
        assert "kopf.dev" not in {group for rule in rules for group in rule["apiGroups"]}
        assert [d for d in docs if d["apiVersion"] == "kopf.dev/v1"] == []
        args = operator_container(docs)["args"]
        assert "--standalone" in args and not any(a.startswith("--peering") for a in args)


# --- peering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["chart", "kustomize-base"])
def test_cluster_wide_install_has_its_cluster_peering_object(render, base_docs, source):
    docs = render() if source == "chart" else base_docs
    (peering,) = [d for d in docs if d["apiVersion"] == "kopf.dev/v1"]
    assert peering["kind"] == "ClusterKopfPeering"
    assert peering["metadata"]["name"] == RELEASE and "namespace" not in peering["metadata"]
    assert f"--peering={RELEASE}" in operator_container(docs)["args"]


def test_namespaced_install_peers_in_every_watched_namespace(render):
    # kopf keeps one keep-alive task per namespace it serves, each in that namespace's KopfPeering.
    docs = render(*NAMESPACED_MODE)
    peerings = [d for d in docs if d["apiVersion"] == "kopf.dev/v1"]
    assert {p["kind"] for p in peerings} == {"KopfPeering"}
    assert sorted(p["metadata"]["namespace"] for p in peerings) == sorted(WATCHED)
    assert {p["metadata"]["name"] for p in peerings} == {RELEASE}


# --- sharding ---------------------------------------------------------------------------------

MODES = [pytest.param((), id="cluster-wide"), pytest.param(NAMESPACED_MODE, id="namespaced")]


def all_rules(docs: list[dict]) -> list[dict]:
    return [rule for role in of_kind(docs, "ClusterRole") + of_kind(docs, "Role") for rule in role["rules"]]


@pytest.mark.parametrize("mode", MODES)
def test_one_shard_by_default_means_no_lease_and_kopf_peering(render, mode):
    docs = render(*mode)
    assert shard_grants(docs, "Role") == [] and shard_grants(docs, "RoleBinding") == []
    assert "coordination.k8s.io" not in {group for rule in all_rules(docs) for group in rule["apiGroups"]}
    args = operator_container(docs)["args"]
    assert not [a for a in args if a.startswith("--shard")] and f"--peering={RELEASE}" in args
    assert [d for d in docs if d["apiVersion"] == "kopf.dev/v1"]


@pytest.mark.parametrize("mode", MODES)
def test_a_sharded_install_grants_exactly_the_shard_leases_in_the_release_namespace(render, mode):
    docs = render(*SHARDED, *mode)
    (role,), (binding,) = shard_grants(docs, "Role"), shard_grants(docs, "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == shard_lease_rules(SHARD_LEASES)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    account = one(docs, "ServiceAccount", OPERATOR)["metadata"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"], "namespace": NAMESPACE}]
    lease_rules = [r for r in all_rules(docs) if "coordination.k8s.io" in r["apiGroups"]]
    assert lease_rules == role["rules"]  # nowhere else, and never cluster-wide


@pytest.mark.parametrize("mode", MODES)
def test_a_sharded_install_has_no_kopf_peering(render, mode):
    docs = render(*SHARDED, *mode)
    assert [d for d in docs if d["apiVersion"] == "kopf.dev/v1"] == []
    assert "kopf.dev" not in {group for rule in all_rules(docs) for group in rule["apiGroups"]}
    args = operator_container(docs)["args"]
    assert not [a for a in args if a.startswith("--peering") or a == "--standalone"]
    assert args[-4:] == ["--shards=2", f"--shard-lease-namespace={NAMESPACE}", f"--shard-lease-prefix={RELEASE}",
                         "--shard-lease-duration=15"]


@pytest.mark.parametrize(("shards", "sets"), [(2, ()), (5, ("fullnameOverride=sessions", "shardLeaseDurationSeconds=30"))],
                         ids=["two", "five-renamed"])
def test_the_operator_reads_and_renews_exactly_the_leases_the_chart_grants(render, shards, sets):
    from types import SimpleNamespace

    from agent_sessions.cli.main import _peering, _shard_lease_namespace, build_parser
    from agent_sessions.handlers.sharding import ShardLeases

    docs = render(f"shards={shards}", f"replicas={shards + 1}", *sets)
    args = build_parser().parse_args(operator_container(docs)["args"])
    (role,) = shard_grants(docs, "Role")
    namespace = _shard_lease_namespace(args)
    leases = ShardLeases(SimpleNamespace(namespace=namespace), shards=args.shards, prefix=args.shard_lease_prefix,
                         identity="pod")
    assert role["rules"] == shard_lease_rules(leases.names) and len(leases.names) == shards
    assert namespace == role["metadata"]["namespace"] == NAMESPACE
    assert _peering(args) is None


def test_a_sharded_install_rolls_a_new_pod_in_before_an_old_one_leaves(render):
    deployment = one(render(*SHARDED), "Deployment", OPERATOR)
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


@pytest.mark.parametrize(
    ("overrides", "valid"),
    [({"shards": 2, "replicas": 2}, True), ({"shards": 2, "replicas": 3, "peering__enabled": False}, True),
     ({"shards": 0}, False), ({"shards": 1.5}, False), ({"shards": "2"}, False),
     ({"shardLeaseDurationSeconds": 0}, False), ({"replicas": 3, "shards": 1, "peering__enabled": False}, False)],
    ids=["as-many-replicas-as-shards", "sharded-without-peering", "zero-shards", "fractional-shards",
         "shards-as-a-string", "zero-lease-duration", "unsharded-replicas-without-peering"],
)
def test_sharding_values_are_checked_by_the_schema(overrides, valid):
    assert (schema_errors(**overrides) == []) is valid


@pytest.mark.parametrize(("sets", "in_message"), [
    (("shards=3", "replicas=2"), "replicas (2) must be at least shards (3)"),
    (("shards=2", "replicas=1"), "replicas (1) must be at least shards (2)"),
    (("shards=0",), "shards must be at least 1"),
], ids=["fewer-replicas-than-shards", "one-replica", "zero-shards"])
def test_the_template_refuses_a_shard_without_a_replica_even_without_schema_validation(helm, sets, in_message):
    args = [arg for s in sets for arg in ("--set", s)]
    result = run(helm, "template", RELEASE, str(CHART), "--skip-schema-validation", *args)
    assert result.returncode != 0 and in_message in result.stderr, result.stderr


def test_the_sharding_overlay_runs_what_the_chart_renders_with_two_shards(render, sharded_base_docs):
    chart, overlay = render(*SHARDED), sharded_base_docs
    validate_strictly(overlay)
    chart_deployment, overlay_deployment = one(chart, "Deployment", OPERATOR), one(overlay, "Deployment", OPERATOR)
    for key in ("replicas", "strategy", "selector"):
        assert chart_deployment["spec"][key] == overlay_deployment["spec"][key], key
    assert chart_deployment["spec"]["template"]["spec"] == overlay_deployment["spec"]["template"]["spec"]
    assert one(overlay, "ClusterRole", OPERATOR)["rules"] == one(chart, "ClusterRole", OPERATOR)["rules"]
    for kind in ("Role", "RoleBinding"):
        (chart_grant,), (overlay_grant,) = shard_grants(chart, kind), shard_grants(overlay, kind)
        assert chart_grant["metadata"]["name"] == overlay_grant["metadata"]["name"]
        assert chart_grant["metadata"]["namespace"] == overlay_grant["metadata"]["namespace"]
        for key in ("rules", "roleRef", "subjects"):
            assert chart_grant.get(key) == overlay_grant.get(key), (kind, key)
    assert [d for d in overlay if d["apiVersion"] == "kopf.dev/v1"] == []


# --- the operator and gateway Deployments ----------------------------------------------------


def deployments(names: list[str] | None = None) -> list[tuple[str, Callable]]:
    return [(name, lambda render, base_docs, sets=sets: render(*sets)) for name, sets in RENDERINGS.items()
            if names is None or name in names] + [("kustomize-base", lambda render, base_docs: base_docs)]


def hardened_pods() -> list[Any]:
    """(component, rendering) for every Deployment the chart and the base can install."""
    return [pytest.param(component, name, docs_of, id=f"{component}-{name}")
            for component, names in ((OPERATOR, None), (GATEWAY, GATEWAY_RENDERINGS))
            for name, docs_of in deployments(names)]


@pytest.mark.parametrize(("component", "name", "docs_of"), hardened_pods())
def test_pods_are_hardened(render, base_docs, component, name, docs_of):
    docs = docs_of(render, base_docs)
    pod = one(docs, "Deployment", component)["spec"]["template"]["spec"]
    container = the_container(docs, component)
    pod_sc, sc = pod["securityContext"], container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == 65532 and pod_sc["runAsGroup"] == 65532
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"} == sc["seccompProfile"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in sc and "hostNetwork" not in pod and "hostPID" not in pod
    # The operator and the gateway need their tokens; session pods get none by default (pod provider).
    assert pod["automountServiceAccountToken"] is True
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount", component)["metadata"]["name"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/etc/agent-sessions"]]["configMap"]["name"] == one(docs, "ConfigMap")["metadata"]["name"]
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])


@pytest.mark.parametrize(("name", "docs_of"), deployments(), ids=[n for n, _ in deployments()])
def test_liveness_and_readiness_probe_healthz_on_8080(render, base_docs, name, docs_of):
    container = operator_container(docs_of(render, base_docs))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert ports.get(get["port"], get["port"]) == 8080
    assert "--health-port=8080" in container["args"]


@pytest.mark.parametrize(("name", "docs_of"), deployments(), ids=[n for n, _ in deployments()])
def test_metrics_port_is_served_and_exposed(render, base_docs, name, docs_of):
    docs = docs_of(render, base_docs)
    container = operator_container(docs)
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    assert "--metrics-port=9090" in container["args"]
    service = one(docs, "Service", OPERATOR)
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    pod_labels = one(docs, "Deployment", OPERATOR)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_chart_default_and_kustomize_base_run_the_same_operator_pod(render, base_docs):
    chart, base = one(render(), "Deployment", OPERATOR), one(base_docs, "Deployment", OPERATOR)
    assert chart["metadata"]["namespace"] == base["metadata"]["namespace"] == NAMESPACE
    assert chart["spec"]["replicas"] == base["spec"]["replicas"] == 1
    assert chart["spec"]["strategy"] == base["spec"]["strategy"] == {"type": "Recreate"}
    assert chart["spec"]["selector"] == base["spec"]["selector"]
    assert chart["spec"]["template"]["spec"] == base["spec"]["template"]["spec"]


def test_default_operator_command_line(render):
    container = operator_container(render())
    assert container["image"] == "ghcr.io/agent-session-operator/agent-sessions:0.1.0"
    assert container["args"] == [
        "run",
        "--health-port=8080",
        "--metrics-port=9090",
        "--defaults=/etc/agent-sessions/defaults.yaml",
        "--log-format=json",
        "--pod-security-level=restricted",
        f"--runtime-key-secret={NAMESPACE}/{RELEASE}-runtime-key",
        "--pod-default-request=cpu=250m",
        "--pod-default-request=memory=512Mi",
        "--pod-default-limit=cpu=2",
        "--pod-default-limit=memory=4Gi",
        f"--session-network-policy={RELEASE}-session-runtime",
        f"--network-policy-peer-namespace={NAMESPACE}",
        f"--network-policy-peer-labels=app.kubernetes.io/component=gateway,app.kubernetes.io/instance={RELEASE},"
        f"app.kubernetes.io/name={RELEASE}",
        f"--network-policy-peer-labels=app.kubernetes.io/component=operator,app.kubernetes.io/instance={RELEASE},"
        f"app.kubernetes.io/name={RELEASE}",
        f"--peering={RELEASE}",
    ]
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]


@pytest.mark.parametrize(("name", "docs_of"), deployments(), ids=[n for n, _ in deployments()])
def test_the_operator_cli_parses_the_rendered_command_line(render, base_docs, name, docs_of):
    from agent_sessions.cli.main import build_parser

    docs = docs_of(render, base_docs)
    args = build_parser().parse_args(operator_container(docs)["args"])
    assert args.command == "run"
    assert (args.health_port, args.metrics_port, args.log_format) == (8080, 9090, "json")
    assert args.defaults == "/etc/agent-sessions/defaults.yaml"
    assert args.namespace == (WATCHED if name == "namespaced" else None)
    assert args.standalone is (name == "standalone")
    if name == "sharded":  # the shard Leases replace kopf peering
        assert (args.shards, args.peering, args.shard_lease_namespace) == (2, None, NAMESPACE)
        assert (args.shard_lease_prefix, args.shard_lease_duration) == (RELEASE, 15)
    elif not args.standalone:
        assert args.shards == 1 and args.peering == RELEASE


def test_namespaced_mode_passes_each_namespace(render):
    args = operator_container(render(*NAMESPACED_MODE))["args"]
    assert [a for a in args if a.startswith("--namespace")] == [f"--namespace={n}" for n in WATCHED]


def test_options_reach_the_command_line(render):
    docs = render("metrics.enabled=false", "logFormat=text", "extraArgs={--verbose}", "image.tag=dev")
    container = operator_container(docs)
    assert "--metrics-port=0" in container["args"] and "--log-format=text" in container["args"]
    assert container["args"][-1] == "--verbose"
    assert container["image"].endswith(":dev")
    assert of_kind(docs, "Service", OPERATOR) == []
    assert "metrics" not in {p["name"] for p in container["ports"]}


def test_more_than_one_replica_rolls_one_pod_at_a_time(render):
    deployment = one(render("replicas=2"), "Deployment", OPERATOR)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


@pytest.mark.parametrize("source", ["chart", "kustomize-base"])
def test_operator_defaults_are_empty_by_default(render, base_docs, source):
    docs = render() if source == "chart" else base_docs
    assert yaml.safe_load(one(docs, "ConfigMap")["data"]["defaults.yaml"]) == {}


def test_operator_defaults_value_becomes_the_defaults_file_and_restarts_the_pod(render):
    docs = render("operatorDefaults.lifecycle.idleTimeout=30m", "operatorDefaults.provider=pod")
    assert yaml.safe_load(one(docs, "ConfigMap")["data"]["defaults.yaml"]) == {
        "lifecycle": {"idleTimeout": "30m"}, "provider": "pod"
    }
    annotation = "checksum/defaults"
    for component in (OPERATOR, GATEWAY):
        changed = one(docs, "Deployment", component)["spec"]["template"]["metadata"]["annotations"][annotation]
        before = one(render(), "Deployment", component)["spec"]["template"]["metadata"]["annotations"][annotation]
        assert changed != before, component


# --- the gateway -----------------------------------------------------------------------------


def gateway_test_rbac() -> list[dict]:
    """GATEWAY_RBAC of tests/gateway/conftest.py: the RBAC the gateway's own tests run under.
    Imported as pytest imports it (`gateway.conftest`, rootdir tests/), whatever was collected."""
    tests = str(ROOT / "tests")
    added = tests not in sys.path
    if added:
        sys.path.insert(0, tests)
    try:
        return importlib.import_module("gateway.conftest").GATEWAY_RBAC
    finally:
        if added:
            sys.path.remove(tests)


def test_gateway_rbac_contract_is_what_the_gateway_tests_run_with():
    (role,) = [d for d in gateway_test_rbac() if d["kind"] == "ClusterRole"]
    assert role["rules"] == GATEWAY_RULES


def test_gateway_cluster_role_is_the_contract_in_chart_and_base(render, base_docs):
    chart_rules = one(render(), "ClusterRole", GATEWAY)["rules"]
    assert one(base_docs, "ClusterRole", GATEWAY)["rules"] == chart_rules == GATEWAY_RULES


@pytest.mark.parametrize("source", ["chart", "kustomize-base"])
def test_gateway_cluster_role_is_bound_to_the_gateways_own_service_account(render, base_docs, source):
    docs = render() if source == "chart" else base_docs
    binding, account = one(docs, "ClusterRoleBinding", GATEWAY), one(docs, "ServiceAccount", GATEWAY)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": one(docs, "ClusterRole", GATEWAY)["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": NAMESPACE}]
    assert account["metadata"]["namespace"] == NAMESPACE
    # Two identities: neither component holds the other's permissions.
    assert account["metadata"]["name"] != one(docs, "ServiceAccount", OPERATOR)["metadata"]["name"]
    for operator_binding in of_kind(docs, "ClusterRoleBinding", OPERATOR):
        assert operator_binding["subjects"] != binding["subjects"]


def test_namespaced_gateway_gets_only_the_review_rules_cluster_wide_and_sessions_per_namespace(render):
    docs = render(*NAMESPACED_MODE)
    account = one(docs, "ServiceAccount", GATEWAY)["metadata"]
    subjects = [{"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}]
    cluster_role, cluster_binding = one(docs, "ClusterRole", GATEWAY), one(docs, "ClusterRoleBinding", GATEWAY)
    assert cluster_role["rules"] == GATEWAY_AUTH_RULES
    assert cluster_binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert cluster_binding["subjects"] == subjects
    roles = {r["metadata"]["namespace"]: r for r in session_grants(docs, "Role", GATEWAY)}
    bindings = {b["metadata"]["namespace"]: b for b in session_grants(docs, "RoleBinding", GATEWAY)}
    assert sorted(roles) == sorted(bindings) == sorted(WATCHED)
    for namespace in WATCHED:
        assert roles[namespace]["rules"] == GATEWAY_SESSION_RULES
        assert bindings[namespace]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                  "name": roles[namespace]["metadata"]["name"]}
        assert bindings[namespace]["subjects"] == subjects
    # It serves (offers the console) exactly the watched namespaces: it may not list cluster-wide.
    gateway = one(docs, "Deployment", GATEWAY)["spec"]["template"]["spec"]["containers"][0]
    assert [a for a in gateway["args"] if a.startswith("--namespace=")] == [f"--namespace={n}" for n in WATCHED]


@pytest.mark.parametrize("name", ["cluster-wide", "namespaced"])
def test_gateway_disabled_installs_no_gateway_object_and_the_same_operator(render, name):
    sets = RENDERINGS[name]
    without, with_gateway = render(*sets, *NO_GATEWAY), render(*sets)
    assert of_component(without, GATEWAY) == []
    assert {d["kind"] for d in of_component(with_gateway, GATEWAY)} >= {
        "Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    # The same operator, except that the gateway is no longer a peer of the session NetworkPolicy.
    gateway_peer = "--network-policy-peer-labels=app.kubernetes.io/component=gateway,"
    args_with = operator_container(with_gateway)["args"]
    (dropped,) = [a for a in args_with if a.startswith(gateway_peer)]
    args_with.remove(dropped)
    assert not [a for a in operator_container(without)["args"] if a.startswith(gateway_peer)]
    assert of_component(without, OPERATOR) == of_component(with_gateway, OPERATOR)


@pytest.mark.parametrize(("name", "docs_of"), deployments(GATEWAY_RENDERINGS),
                         ids=[n for n, _ in deployments(GATEWAY_RENDERINGS)])
def test_gateway_probes_healthz_and_readyz_on_8081_and_serves_metrics_on_9091(render, base_docs, name, docs_of):
    container = gateway_container(docs_of(render, base_docs))
    assert container["ports"] == [{"name": "http", "containerPort": 8081, "protocol": "TCP"},
                                  {"name": "metrics", "containerPort": 9091, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert "--port=8081" in container["args"] and "--metrics-port=9091" in container["args"]


def test_default_gateway_command_line(render):
    container = gateway_container(render())
    assert container["image"] == operator_container(render())["image"]
    assert container["args"] == [
        "gateway",
        "--port=8081",
        "--metrics-port=9091",
        "--max-message-bytes=1048576",
        "--rate-limit=10",
        "--rate-burst=50",
        "--header-timeout-seconds=10",
        "--body-timeout-seconds=60",
        "--idle-timeout-seconds=75",
        "--websocket-idle-seconds=300",
        "--operator-defaults=/etc/agent-sessions/defaults.yaml",
        f"--runtime-key-secret={NAMESPACE}/{RELEASE}-runtime-key",
        "--log-level=INFO",
    ]


def gateway_options(docs: list[dict], tmp_path: Path):
    """The GatewayOptions the real `agent-sessions gateway` parser makes of the rendered command
    line, with the defaults file read from the rendered ConfigMap where the pod mounts it."""
    from agent_sessions.cli.main import build_parser
    from agent_sessions.gateway.cli import options_from_args

    deployment = one(docs, "Deployment", GATEWAY)
    pod, container = deployment["spec"]["template"]["spec"], gateway_container(docs)
    args = build_parser().parse_args(container["args"])
    assert args.command == "gateway" and args.func.__module__ == "agent_sessions.gateway.cli"
    assert args.kubeconfig is None  # in-cluster: the pod's own service account token
    # --operator-defaults names a file of the operator's defaults ConfigMap, as mounted in the pod.
    configmap = one(docs, "ConfigMap")
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in container["volumeMounts"]
                if volumes[m["name"]].get("configMap", {}).get("name") == configmap["metadata"]["name"]]
    path = Path(args.operator_defaults)
    assert mount["readOnly"] is True and path.parent == Path(mount["mountPath"])
    local = tmp_path / path.name
    local.write_text(configmap["data"][path.name])
    args.operator_defaults = str(local)
    return args, options_from_args(args)


@pytest.mark.parametrize(("name", "docs_of"), deployments(GATEWAY_RENDERINGS),
                         ids=[n for n, _ in deployments(GATEWAY_RENDERINGS)])
def test_the_gateway_cli_parses_the_rendered_command_line(render, base_docs, name, docs_of, tmp_path):
    args, options = gateway_options(docs_of(render, base_docs), tmp_path)
    assert (options.host, options.port, options.max_message_bytes) == ("0.0.0.0", 8081, 1024 * 1024)
    assert options.metrics_port == 9091
    assert (options.rate_limit_per_second, options.rate_limit_burst) == (10.0, 50)
    assert (options.header_timeout_seconds, options.body_timeout_seconds) == (10.0, 60.0)
    assert (options.idle_timeout_seconds, options.websocket_idle_seconds) == (75.0, 300.0)
    assert options.operator_defaults == {} and args.log_level == "INFO"


def test_gateway_values_reach_the_gateway_command_line(render, tmp_path):
    docs = render("gateway.maxMessageBytes=2048", "gateway.rateLimit.perSecond=2.5", "gateway.rateLimit.burst=5",
                  "gateway.logLevel=DEBUG", "gateway.extraArgs={--wake-timeout-seconds=300}",
                  "operatorDefaults.lifecycle.wakeOnMessage=false", "image.tag=dev")
    args, options = gateway_options(docs, tmp_path)
    assert (options.max_message_bytes, options.rate_limit_per_second, options.rate_limit_burst) == (2048, 2.5, 5)
    assert options.wake_timeout_seconds == 300.0 and args.log_level == "DEBUG"
    # Wake-on-message is resolved with the operator's own defaults.
    assert options.operator_defaults == {"lifecycle": {"wakeOnMessage": False}}
    assert gateway_container(docs)["image"].endswith(":dev")


def test_gateway_timeout_values_reach_the_gateway_command_line(render, tmp_path):
    docs = render("gateway.timeouts.headerSeconds=2.5", "gateway.timeouts.bodySeconds=30",
                  "gateway.timeouts.idleSeconds=120", "gateway.timeouts.websocketIdleSeconds=0")
    _, options = gateway_options(docs, tmp_path)
    assert (options.header_timeout_seconds, options.body_timeout_seconds) == (2.5, 30.0)
    assert (options.idle_timeout_seconds, options.websocket_idle_seconds) == (120.0, 0.0)


@pytest.mark.parametrize("key", ["headerSeconds", "bodySeconds", "idleSeconds"])
def test_gateway_connection_timeouts_must_be_positive(key):
    for zero in (0, "0", "0.0", -1):
        assert schema_errors(**{f"gateway__timeouts__{key}": zero}) != [], zero
    for fine in (2.5, "2.5", "0.5", 10):
        assert schema_errors(**{f"gateway__timeouts__{key}": fine}) == [], fine
    assert schema_errors(gateway__timeouts__websocketIdleSeconds=0) == []
    assert schema_errors(gateway__timeouts__websocketIdleSeconds=-1) != []


@pytest.mark.parametrize("source", ["chart", "kustomize-base"])
def test_gateway_service_sends_port_80_to_the_gateway_pods_only(render, base_docs, source):
    docs = render() if source == "chart" else base_docs
    service, _ = gateway_services(docs)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    selector = service["spec"]["selector"].items()
    assert selector <= one(docs, "Deployment", GATEWAY)["spec"]["template"]["metadata"]["labels"].items()
    assert not selector <= one(docs, "Deployment", OPERATOR)["spec"]["template"]["metadata"]["labels"].items()


def test_gateway_service_type_and_port_are_configurable(render):
    service, _ = gateway_services(render("gateway.service.type=LoadBalancer", "gateway.service.port=8443",
                                         r"gateway.service.annotations.example\.com/scheme=internal"))
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"][0] == {"name": "http", "port": 8443, "targetPort": "http", "protocol": "TCP"}
    assert service["metadata"]["annotations"] == {"example.com/scheme": "internal"}


@pytest.mark.parametrize("source", ["chart", "kustomize-base"])
def test_the_gateway_metrics_are_served_in_the_cluster_only_whatever_exposes_the_gateway(render, base_docs, source):
    docs = render("gateway.service.type=LoadBalancer") if source == "chart" else base_docs
    public, metrics = gateway_services(docs)
    assert [p["name"] for p in public["spec"]["ports"]] == ["http"]  # what an Ingress or a LoadBalancer exposes
    assert metrics["metadata"]["name"] == f"{RELEASE}-gateway-metrics"
    assert metrics["spec"]["type"] == "ClusterIP"
    assert metrics["spec"]["ports"] == [{"name": "metrics", "port": 9091, "targetPort": "metrics", "protocol": "TCP"}]
    assert metrics["spec"]["selector"] == public["spec"]["selector"]
    assert "--metrics-port=9091" in gateway_container(docs)["args"]
    if source == "chart":
        moved = render("gateway.metricsPort=9300")
        assert "--metrics-port=9300" in gateway_container(moved)["args"]
        assert gateway_services(moved)[1]["spec"]["ports"][0]["port"] == 9300
        assert schema_errors(gateway__metricsPort=0) != [] and schema_errors(gateway__metricsPort=70000) != []


def test_gateway_is_stateless_two_replicas_rolling_without_losing_capacity(render):
    deployment = one(render(), "Deployment", GATEWAY)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"  # a preference: one node still runs both
    assert spread["labelSelector"] == deployment["spec"]["selector"]
    assert one(render("gateway.replicas=5"), "Deployment", GATEWAY)["spec"]["replicas"] == 5


@pytest.mark.parametrize("source", ["chart", "kustomize-base"])
def test_gateway_disruption_budget_keeps_one_replica(render, base_docs, source):
    docs = render() if source == "chart" else base_docs
    budget = one(docs, "PodDisruptionBudget", GATEWAY)
    assert budget["spec"] == {"minAvailable": 1, "selector": one(docs, "Deployment", GATEWAY)["spec"]["selector"]}


@pytest.mark.parametrize("sets", [("gateway.replicas=1",), ("gateway.podDisruptionBudget.enabled=false",), NO_GATEWAY],
                         ids=["one-replica", "disabled", "no-gateway"])
def test_no_disruption_budget_that_would_block_drains_or_is_not_wanted(render, sets):
    assert of_kind(render(*sets), "PodDisruptionBudget") == []


def test_disruption_budget_may_be_a_percentage(render):
    budget = one(render("gateway.replicas=4", "gateway.podDisruptionBudget.minAvailable=50%"), "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == "50%"


def test_chart_default_and_kustomize_base_run_the_same_gateway(render, base_docs):
    chart, base = render(), base_docs
    chart_deployment, base_deployment = one(chart, "Deployment", GATEWAY), one(base, "Deployment", GATEWAY)
    assert chart_deployment["metadata"]["name"] == base_deployment["metadata"]["name"]
    assert chart_deployment["metadata"]["namespace"] == base_deployment["metadata"]["namespace"] == NAMESPACE
    for key in ("replicas", "strategy", "selector"):
        assert chart_deployment["spec"][key] == base_deployment["spec"][key], key
    assert chart_deployment["spec"]["template"]["spec"] == base_deployment["spec"]["template"]["spec"]
    for chart_service, base_service in zip(gateway_services(chart), gateway_services(base), strict=True):
        assert chart_service["spec"] == base_service["spec"]
        assert chart_service["metadata"]["name"] == base_service["metadata"]["name"]
    assert one(chart, "PodDisruptionBudget", GATEWAY)["spec"] == one(base, "PodDisruptionBudget", GATEWAY)["spec"]
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "PodDisruptionBudget"):
        assert one(chart, kind, GATEWAY)["metadata"]["name"] == one(base, kind, GATEWAY)["metadata"]["name"], kind
    assert one(chart, "ClusterRoleBinding", GATEWAY)["subjects"] == one(base, "ClusterRoleBinding", GATEWAY)["subjects"]
    chart_kinds = sorted(d["kind"] for d in of_component(chart, GATEWAY))
    assert chart_kinds == sorted(d["kind"] for d in of_component(base, GATEWAY))


# --- the session NetworkPolicy ---------------------------------------------------------------


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against a set of labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {"Exists": key in labels, "DoesNotExist": key not in labels,
                   "In": labels.get(key) in values, "NotIn": key not in labels or labels[key] not in values}[operator]
        if not matched:
            return False
    return True


def admitted(policy: dict, namespace_labels: dict[str, str], pod_labels: dict[str, str], port: int) -> bool:
    """Whether `policy` lets a pod (its labels, its namespace's labels) connect to `port` of the
    pods it selects (one policy: Kubernetes ORs policies, so alone it is the whole allow list)."""
    for rule in policy["spec"]["ingress"]:
        if not any(p.get("protocol", "TCP") == "TCP" and p["port"] == port for p in rule.get("ports", [])):
            continue
        for peer in rule["from"]:
            assert set(peer) == {"namespaceSelector", "podSelector"}, peer  # never an ipBlock or a bare peer
            if selects(peer["namespaceSelector"], namespace_labels) and selects(peer["podSelector"], pod_labels):
                return True
    return False


def session_pod() -> dict:
    """A session pod as the pod provider builds it."""
    from agent_sessions.providers import SessionRef
    from agent_sessions.providers.pod import build_pod

    config = {"provider": "pod", "agent": {"image": "example.com/agent:1", "command": ["agent"], "protocol": "acp"}}
    return build_pod(SessionRef(namespace=WATCHED[0], name="demo", uid="0b6c3a1e-8f5d-4c1b-9a77-3f2f1e0d9c8b",
                                config=config), config)


@pytest.mark.parametrize(("sets", "namespaces"), [
    (NAMESPACED_MODE, WATCHED),
    (PROTECTED_CLUSTER_WIDE, WATCHED),
    ((), []),
    (("networkPolicy.enabled=false", *NAMESPACED_MODE), []),
], ids=["namespaced", "cluster-wide-with-namespaces", "cluster-wide-default", "disabled"])
def test_a_session_network_policy_in_each_namespace_where_sessions_run(render, sets, namespaces):
    policies = of_kind(render(*sets), "NetworkPolicy")
    assert sorted(p["metadata"]["namespace"] for p in policies) == sorted(namespaces)


def test_network_policy_selects_session_pods_and_their_runtime_port(render):
    pod = session_pod()
    (container,) = pod["spec"]["containers"]
    assert {"name": "runtime", "containerPort": RUNTIME_PORT, "protocol": "TCP"} in container["ports"]
    for policy in of_kind(render(*NAMESPACED_MODE), "NetworkPolicy"):
        assert selects(policy["spec"]["podSelector"], pod["metadata"]["labels"])
        assert policy["spec"]["podSelector"] == {"matchExpressions": [{"key": SESSION_LABEL, "operator": "Exists"}]}
        assert policy["spec"]["policyTypes"] == ["Ingress"]  # the runtime may still call out (model APIs)
        (rule,) = policy["spec"]["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": RUNTIME_PORT}]
        # The operator's and the gateway's own pods are no session pods.
        for component in (OPERATOR, GATEWAY):
            labels = one(render(*NAMESPACED_MODE), "Deployment", component)["spec"]["template"]["metadata"]["labels"]
            assert not selects(policy["spec"]["podSelector"], labels)


@pytest.mark.parametrize(("sets", "allowed"), [
    (NAMESPACED_MODE, {OPERATOR, GATEWAY}),
    (PROTECTED_CLUSTER_WIDE, {OPERATOR, GATEWAY}),
    ((*NAMESPACED_MODE, *NO_GATEWAY), {OPERATOR}),
], ids=["namespaced", "cluster-wide-with-namespaces", "no-gateway"])
def test_only_the_gateway_and_the_operator_reach_the_runtime(render, sets, allowed):
    docs = render(*sets)
    release_namespace = {"kubernetes.io/metadata.name": NAMESPACE}
    other_namespace = {"kubernetes.io/metadata.name": WATCHED[0]}
    pods = {component: one(docs, "Deployment", component)["spec"]["template"]["metadata"]["labels"]
            for component in (OPERATOR, GATEWAY) if of_kind(docs, "Deployment", component)}
    # podLabels added by users do not widen it: the peers are the Deployments' selector labels.
    assert all(selects(one(docs, "Deployment", component)["spec"]["selector"], labels)
               for component, labels in pods.items())
    for policy in of_kind(docs, "NetworkPolicy"):
        reaching = {component for component, labels in pods.items()
                    if admitted(policy, release_namespace, labels, RUNTIME_PORT)}
        assert reaching == allowed
        for labels in pods.values():
            # Not on another port; not a look-alike pod in the sessions' namespace; not another session.
            assert not admitted(policy, release_namespace, labels, 9090)
            assert not admitted(policy, other_namespace, labels, RUNTIME_PORT)
        assert not admitted(policy, other_namespace, session_pod()["metadata"]["labels"], RUNTIME_PORT)
        assert not admitted(policy, release_namespace, {"app": "curl"}, RUNTIME_PORT)


def operators_network_policy(docs: list[dict], namespace: str) -> dict | None:
    """The NetworkPolicy the operator, started with the rendered command line, keeps in
    `namespace` (its own builder; None when it keeps none)."""
    from agent_sessions.cli.main import build_parser, session_network_policy
    from agent_sessions.providers.pod.constants import RUNTIME_PORT as PROVIDER_RUNTIME_PORT
    from agent_sessions.providers.pod.network_policy_spec import build_network_policy

    policy = session_network_policy(build_parser().parse_args(operator_container(docs)["args"]))
    return None if policy is None else build_network_policy(policy, namespace, runtime_port=PROVIDER_RUNTIME_PORT)


@pytest.mark.parametrize("sets", [NAMESPACED_MODE, PROTECTED_CLUSTER_WIDE, (*NAMESPACED_MODE, *NO_GATEWAY),
                                  ("fullnameOverride=sessions", *NAMESPACED_MODE)],
                         ids=["namespaced", "cluster-wide-with-namespaces", "no-gateway", "other-fullname"])
def test_the_operator_keeps_the_charts_network_policy(render, sets):
    docs = render(*sets)
    policies = of_kind(docs, "NetworkPolicy")
    assert policies
    for chart in policies:
        operator = operators_network_policy(docs, chart["metadata"]["namespace"])
        assert operator["spec"] == chart["spec"]
        assert operator["metadata"]["name"] == chart["metadata"]["name"]
        assert operator["metadata"]["namespace"] == chart["metadata"]["namespace"]
        validate_strictly([operator])


def test_a_cluster_wide_install_protects_every_namespace_through_the_operator(render):
    docs = render()
    assert of_kind(docs, "NetworkPolicy") == []  # the chart cannot know the namespaces ...
    policy = operators_network_policy(docs, "any-namespace")  # ... the operator keeps it wherever sessions run
    assert policy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "agent-session-operator"
    (chart,) = of_kind(render("networkPolicy.namespaces={any-namespace}"), "NetworkPolicy")
    assert policy["spec"] == chart["spec"]
    assert NETWORK_POLICY_RULE in one(docs, "ClusterRole", OPERATOR)["rules"]


NETWORK_POLICY_RULE = SESSION_RULES[-1]


@pytest.mark.parametrize("sets", [(), NAMESPACED_MODE], ids=["cluster-wide", "namespaced"])
def test_without_network_policy_the_operator_keeps_none_and_may_not(render, sets):
    docs = render("networkPolicy.enabled=false", *sets)
    assert operators_network_policy(docs, WATCHED[0]) is None
    assert not [a for a in operator_container(docs)["args"] if "network-policy" in a]
    for role in of_kind(docs, "ClusterRole", OPERATOR) + session_grants(docs, "Role", OPERATOR):
        assert NETWORK_POLICY_RULE not in role["rules"]
        assert [r for r in role["rules"] if r in SESSION_RULES] == SESSION_RULES[:-1]


def test_kustomize_example_network_policy_is_the_charts(render, kubectl):
    (example,) = load_all((BASE / "examples" / "session-networkpolicy.yaml").read_text())
    (chart,) = of_kind(render("networkPolicy.namespaces={team-a}"), "NetworkPolicy")
    assert "namespace" not in example["metadata"]  # `kubectl apply -n <namespace>` places it
    assert example["spec"] == chart["spec"]
    assert example["metadata"]["name"] == chart["metadata"]["name"]
    assert example["metadata"]["labels"].items() <= chart["metadata"]["labels"].items()
    validate_strictly([example])


# --- container image recipe ------------------------------------------------------------------


def dockerfile_stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        line = line.strip()
        if line.startswith("FROM "):
            stages.append([])
        if stages and line and not line.startswith("#"):
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_python_311_slim_non_root():
    text = (ROOT / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    build, final = dockerfile_stages()
    assert build[0] == "FROM ${PYTHON_IMAGE} AS build" and final[0] == "FROM ${PYTHON_IMAGE}"
    assert "USER 65532:65532" in final
    assert final[-2:] == ['ENTRYPOINT ["agent-sessions"]', 'CMD ["run"]']
    assert any("--requirement constraints.txt" in line for line in build)
    assert any("pip check" in line for line in build)


def test_final_image_stage_installs_no_build_tools():
    final = " ".join(dockerfile_stages()[-1])
    for tool in ("apt-get", "apk ", "gcc", "build-essential", "pip install", "COPY . "):
        assert tool not in final


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies():
    lines = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    copied = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied.update(p.rstrip("/") for p in line.split()[1:-1])
    assert copied == allowed


def test_constraints_pin_every_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    normalize = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731 (PEP 503)
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[normalize(name)] = version
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = normalize(requirement.name)
        assert name in pins, f"{name} is not pinned: run scripts/lock-requirements.sh"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} violates {requirement}"
    extras = [*project["optional-dependencies"]["test"], *project["optional-dependencies"]["dev"]]
    development_only = {normalize(Requirement(d).name) for d in extras} - {"agent-session-operator"}
    assert not development_only & set(pins), "test and dev dependencies do not belong in the image"


# --- make e2e without Docker -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fake_docker", "missing"),
    [(None, "docker not found, kind not found"), ("exit 1", "no reachable Docker daemon, kind not found")],
    ids=["no-docker", "no-daemon"],
)
def test_e2e_skips_cleanly_without_docker_and_kind(tmp_path, fake_docker, missing):
    if fake_docker:
        docker = tmp_path / "docker"
        docker.write_text(f"#!/bin/sh\n{fake_docker}\n")
        docker.chmod(0o755)
    result = subprocess.run(["/bin/bash", str(ROOT / "tests" / "e2e" / "run.sh")], capture_output=True, text=True,
                            env={"PATH": str(tmp_path)}, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"e2e skipped: {missing} (needs Docker and kind)"
