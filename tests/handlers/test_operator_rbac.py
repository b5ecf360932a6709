"""The operator works with exactly the RBAC its install grants — nothing more, nothing less.

The install is rendered with the real tools (`helm template` of the chart, cluster-wide and
namespaced; `kubectl kustomize manifests/base`), its Roles, ClusterRoles and bindings become the
embedded API's RBAC authorizer — or are applied to a real kube-apiserver, whose RBAC then decides
— and the operator runs with the service account's token and the peering its Deployment is
started with. Then:

* a full session lifecycle converges with not a single 401 or 403 (the rules are sufficient);
* with any one verb taken out of the chart's ClusterRole (or, namespaced, its Role), the same
  lifecycle hits a 403 or does not converge (the rules are minimal: every granted verb is used).

kopf peering runs as installed (the peering CRDs and objects are applied), so its keep-alives
are authorized too. The embedded API enforces OwnerReferencesPermissionEnforcement, as hardened
clusters and OpenShift do: that is what `agentsessions/finalizers: update` is granted for.

Without helm/kubectl these tests skip on a workstation and fail in CI (CI=true), as
tests/deploy/test_install.py does.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_sessions.api import constants as c
from agent_sessions.cli.main import build_parser, session_network_policy
from agent_sessions.dev.authorization import RBACAuthorizer, service_account_user
from agent_sessions.dev.fake_kubelet import FakeKubelet
from agent_sessions.dev.strict_api import RecordedRequest, StrictKubernetesAPI, running_api
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.settings import OperatorOptions
from support.backends import RealCluster
from support.cluster.real_api import RealAPI
from support.tools import find_tool, locate_tool

from support.embedded import CRDS
from support.sessions import IMAGE, pods_of, session, template
from support.waits import TIMEOUT, phase_is, ready, wait_until

TIER = "embedded"  # starts operators against the embedded API in the test body

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "agent-session-operator"
BASE = ROOT / "manifests" / "base"
RELEASE, INSTALL_NAMESPACE = "agent-session-operator", "agent-sessions-system"
PEERING_CRDS = [d for d in yaml.safe_load_all((CHART / "crds" / "kopf-peerings.yaml").read_text()) if d]
TOKEN = "agent-session-operator-token"
SESSION, TEMPLATE, SECRET = "lifecycle", "team", "agent-credentials"
REFUSAL_TIMEOUT = 5.0
"""Per lifecycle step, when a verb is missing: the first 403 usually comes within milliseconds."""



# --- the install, rendered --------------------------------------------------------------------




def _output(*cmd: str) -> list[dict]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def _chart(helm: str, *sets: str) -> tuple[dict, ...]:
    args = [arg for s in sets for arg in ("--set", s)]
    return tuple(_output(helm, "template", RELEASE, str(CHART), "--namespace", INSTALL_NAMESPACE, *args))


@functools.cache
def _base(kubectl: str) -> tuple[dict, ...]:
    return tuple(_output(kubectl, "kustomize", str(BASE)))


@dataclass(frozen=True)
class Install:
    """What an install puts in the cluster that matters here: RBAC, the service account,
    the peering objects, and how its Deployment starts the operator."""

    docs: tuple[dict, ...]

    def of_kind(self, *kinds: str) -> list[dict]:
        """The operator's objects of these kinds (the gateway's own are tested in tests/gateway)."""
        return [d for d in self.docs if d["kind"] in kinds
                and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "gateway"]

    @property
    def user(self) -> tuple[str, list[str]]:
        (account,) = self.of_kind("ServiceAccount")
        return service_account_user(account["metadata"]["namespace"], account["metadata"]["name"])

    @property
    def options(self) -> OperatorOptions:
        (deployment,) = self.of_kind("Deployment")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        args = build_parser().parse_args(container["args"])
        # The session NetworkPolicy as the install keeps it, re-read at every pod creation (TTL 0)
        # so that the lifecycle's resume restores the policy it finds edited (get, create, patch).
        return OperatorOptions(namespaces=tuple(args.namespace or ()),
                               peering=None if args.standalone else args.peering,
                               session_network_policy=session_network_policy(args),
                               network_policy_recheck_seconds=0,
                               runtime_key_secret=args.runtime_key_secret)

    @property
    def session_namespace(self) -> str:
        return self.options.namespaces[0] if self.options.namespaces else "default"

    @property
    def role(self) -> dict:
        """The operator's one ClusterRole, or its Role (namespaced mode, one namespace); not the
        Role of the runtime key Secret (read, and created on first start, in the install namespace)."""
        (role,) = [r for r in self.of_kind("ClusterRole", "Role") if not r["metadata"]["name"].endswith("-runtime-key")]
        return role

    def without(self, rule_index: int, verb: str) -> Install:
        """This install with one verb taken out of rule `rule_index` of its role."""
        reduced = Install(copy.deepcopy(self.docs))
        role = reduced.role
        rule = role["rules"][rule_index]
        rule["verbs"] = [v for v in rule["verbs"] if v != verb]
        if not rule["verbs"]:
            del role["rules"][rule_index]
        return reduced


NAMESPACED = ("watchNamespaces={team-a}",)
INSTALLS: dict[str, Callable[[], Install]] = {
    "chart-cluster-wide": lambda: Install(_chart(find_tool("helm"))),
    "chart-namespaced": lambda: Install(_chart(find_tool("helm"), *NAMESPACED)),
    "kustomize-base": lambda: Install(_base(find_tool("kubectl"))),
}
"""The base's ClusterRole is the chart's (tests/deploy/test_install.py), so the minimality test
takes the chart's two modes only."""


