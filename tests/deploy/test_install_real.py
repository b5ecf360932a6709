"""The install artefacts on a real kube-apiserver: CRDs, the Helm chart, the kustomize base,
and the validation corpus and samples (DESIGN.md §10: where the embedded API and the real
server disagree, the embedded API is wrong).

Cluster-wide leftovers are avoided: the chart goes into its own namespace under its own release
name and is uninstalled; the kustomize base is deleted again, except its CRDs, which other tests
sharing this control plane may be using (deleting a CRD deletes every object of its kind).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from agent_sessions.dev.object_store import ApiError as EmbeddedApiError
from agent_sessions.dev.strict_api import running_api
from support.cluster.rest import ApiError, RestClient
from support.embedded import CRDS
from support.tools import ROOT, find_tool

pytestmark = pytest.mark.realcluster

CRDS_DIR = ROOT / "crds"
CHART = ROOT / "charts" / "agent-session-operator"
BASE = ROOT / "manifests" / "base"
INVALID = sorted((ROOT / "tests" / "api" / "invalid").glob("*.yaml"))
SAMPLES = sorted((ROOT / "manifests" / "samples").glob("*.yaml"))
OUR_CRDS = ("agentsessions.agentsession.dev", "sessiontemplates.agentsession.dev")

HELM_RELEASE = "install-real"
HELM_NAMESPACE = "install-real-helm"
CORPUS_NAMESPACE = "install-real-corpus"


def run(argv: list[str], kubeconfig: Path, *, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*argv, "--kubeconfig", str(kubeconfig)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def condition(obj: dict, kind: str) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return cond.get("status")
    return None


def established(api: RestClient, names: tuple[str, ...] | list[str]) -> bool:
    crds = [api.get("customresourcedefinitions", None, name) for name in names]
    return all(crd and condition(crd, "Established") == "True"
               and condition(crd, "NamesAccepted") == "True" for crd in crds)


def cel_rules(schema: dict) -> list[str]:
    """Every ``x-kubernetes-validations`` rule in a schema, depth first."""
    rules = [r["rule"] for r in schema.get("x-kubernetes-validations", ())]
    children = list((schema.get("properties") or {}).values())
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            children.append(schema[key])
    for child in children:
        rules += cel_rules(child)
    return rules


def object_name(api: RestClient, obj: dict, namespace: str | None = None) -> tuple[str, str | None, str]:
    """(kind, namespace or None for cluster-scoped objects, name) of a rendered object."""
    resource = api.resource_for(obj["apiVersion"], obj["kind"])
    ns = (obj["metadata"].get("namespace") or namespace) if resource.namespaced else None
    return obj["kind"], ns, obj["metadata"]["name"]


def present(api: RestClient, obj: dict, namespace: str | None = None) -> bool:
    kind, ns, name = object_name(api, obj, namespace)
    return api.get(api.resource_for(obj["apiVersion"], kind), ns, name) is not None


def missing_objects(api: RestClient, objects: list[dict], namespace: str | None = None) -> list[str]:
    """The rendered objects the server does not have (``kind/namespace/name``)."""
    return ["/".join(x or "-" for x in object_name(api, o, namespace))
            for o in objects if not present(api, o, namespace)]


def remaining_objects(api: RestClient, objects: list[dict], namespace: str | None = None) -> list[str]:
    """The rendered objects the server still has."""
    return ["/".join(x or "-" for x in object_name(api, o, namespace))
            for o in objects if present(api, o, namespace)]


@pytest.fixture(scope="module")
def kubectl() -> str:
    return find_tool("kubectl")


@pytest.fixture(scope="module")
def crds_applied(control_plane, admin_kubeconfig, kubectl) -> subprocess.CompletedProcess:
    """`kubectl apply -f crds/`, as the README documents it, once per module."""
    return run([kubectl, "apply", "-f", str(CRDS_DIR)], admin_kubeconfig)


# --- 1. the CRDs ----------------------------------------------------------------------------

def test_crds_are_accepted_named_and_established_and_every_cel_rule_compiles(crds_applied, real_api):
    # A CEL rule that does not compile (e.g. size() on an object) fails the whole apply.
    assert crds_applied.returncode == 0, crds_applied.stderr
    assert "warning" not in crds_applied.stderr.lower(), crds_applied.stderr
    real_api.wait_for(lambda: established(real_api, OUR_CRDS), timeout=30)
    for name in OUR_CRDS:
        crd = real_api.get("customresourcedefinitions", None, name)
        served = [cel_rules(v["schema"]["openAPIV3Schema"]) for v in crd["spec"]["versions"]]
        local = cel_rules(next(d for p in CRDS_DIR.glob("*.yaml") for d in documents(p.read_text())
                               if d["metadata"]["name"] == name)["spec"]["versions"][0]
                          ["schema"]["openAPIV3Schema"])
        assert served[0] == local != [], f"{name}: the server holds other CEL rules than crds/"
        assert condition(crd, "NonStructuralSchema") is None
        assert crd["status"]["acceptedNames"]["kind"] == crd["spec"]["names"]["kind"]


def test_crds_apply_server_side_too_as_the_chart_readme_documents(control_plane, admin_kubeconfig, kubectl,
                                                               crds_applied):
    result = run([kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds")],
                 admin_kubeconfig)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr


# --- 2. the Helm chart ----------------------------------------------------------------------

def test_helm_install_creates_every_rendered_object_and_uninstalls(control_plane, admin_kubeconfig, helm,
                                                                  real_api):
    install = run([helm, "install", HELM_RELEASE, str(CHART), "--namespace", HELM_NAMESPACE,
                   "--create-namespace"], admin_kubeconfig, timeout=180)
    try:
        assert install.returncode == 0, install.stderr
        manifest = run([helm, "get", "manifest", HELM_RELEASE, "--namespace", HELM_NAMESPACE],
                       admin_kubeconfig)
        assert manifest.returncode == 0, manifest.stderr
        objects = documents(manifest.stdout)
        kinds = {o["kind"] for o in objects}
        assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= kinds
        assert missing_objects(real_api, objects, HELM_NAMESPACE) == []
        crd_names = [d["metadata"]["name"] for p in sorted((CHART / "crds").glob("*.yaml"))
                     for d in documents(p.read_text())]
        real_api.wait_for(lambda: established(real_api, crd_names), timeout=30)
    finally:
        uninstall = run([helm, "uninstall", HELM_RELEASE, "--namespace", HELM_NAMESPACE, "--wait"],
                        admin_kubeconfig, timeout=180)
        if real_api.get("namespaces", None, HELM_NAMESPACE) is not None:
            real_api.delete("namespaces", None, HELM_NAMESPACE)
    assert uninstall.returncode == 0, uninstall.stderr
    assert remaining_objects(real_api, objects, HELM_NAMESPACE) == []


# --- 3. the kustomize base ------------------------------------------------------------------

def test_kustomize_base_applied_twice_as_documented_creates_every_object(control_plane, admin_kubeconfig,
                                                                       kubectl, real_api):
    rendered = run([kubectl, "kustomize", str(BASE)], admin_kubeconfig)
    assert rendered.returncode == 0, rendered.stderr
    objects = documents(rendered.stdout)
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    others = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    try:
        first = run([kubectl, "apply", "-k", str(BASE)], admin_kubeconfig)
        # manifests/base/README.md: on a fresh cluster the first run may refuse the peering
        # object (its CRD is in the same batch); nothing else may fail.
        if first.returncode != 0:
            errors = [line for line in first.stderr.splitlines() if line.startswith("error:")]
            assert errors and all('no matches for kind "ClusterKopfPeering"' in line
                                  for line in errors), first.stderr
            assert "ensure CRDs are installed first" in first.stderr, first.stderr
        wait = run([kubectl, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
                   admin_kubeconfig)
        assert wait.returncode == 0, wait.stderr
        second = run([kubectl, "apply", "-k", str(BASE)], admin_kubeconfig)
        assert second.returncode == 0, second.stderr
        assert missing_objects(real_api, objects) == []
    finally:
        # `kubectl delete -k` without the CRDs: they may be shared with other tests here.
        delete = subprocess.run(
            [kubectl, "delete", "--kubeconfig", str(admin_kubeconfig), "--wait", "--ignore-not-found",
             "--timeout=120s", "-f", "-"],
            input=yaml.safe_dump_all(others), capture_output=True, text=True, timeout=180)
    assert delete.returncode == 0, delete.stderr
    assert remaining_objects(real_api, others) == []
    assert established(real_api, [c["metadata"]["name"] for c in crds])


# --- 4. the validation corpus and the samples -----------------------------------------------

@pytest.fixture(scope="module")
def corpus_namespace(real_api_module: RestClient, crds_applied) -> str:
    assert crds_applied.returncode == 0, crds_applied.stderr
    real_api_module.wait_for(lambda: established(real_api_module, OUR_CRDS), timeout=30)
    if real_api_module.get("namespaces", None, CORPUS_NAMESPACE) is None:
        real_api_module.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": CORPUS_NAMESPACE}})
    yield CORPUS_NAMESPACE
    real_api_module.delete("namespaces", None, CORPUS_NAMESPACE)


@pytest.fixture(scope="module")
def real_api_module(control_plane) -> RestClient:
    client = control_plane.client("admin")
    yield client
    client.close()


def dry_run_create(api: RestClient, obj: dict, namespace: str) -> dict:
    """POST with ``dryRun=All`` and ``fieldValidation=Strict`` (kubectl's default), to the
    group/version the manifest names, whether or not it is served."""
    obj = {**obj, "metadata": {**obj.get("metadata", {}), "namespace": namespace}}
    plural = {"AgentSession": "agentsessions", "SessionTemplate": "sessiontemplates"}[obj["kind"]]
    return api.request("POST", f"/apis/{obj['apiVersion']}/namespaces/{namespace}/{plural}",
                       body=obj, query={"dryRun": "All", "fieldValidation": "Strict"})


def expectation(path: Path) -> str:
    match = re.search(r"^# expect: (.+)$", path.read_text(), re.MULTILINE)
    assert match, f"{path.name} has no '# expect:' line"
    return match.group(1)


FIELD_PATH = re.compile(r"^((?:metadata|spec|status)(?:\.[A-Za-z0-9]+|\[\d+\])*): (.+)$")


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_is_accepted_by_the_real_server(corpus_namespace, real_api_module, path):
    for obj in documents(path.read_text()):
        dry_run_create(real_api_module, obj, corpus_namespace)


@pytest.fixture(scope="module")
def embedded():
    with running_api(crds=CRDS) as api:
        api.create("namespaces", {"metadata": {"name": CORPUS_NAMESPACE}})
        yield api


def embedded_rejection(api, obj: dict) -> EmbeddedApiError:
    plural = {"AgentSession": "agentsessions", "SessionTemplate": "sessiontemplates"}[obj["kind"]]
    namespace = obj["metadata"]["namespace"]
    with pytest.raises(EmbeddedApiError) as rejected:  # the same call: strict field validation, dry run
        api.store.create(api.resource(plural), namespace, obj, field_validation="Strict", dry_run=True)
    return rejected.value


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_is_rejected_by_the_real_server_word_for_word_as_by_the_embedded_api(
        corpus_namespace, real_api_module, embedded, path):
    """Same verdict, same words: the real server's rejection (message and causes) equals the
    embedded API's, and holds the corpus's expected text. Only a version nobody serves differs
    in kind — the real server has no such endpoint (404), which is not a validation error."""
    obj = yaml.safe_load(path.read_text())
    expected = expectation(path)
    with pytest.raises(ApiError) as rejected:
        dry_run_create(real_api_module, obj, corpus_namespace)
    error = rejected.value
    if expected == "apiVersion":
        assert error.code == 404
        group, version = obj["apiVersion"].split("/")
        served = real_api_module.request("GET", f"/apis/{group}")["versions"]
        assert version not in [v["version"] for v in served]
        return
    assert error.code in (400, 422), error
    assert expected in error.message, error.message
    ours = embedded_rejection(embedded, {**obj, "metadata": {**obj.get("metadata", {}), "namespace": corpus_namespace}})
    assert (ours.code, ours.message) == (error.code, error.message)
    causes = (error.status.get("details") or {}).get("causes")
    assert (ours.details or {}).get("causes") == causes