# --- the emulated cluster with the install applied --------------------------------------------


@contextlib.contextmanager
def cluster(install: Install) -> Iterator[StrictKubernetesAPI]:
    """The embedded API enforcing the install's RBAC for its service account's token, with the
    CRDs and peering objects the install applies and what the lifecycle's session refers to."""
    authorizer = RBACAuthorizer.from_manifests(install.docs)
    with running_api(crds=CRDS + PEERING_CRDS, tokens={TOKEN: install.user}, authorizer=authorizer) as api:
        namespace = install.session_namespace
        for needed in (namespace, INSTALL_NAMESPACE):  # the runtime key Secret goes to the install's
            if api.get("namespaces", None, needed) is None:
                api.create("namespaces", {"metadata": {"name": needed}})
        for peering in install.of_kind("ClusterKopfPeering", "KopfPeering"):
            api.create(peering["kind"], peering)
        api.create("secrets", {"metadata": {"name": SECRET, "namespace": namespace},
                               "stringData": {"token": "s3cr3t"}})
        secret_env = {"name": "AGENT_TOKEN", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "token"}}}
        api.create(c.TEMPLATE_PLURAL, template(TEMPLATE, namespace, agent={
            "image": IMAGE, "command": ["agent-sessions", "demo-agent"], "env": [secret_env]}))
        with FakeKubelet(api):
            yield api


RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def _served(admin: Any, crd: dict) -> bool:
    version = crd["spec"]["versions"][0]["name"]
    try:
        admin.resource_for(f"{crd['spec']['group']}/{version}", crd["spec"]["names"]["kind"])
    except Exception:  # noqa: BLE001 (not served yet)
        return False
    return True


@contextlib.contextmanager
def real_cluster_of(install: Install, real: RealCluster) -> Iterator[RealAPI]:
    """The real kube-apiserver with the install's service account, RBAC and peering applied; the
    operator authenticates with a token the apiserver issued for that service account."""
    admin = real.plane.client("admin")
    namespaces = {d["metadata"]["namespace"] for d in install.of_kind(*RBAC_KINDS) if d["metadata"].get("namespace")}
    for namespace in namespaces | {install.session_namespace}:
        if admin.get("namespaces", None, namespace) is None:
            admin.create("namespaces", {"metadata": {"name": namespace}})
    for crd in PEERING_CRDS:
        if admin.get("customresourcedefinitions", None, crd["metadata"]["name"]) is None:
            admin.create("customresourcedefinitions", crd)
    admin.wait_for(lambda: all(_served(admin, crd) for crd in PEERING_CRDS), timeout=30)
    created = [(admin.resource_for(d["apiVersion"], d["kind"]), admin.create(admin.resource_for(d["apiVersion"], d["kind"]), d))
               for d in (*install.of_kind(*RBAC_KINDS), *install.of_kind("ClusterKopfPeering", "KopfPeering"))]
    (account,) = install.of_kind("ServiceAccount")
    meta = account["metadata"]
    token = admin.request("POST", f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{meta['name']}/token",
                          body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                "spec": {"expirationSeconds": 3600}})["status"]["token"]
    real.ensure_crds()
    api = RealAPI(real.plane, real.proxy, real.node, identity=(install.user[0], token))
    namespace = install.session_namespace
    try:
        api.create("secrets", {"metadata": {"name": SECRET, "namespace": namespace}, "stringData": {"token": "s3cr3t"}})
        secret_env = {"name": "AGENT_TOKEN", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "token"}}}
        api.create(c.TEMPLATE_PLURAL, template(TEMPLATE, namespace, agent={
            "image": IMAGE, "command": ["agent-sessions", "demo-agent"], "env": [secret_env]}))
        yield api
    finally:
        api.reset_namespace(namespace)
        for policy in admin.list("networkpolicies", namespace):  # the operator's, kept in the namespace
            api._ignore_missing(lambda m=policy["metadata"]: admin.delete("networkpolicies", namespace, m["name"]))
        for resource, obj in reversed(created):
            meta = obj["metadata"]
            api._ignore_missing(lambda r=resource, m=meta: admin.delete(r, m.get("namespace"), m["name"]))
        api.close()
        admin.close()


@contextlib.contextmanager
def operator_of(install: Install, api: StrictKubernetesAPI, tmp_path: Path) -> Iterator[OperatorThread]:
    token = TOKEN if isinstance(api, StrictKubernetesAPI) else None  # the real API: the issued token
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", install.session_namespace, token=token)
    operator = OperatorThread(install.options, kubeconfig=str(kubeconfig)).start()
    try:
        yield operator
    finally:
        operator.stop()


# --- the lifecycle ----------------------------------------------------------------------------


def _session(api: StrictKubernetesAPI, namespace: str) -> dict | None:
    return api.get(c.SESSION_PLURAL, namespace, SESSION)


def _running(api: StrictKubernetesAPI, namespace: str) -> bool:
    obj = _session(api, namespace)
    return obj is not None and phase_is(c.PHASE_RUNNING)(obj) and ready(obj)


def _stopped(api: StrictKubernetesAPI, namespace: str) -> bool:
    obj = _session(api, namespace)
    return obj is not None and phase_is(c.PHASE_STOPPED)(obj) and not pods_of(api, SESSION, namespace)


def _gone(api: StrictKubernetesAPI, namespace: str) -> bool:
    return _session(api, namespace) is None and not api.list("persistentvolumeclaims", namespace)


NETWORK_POLICY = f"{RELEASE}-session-runtime"
WIDENED = {"spec": {"ingress": [{}]}}


def _widen_policy(api: StrictKubernetesAPI, namespace: str) -> None:
    """Someone edits the session NetworkPolicy to admit every pod (the resume restores it)."""
    api.patch("networkpolicies", namespace, NETWORK_POLICY, WIDENED)


def _policy_kept(api: StrictKubernetesAPI, namespace: str) -> bool:
    policy = api.get("networkpolicies", namespace, NETWORK_POLICY)
    return policy is not None and policy["spec"]["ingress"] != WIDENED["spec"]["ingress"]


def _token_secret(api: StrictKubernetesAPI, namespace: str) -> dict | None:
    secrets = [s for s in api.list("secrets", namespace)
               if (s["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "runtime-token"]
    return secrets[0] if secrets else None


def _tamper_token(api: StrictKubernetesAPI, namespace: str) -> None:
    """Someone overwrites the session's runtime token Secret (the resume writes it back)."""
    secret = _token_secret(api, namespace)
    assert secret is not None, "the session's runtime token Secret was not created"
    api.patch("secrets", namespace, secret["metadata"]["name"], {"data": {"token": "dGFtcGVyZWQ="}})


def _token_kept(api: StrictKubernetesAPI, namespace: str) -> bool:
    secret = _token_secret(api, namespace)
    return secret is not None and secret["data"]["token"] != "dGFtcGVyZWQ="


def _set_state(state: str) -> Callable[[StrictKubernetesAPI, str], Any]:
    return lambda api, namespace: api.patch(c.SESSION_PLURAL, namespace, SESSION, {"spec": {"state": state}})


@dataclass(frozen=True)
class Step:
    name: str
    act: Callable[[StrictKubernetesAPI, str], Any]
    done: Callable[[StrictKubernetesAPI, str], bool]


LIFECYCLE = (
    Step("create", lambda api, ns: api.create(c.SESSION_PLURAL, session(
        SESSION, ns, templateRef={"name": TEMPLATE}, workspace={"size": "1Gi"})), _running),
    Step("stop", _set_state(c.STATE_STOPPED), _stopped),
    Step("widen the policy", _widen_policy, lambda api, ns: True),
    Step("tamper with the runtime token", _tamper_token, lambda api, ns: True),
    Step("resume", _set_state(c.STATE_RUNNING),
         lambda api, ns: _running(api, ns) and _policy_kept(api, ns) and _token_kept(api, ns)),
    Step("delete", lambda api, ns: api.delete(c.SESSION_PLURAL, ns, SESSION), _gone),
)
"""A session from a template (its agent reads a Secret: the log tail is redacted with it) with
a workspace: create → Running/Ready (the session NetworkPolicy and the runtime token Secret created
first) → stop → Stopped → someone widens the NetworkPolicy and overwrites the token Secret →
resume → Running, the policy and the token restored → delete → gone."""


def refused(api: StrictKubernetesAPI) -> list[RecordedRequest]:
    return [r for r in list(api.requests) if r.status in (401, 403)]


def describe(requests: list[RecordedRequest]) -> str:
    return "\n".join(f"{r.status} {r.method} {r.path}: {r.authorization_reason or r.body}" for r in requests)


# --- sufficient: the lifecycle with the install's RBAC ----------------------------------------


@contextlib.contextmanager
def backend_of(backend: str, install: Install, request: pytest.FixtureRequest) -> Iterator[Any]:
    if backend == "embedded":
        with cluster(install) as api:
            yield api
    else:
        with real_cluster_of(install, request.getfixturevalue("real_cluster")) as api:
            yield api


@pytest.mark.parametrize("backend", ["embedded", "real"])
@pytest.mark.parametrize("name", list(INSTALLS))
def test_full_lifecycle_runs_with_exactly_the_installs_rbac_and_no_403(name, backend, tmp_path, request):
    install = INSTALLS[name]()
    with backend_of(backend, install, request) as api, operator_of(install, api, tmp_path):
        namespace = install.session_namespace
        for step in LIFECYCLE:
            step.act(api, namespace)
            try:
                api.wait_for(lambda step=step: step.done(api, namespace), timeout=TIMEOUT)
            except TimeoutError:
                pytest.fail(f"{step.name} did not converge; refused:\n{describe(refused(api))}")
    assert refused(api) == [], describe(refused(api))
    requests = list(api.requests)
    assert {r.user for r in requests} == {install.user[0]}
    assert all(r.authorized for r in requests)
    # Everything the rules are there for really happened, through the authorizer.
    used = {(r.method, r.resource, r.subresource) for r in requests}
    assert {("GET", "secrets", None), ("GET", "pods", "log"), ("POST", "events", None),
            ("POST", "persistentvolumeclaims", None), ("GET", "networkpolicies", None),
            ("POST", "networkpolicies", None), ("PATCH", "networkpolicies", None),
            ("POST", "secrets", None), ("PATCH", "secrets", None)} <= used
    peering = "clusterkopfpeerings" if not install.options.namespaces else "kopfpeerings"
    assert [r for r in requests if (r.method, r.resource, r.status) == ("PATCH", peering, 200)], "no keep-alive"


# --- minimal: every granted verb is used ------------------------------------------------------


def granted_verbs() -> list[Any]:
    """(install, rule index, api group, resource, verb) for every verb the chart's role grants,
    in both modes (rendered at collection: the parameters are the chart's rules)."""
    helm = locate_tool("helm")
    if not helm:
        return [pytest.param(None, id="helm-missing")]
    params = []
    for mode, sets in (("chart-cluster-wide", ()), ("chart-namespaced", NAMESPACED)):
        for index, rule in enumerate(Install(_chart(str(helm), *sets)).role["rules"]):
            for key in itertools.product(rule["apiGroups"], rule["resources"], rule["verbs"]):
                params.append(pytest.param((mode, index, *key), id=f"{mode}:{key[1]}-{key[2]}"))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "granted" in metafunc.fixturenames:
        metafunc.parametrize("granted", granted_verbs())


def give_back(api: Any, install: Install) -> None:
    """The install's full rules again (in the embedded authorizer, or on the real server)."""
    if isinstance(api, StrictKubernetesAPI):
        api.authorizer = RBACAuthorizer.from_manifests(install.docs)
        return
    role = install.role
    meta = role["metadata"]
    api.client.patch(api.client.resource_for(role["apiVersion"], role["kind"]), meta.get("namespace"), meta["name"],
                     {"rules": role["rules"]})


def run_until_refused(api: StrictKubernetesAPI, namespace: str) -> str | None:
    """Drive the lifecycle until the first refusal; what stopped it, or None if it converged."""
    for step in LIFECYCLE:
        step.act(api, namespace)
        try:
            wait_until(lambda step=step: refused(api) or step.done(api, namespace), timeout=REFUSAL_TIMEOUT)
        except AssertionError:
            return f"{step.name} did not converge"
        if refused(api):
            return describe(refused(api)[:1])
    return None


@pytest.mark.parametrize("backend", ["embedded", "real"])
def test_every_granted_verb_is_needed_by_the_lifecycle(granted, backend, tmp_path, request):
    if granted is None:
        find_tool("helm")  # skips, or fails in CI
    mode, index, group, resource, verb = granted
    install = INSTALLS[mode]()
    reduced = install.without(index, verb)
    with backend_of(backend, reduced, request) as api, operator_of(reduced, api, tmp_path):
        broken = run_until_refused(api, reduced.session_namespace)
        evidence = refused(api)
        # Give the verb back before stopping: kopf would otherwise retry the refused call
        # with its backoff (up to a minute) before it stops.
        give_back(api, install)
    assert broken is not None, f"{verb} {resource} ({group or 'core'}) is granted but the lifecycle never uses it"
    assert all(r.status == 403 and r.user == install.user[0] for r in evidence), describe(evidence)
