"""Specifications for Kubernetes authorization in the embedded API (agent_sessions.dev.authorization).

Tables for the pure parts — how an HTTP request becomes authorization attributes, what RBAC
allows, what the server says when it refuses — then the same rules over real HTTP against
StrictKubernetesAPI with tokens and an RBAC authorizer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from agent_sessions.dev.authorization import (
    AUTHENTICATED,
    Decision,
    RBACAuthorizer,
    RequestAttributes,
    attributes_for,
    forbidden_details,
    forbidden_message,
    owner_reference_denial,
    service_account_user,
)
from agent_sessions.dev.strict_api import StrictKubernetesAPI

ROOT = Path(__file__).resolve().parents[2]
AGENTSESSION_CRD = yaml.safe_load((ROOT / "crds" / "agentsessions.yaml").read_text())
OPERATOR_NS, OPERATOR_SA = "agent-sessions-system", "agent-session-operator"
OPERATOR, OPERATOR_GROUPS = service_account_user(OPERATOR_NS, OPERATOR_SA)
RBAC = "rbac.authorization.k8s.io/v1"
PODS = "/api/v1/namespaces/default/pods"
AGS = "/apis/agentsession.dev/v1alpha1/namespaces/default/agentsessions"
SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
DEADLINE = 5.0


# --- request attributes ---------------------------------------------------------------------

A = RequestAttributes
ATTRIBUTE_CASES = [
    # id, method, path, query, expected (verb, group, resource, subresource, namespace, name)
    ("get-collection-is-list", "GET", PODS, {}, ("list", "", "pods", "", "default", "")),
    ("watch-true", "GET", PODS, {"watch": "true"}, ("watch", "", "pods", "", "default", "")),
    ("watch-1", "GET", PODS, {"watch": "1"}, ("watch", "", "pods", "", "default", "")),
    ("watch-false-is-list", "GET", PODS, {"watch": "false"}, ("list", "", "pods", "", "default", "")),
    ("watch-0-is-list", "GET", PODS, {"watch": "0"}, ("list", "", "pods", "", "default", "")),
    ("watch-path-prefix", "GET", "/api/v1/watch/namespaces/default/pods", {},
     ("watch", "", "pods", "", "default", "")),
    ("watch-path-prefix-named", "GET", "/api/v1/watch/namespaces/default/pods/p1", {},
     ("watch", "", "pods", "", "default", "p1")),
    ("get-named-object", "GET", f"{PODS}/p1", {}, ("get", "", "pods", "", "default", "p1")),
    ("head-is-get", "HEAD", f"{PODS}/p1", {}, ("get", "", "pods", "", "default", "p1")),
    ("list-all-namespaces", "GET", "/api/v1/pods", {}, ("list", "", "pods", "", "", "")),
    ("named-watch-by-field-selector", "GET", PODS, {"watch": "true", "fieldSelector": "metadata.name=p1"},
     ("watch", "", "pods", "", "default", "p1")),
    ("named-list-among-other-terms", "GET", PODS, {"fieldSelector": "status.phase=Running,metadata.name==p1"},
     ("list", "", "pods", "", "default", "p1")),
    ("negated-name-selector-names-nothing", "GET", PODS, {"fieldSelector": "metadata.name!=p1"},
     ("list", "", "pods", "", "default", "")),
    ("post-is-create", "POST", PODS, {}, ("create", "", "pods", "", "default", "")),
    ("put-is-update", "PUT", f"{PODS}/p1", {}, ("update", "", "pods", "", "default", "p1")),
    ("patch", "PATCH", f"{PODS}/p1", {}, ("patch", "", "pods", "", "default", "p1")),
    ("delete-object", "DELETE", f"{PODS}/p1", {}, ("delete", "", "pods", "", "default", "p1")),
    ("delete-collection", "DELETE", PODS, {}, ("deletecollection", "", "pods", "", "default", "")),
    ("pod-log", "GET", f"{PODS}/p1/log", {"tailLines": "10"}, ("get", "", "pods", "log", "default", "p1")),
    ("status-subresource", "PATCH", f"{AGS}/s1/status", {},
     ("patch", "agentsession.dev", "agentsessions", "status", "default", "s1")),
    ("cluster-scoped-custom-resource", "PATCH", "/apis/kopf.dev/v1/clusterkopfpeerings/op", {},
     ("patch", "kopf.dev", "clusterkopfpeerings", "", "", "op")),
    ("namespace-is-its-own-namespace", "GET", "/api/v1/namespaces/team-a", {},
     ("get", "", "namespaces", "", "team-a", "team-a")),
    ("namespace-finalize", "PUT", "/api/v1/namespaces/team-a/finalize", {},
     ("update", "", "namespaces", "finalize", "team-a", "team-a")),
    ("list-namespaces", "GET", "/api/v1/namespaces", {}, ("list", "", "namespaces", "", "", "")),
    ("review-create", "POST", SAR, {}, ("create", "authorization.k8s.io", "subjectaccessreviews", "", "", "")),
]


@pytest.mark.parametrize(("method", "path", "query", "expected"), [c[1:] for c in ATTRIBUTE_CASES],
                         ids=[c[0] for c in ATTRIBUTE_CASES])
def test_attributes_of_a_resource_request_are_the_api_servers(method, path, query, expected):
    attrs = attributes_for(method, path, query)
    assert attrs.resource_request
    assert (attrs.verb, attrs.api_group, attrs.resource, attrs.subresource, attrs.namespace, attrs.name) == expected
    assert attrs.path == path


@pytest.mark.parametrize("path", ["/", "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/version",
                                  "/openapi/v3", "/openapi/v3/apis/apps/v1", "/healthz", "/metrics"])
def test_discovery_and_other_paths_are_non_resource_requests(path):
    attrs = attributes_for("GET", path, {})
    assert not attrs.resource_request
    assert (attrs.verb, attrs.path, attrs.resource, attrs.namespace) == ("get", path, "", "")


def test_attributes_carry_the_user_and_the_query_may_be_multi_valued():
    attrs = attributes_for("GET", PODS, {"watch": ["true", "false"]}, user="alice", groups=["devs"])
    assert (attrs.user, attrs.groups, attrs.verb) == ("alice", ("devs",), "watch")


# --- RBAC -----------------------------------------------------------------------------------


def cluster_role(name: str, *rules: dict) -> dict:
    return {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


def role(name: str, namespace: str, *rules: dict) -> dict:
    return {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": name, "namespace": namespace},
            "rules": list(rules)}


def binding(name: str, role_kind: str, role_name: str, *subjects: dict, namespace: str | None = None) -> dict:
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
            "subjects": list(subjects)}


def rule(groups: list[str], resources: list[str], verbs: list[str], **extra: Any) -> dict:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **extra}


def sa(name: str = OPERATOR_SA, namespace: str | None = OPERATOR_NS) -> dict:
    return {"kind": "ServiceAccount", "name": name, **({"namespace": namespace} if namespace else {})}


def request(verb: str, resource: str, namespace: str = "default", name: str = "", group: str = "",
            user: str = OPERATOR, groups: tuple[str, ...] = tuple(OPERATOR_GROUPS)) -> RequestAttributes:
    resource, _, subresource = resource.partition("/")
    return A(user=user, groups=groups, verb=verb, api_group=group, resource=resource, subresource=subresource,
             namespace=namespace, name=name, resource_request=True)


def authorizer(*docs: dict, bootstrap: bool = True) -> RBACAuthorizer:
    return RBACAuthorizer.from_manifests(docs, bootstrap=bootstrap)


def test_cluster_role_bound_cluster_wide_allows_in_every_namespace_and_at_cluster_scope():
    rbac = authorizer(cluster_role("pods", rule([""], ["pods"], ["get", "list"])),
                      binding("pods", "ClusterRole", "pods", sa()))
    assert rbac.authorize(request("get", "pods", "team-a", "p")).allowed
    assert rbac.authorize(request("list", "pods", "")).allowed
    assert not rbac.authorize(request("delete", "pods", "team-a", "p")).allowed


def test_allow_reason_names_the_binding_the_role_and_the_subject():
    rbac = authorizer(cluster_role("pods", rule([""], ["pods"], ["get"])), binding("op", "ClusterRole", "pods", sa()))
    assert rbac.authorize(request("get", "pods", name="p")) == Decision(
        True, 'RBAC: allowed by ClusterRoleBinding "op" of ClusterRole "pods" to ServiceAccount '
              '"agent-session-operator/agent-sessions-system"')


def test_role_via_role_binding_grants_only_in_its_namespace():
    rbac = authorizer(role("pods", "team-a", rule([""], ["pods"], ["get"])),
                      binding("pods", "Role", "pods", sa(), namespace="team-a"))
    assert rbac.authorize(request("get", "pods", "team-a", "p")).allowed
    assert not rbac.authorize(request("get", "pods", "team-b", "p")).allowed
    assert not rbac.authorize(request("get", "pods", "", "p")).allowed


def test_role_binding_to_a_cluster_role_grants_it_only_in_the_bindings_namespace():
    rbac = authorizer(cluster_role("view", rule([""], ["pods"], ["list"])),
                      binding("view", "ClusterRole", "view", sa(), namespace="team-a"))
    assert rbac.authorize(request("list", "pods", "team-a")).allowed
    assert not rbac.authorize(request("list", "pods", "team-b")).allowed
    assert not rbac.authorize(request("list", "pods", "")).allowed
    reason = rbac.authorize(request("list", "pods", "team-a")).reason
    assert 'RoleBinding "view/team-a" of ClusterRole "view"' in reason


def test_a_role_binding_cannot_use_a_role_of_another_namespace():
    rbac = authorizer(role("pods", "team-a", rule([""], ["pods"], ["get"])),
                      binding("pods", "Role", "pods", sa(), namespace="team-b"))
    assert rbac.authorize(request("get", "pods", "team-b", "p")) == Decision(
        False, 'RBAC: role.rbac.authorization.k8s.io "pods" not found')


SUBRESOURCE_CASES = [
    ("pods-rule-does-not-cover-pods-log", ["pods"], "pods/log", False),
    ("pods-log-rule-covers-pods-log", ["pods/log"], "pods/log", True),
    ("pods-log-rule-does-not-cover-pods", ["pods/log"], "pods", False),
    ("star-slash-status-covers-any-status", ["*/status"], "agentsessions/status", True),
    ("star-slash-status-does-not-cover-the-object", ["*/status"], "agentsessions", False),
    ("star-covers-subresources-too", ["*"], "pods/log", True),
    ("finalizers-subresource", ["agentsessions/finalizers"], "agentsessions/finalizers", True),
]


@pytest.mark.parametrize(("resources", "asked", "allowed"), [c[1:] for c in SUBRESOURCE_CASES],
                         ids=[c[0] for c in SUBRESOURCE_CASES])
def test_subresources_match_only_their_own_rules(resources, asked, allowed):
    rbac = authorizer(cluster_role("r", rule(["*"], resources, ["*"])), binding("r", "ClusterRole", "r", sa()))
    assert rbac.authorize(request("get", asked, name="x")).allowed is allowed


def test_resource_names_allow_only_the_named_object_and_a_watch_pinned_to_it():
    rbac = authorizer(cluster_role("one", rule(["kopf.dev"], ["clusterkopfpeerings"], ["get", "list", "watch"],
                                               resourceNames=["op"])),
                      binding("one", "ClusterRole", "one", sa()))
    assert rbac.authorize(request("get", "clusterkopfpeerings", "", "op", "kopf.dev")).allowed
    assert not rbac.authorize(request("get", "clusterkopfpeerings", "", "other", "kopf.dev")).allowed
    assert not rbac.authorize(request("list", "clusterkopfpeerings", "", "", "kopf.dev")).allowed
    pinned = attributes_for("GET", "/apis/kopf.dev/v1/clusterkopfpeerings",
                            {"watch": "true", "fieldSelector": "metadata.name=op"}).as_user(OPERATOR, OPERATOR_GROUPS)
    assert rbac.authorize(pinned).allowed


WILDCARD_CASES = [
    ("verbs", rule([""], ["pods"], ["*"]), request("deletecollection", "pods"), True),
    ("api-groups", rule(["*"], ["agentsessions"], ["get"]),
     request("get", "agentsessions", group="agentsession.dev"), True),
    ("resources", rule([""], ["*"], ["get"]), request("get", "secrets", name="s"), True),
    ("resources-not-groups", rule([""], ["*"], ["get"]), request("get", "deployments", name="d", group="apps"),
     False),
    ("exact-group-only", rule(["apps"], ["deployments"], ["get"]), request("get", "deployments", group="extensions"),
     False),
]


@pytest.mark.parametrize(("granted", "asked", "allowed"), [c[1:] for c in WILDCARD_CASES],
                         ids=[c[0] for c in WILDCARD_CASES])
def test_wildcards_match_any_value_of_their_own_field(granted, asked, allowed):
    rbac = authorizer(cluster_role("r", granted), binding("r", "ClusterRole", "r", sa()))
    assert rbac.authorize(asked).allowed is allowed


SUBJECT_CASES = [
    ("service-account", sa(), True),
    ("service-account-of-another-namespace", sa(namespace="default"), False),
    ("another-service-account", sa(name="other"), False),
    ("group-of-the-namespaces-service-accounts",
     {"kind": "Group", "name": f"system:serviceaccounts:{OPERATOR_NS}"}, True),
    ("group-of-all-service-accounts", {"kind": "Group", "name": "system:serviceaccounts"}, True),
    ("authenticated-group", {"kind": "Group", "name": AUTHENTICATED}, True),
    ("user-by-its-full-name", {"kind": "User", "name": OPERATOR}, True),
    ("other-user", {"kind": "User", "name": "alice"}, False),
]


@pytest.mark.parametrize(("subject", "allowed"), [c[1:] for c in SUBJECT_CASES], ids=[c[0] for c in SUBJECT_CASES])
def test_subjects_match_the_service_accounts_user_and_groups(subject, allowed):
    rbac = authorizer(cluster_role("r", rule([""], ["pods"], ["get"])), binding("r", "ClusterRole", "r", subject))
    assert rbac.authorize(request("get", "pods", name="p")).allowed is allowed


def test_service_account_subject_of_a_role_binding_defaults_to_the_bindings_namespace():
    rbac = authorizer(role("r", "team-a", rule([""], ["pods"], ["get"])),
                      binding("r", "Role", "r", sa(namespace=None), namespace="team-a"))
    local, _ = service_account_user("team-a", OPERATOR_SA)
    assert rbac.authorize(request("get", "pods", "team-a", "p", user=local)).allowed
    assert not rbac.authorize(request("get", "pods", "team-a", "p")).allowed


@pytest.mark.parametrize("path", ["/api", "/api/v1", "/apis", "/apis/agentsession.dev/v1alpha1", "/version",
                                  "/openapi/v3", "/openapi/v3/api/v1", "/healthz"])
def test_every_authenticated_user_may_read_discovery_by_default(path):
    attrs = attributes_for("GET", path, {}, user="alice", groups=[AUTHENTICATED])
    assert authorizer().authorize(attrs).allowed
    assert not authorizer(bootstrap=False).authorize(attrs).allowed
    assert not authorizer().authorize(attributes_for("GET", path, {}, user="alice")).allowed  # not authenticated


def test_discovery_default_covers_neither_other_paths_nor_writes():
    user = {"user": "alice", "groups": [AUTHENTICATED]}
    assert not authorizer().authorize(attributes_for("GET", "/metrics", {}, **user)).allowed
    assert not authorizer().authorize(attributes_for("POST", "/api", {}, **user)).allowed


def test_non_resource_urls_match_exactly_or_by_prefix():
    rbac = authorizer(cluster_role("m", {"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}),
                      binding("m", "ClusterRole", "m", {"kind": "User", "name": "prom"}), bootstrap=False)
    allowed = [rbac.authorize(attributes_for("GET", p, {}, user="prom")).allowed
               for p in ("/metrics", "/metrics/x", "/logs/", "/logs/a/b", "/logs")]
    assert allowed == [True, False, True, True, False]


DENIAL_CASES = [
    ("namespaced-collection", request("create", "pods"),
     'pods is forbidden: User "system:serviceaccount:agent-sessions-system:agent-session-operator" cannot create '
     'resource "pods" in API group "" in the namespace "default"'),
    ("named-subresource", request("patch", "agentsessions/status", name="s1", group="agentsession.dev"),
     'agentsessions.agentsession.dev "s1" is forbidden: User "system:serviceaccount:agent-sessions-system:'
     'agent-session-operator" cannot patch resource "agentsessions/status" in API group "agentsession.dev" in '
     'the namespace "default"'),
    ("cluster-scope", request("list", "namespaces", ""),
     'namespaces is forbidden: User "system:serviceaccount:agent-sessions-system:agent-session-operator" cannot '
     'list resource "namespaces" in API group "" at the cluster scope'),
    ("non-resource", attributes_for("GET", "/metrics", {}, user="alice"),
     'forbidden: User "alice" cannot get path "/metrics"'),
]


@pytest.mark.parametrize(("attrs", "message"), [c[1:] for c in DENIAL_CASES], ids=[c[0] for c in DENIAL_CASES])
def test_denials_read_like_the_api_servers(attrs, message):
    assert authorizer().allowed(attrs) == (False, message)
    assert forbidden_message(attrs) == message


def test_denial_reports_bindings_to_missing_roles():
    rbac = authorizer(binding("op", "ClusterRole", "gone", sa()))
    assert rbac.allowed(request("create", "pods")).reason.endswith(
        'in the namespace "default": RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found')


def test_forbidden_details_name_the_resource_group_and_object():
    assert forbidden_details(request("get", "pods", name="p")) == {"kind": "pods", "name": "p"}
    assert forbidden_details(request("list", "agentsessions", group="agentsession.dev")) == {
        "kind": "agentsessions", "group": "agentsession.dev"}
    assert forbidden_details(attributes_for("GET", "/metrics", {})) == {}


def test_manifests_other_than_rbac_are_ignored():
    docs = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}}, None,
            cluster_role("r", rule([""], ["pods"], ["get"])), binding("r", "ClusterRole", "r", sa())]
    assert RBACAuthorizer.from_manifests(docs).authorize(request("get", "pods", name="p")).allowed


# --- OwnerReferencesPermissionEnforcement ---------------------------------------------------


def owned_pod(block: bool = True, uid: str = "u1") -> dict:
    return {"metadata": {"name": "p1", "ownerReferences": [
        {"apiVersion": "agentsession.dev/v1alpha1", "kind": "AgentSession", "name": "s1", "uid": uid,
         "controller": True, "blockOwnerDeletion": block}]}}


def agentsessions(api_version: str, kind: str) -> list[tuple[str, str, bool]]:
    return [("agentsession.dev", "agentsessions", True)] if kind == "AgentSession" else []


POD_RULE = rule([""], ["pods"], ["create", "update"])
FINALIZERS_RULE = rule(["agentsession.dev"], ["agentsessions/finalizers"], ["update"])
OWNER_CASES = [
    ("no-owner-references", [POD_RULE], {"metadata": {"name": "p1"}}, None, None),
    ("not-blocking", [POD_RULE], owned_pod(block=False), None, None),
    ("blocking-with-finalizers-permission", [POD_RULE, FINALIZERS_RULE], owned_pod(), None, None),
    ("blocking-without-finalizers-permission", [POD_RULE], owned_pod(), None,
     'pods "p1" is forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a resource you '
     "can't set finalizers on: , <nil>"),
    ("update-keeping-the-references", [POD_RULE], owned_pod(), owned_pod(), None),
    ("update-changing-references-needs-delete", [POD_RULE, FINALIZERS_RULE], owned_pod(uid="u2"), owned_pod(),
     'pods "p1" is forbidden: cannot set an ownerRef on a resource you can\'t delete: , <nil>'),
]


@pytest.mark.parametrize(("rules", "new", "old", "denial"), [c[1:] for c in OWNER_CASES],
                         ids=[c[0] for c in OWNER_CASES])
def test_owner_references_blocking_deletion_need_update_on_the_owners_finalizers(rules, new, old, denial):
    rbac = authorizer(cluster_role("r", *rules), binding("r", "ClusterRole", "r", sa()))
    verb = "create" if old is None else "update"
    attrs = request(verb, "pods", name="" if old is None else "p1")
    assert owner_reference_denial(rbac, attrs, new, old, agentsessions) == denial


# --- over HTTP ------------------------------------------------------------------------------

TOKENS = {"operator-token": (OPERATOR, OPERATOR_GROUPS), "admin-token": ("admin", ["system:masters"]),
          "alice-token": ("alice", [])}
POLICY = [
    cluster_role("operator", rule([""], ["pods"], ["get", "list", "create"]),
                 rule(["agentsession.dev"], ["agentsessions"], ["create"])),
    binding("operator", "ClusterRole", "operator", sa()),
    cluster_role("admin", rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}),
    binding("admin", "ClusterRole", "admin", {"kind": "Group", "name": "system:masters"}),
]


@pytest.fixture
async def api() -> AsyncIterator[StrictKubernetesAPI]:
    async with StrictKubernetesAPI(crds=[AGENTSESSION_CRD], tokens=TOKENS,
                                   authorizer=RBACAuthorizer.from_manifests(POLICY)) as server:
        yield server


@pytest.fixture
async def http(api: StrictKubernetesAPI) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(api.url) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, path: str, body: Any = None, *,
               token: str | None = "operator-token", scheme: str = "Bearer", **params: str) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    data = None if body is None else json.dumps(body)
    async with http.request(method, path, data=data, headers=headers, params=params) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


def pod(name: str = "p1", **meta: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **meta},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


@pytest.mark.parametrize(("token", "scheme"), [(None, "Bearer"), ("stolen", "Bearer"), ("", "Bearer"),
                                               ("operator-token", "Basic")],
                         ids=["no-token", "unknown-token", "empty-token", "not-a-bearer-token"])
async def test_requests_without_a_known_bearer_token_are_401(api, http, token, scheme):
    status, body = await call(http, "GET", PODS, token=token, scheme=scheme)
    assert status == 401
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    assert api.requests[-1].user is None and api.requests[-1].status == 401


async def test_forbidden_request_is_403_with_a_status_body_and_changes_nothing(api, http):
    status, body = await call(http, "DELETE", f"{PODS}/p1")
    assert status == 403
    assert body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden",
        "code": 403, "details": {"name": "p1", "kind": "pods"},
        "message": 'pods "p1" is forbidden: User "system:serviceaccount:agent-sessions-system:'
                   'agent-session-operator" cannot delete resource "pods" in API group "" in the namespace "default"'}
    record = api.requests[-1]
    assert (record.user, record.authorized, record.status) == (OPERATOR, False, 403)
    assert record.authorization_reason == body["message"]


async def test_allowed_request_is_served_and_recorded_with_its_user_and_decision(api, http):
    status, created = await call(http, "POST", PODS, pod())
    assert status == 201 and api.get("pods", "default", "p1")["metadata"]["uid"] == created["metadata"]["uid"]
    record = api.requests[-1]
    assert (record.user, record.authorized, record.status) == (OPERATOR, True, 201)
    assert AUTHENTICATED in record.groups and "system:serviceaccounts" in record.groups
    assert record.authorization_reason.startswith('RBAC: allowed by ClusterRoleBinding "operator"')


async def test_watch_is_authorized_apart_from_list(http):
    assert (await call(http, "GET", PODS))[0] == 200
    status, body = await call(http, "GET", PODS, watch="true")
    assert status == 403 and 'cannot watch resource "pods"' in body["message"]


async def test_unknown_resources_are_authorized_before_routing(http):
    assert (await call(http, "GET", "/apis/example.com/v1/widgets"))[0] == 403
    assert (await call(http, "GET", "/apis/example.com/v1/widgets", token="admin-token"))[0] == 404


async def test_discovery_is_open_to_every_authenticated_user(http):
    for path in ("/api", "/api/v1", "/apis", "/apis/authorization.k8s.io/v1", "/version", "/openapi/v3"):
        assert (await call(http, "GET", path, token="alice-token"))[0] == 200, path
    assert (await call(http, "GET", "/", token="alice-token"))[0] == 403


async def test_review_resources_appear_in_discovery(http):
    _, authz = await call(http, "GET", "/apis/authorization.k8s.io/v1")
    _, authn = await call(http, "GET", "/apis/authentication.k8s.io/v1")
    assert {r["name"]: r["verbs"] for r in authz["resources"]} == {
        "subjectaccessreviews": ["create"], "selfsubjectaccessreviews": ["create"]}
    assert {r["name"]: r["verbs"] for r in authn["resources"]} == {"tokenreviews": ["create"]}


async def test_in_process_calls_play_the_control_plane_and_are_not_authorized(api, http):
    api.create("secrets", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    api.delete("secrets", "default", "s")
    assert all(r.path != "/api/v1/namespaces/default/secrets" for r in api.requests)


def sar(**attributes: str) -> dict:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": OPERATOR, "groups": OPERATOR_GROUPS, "resourceAttributes": attributes}}


async def test_subject_access_review_answers_from_the_authorizer(http):
    status, allowed = await call(http, "POST", SAR, sar(verb="create", resource="pods", namespace="team-a"),
                                 token="admin-token")
    _, denied = await call(http, "POST", SAR, sar(verb="delete", resource="pods", namespace="team-a"),
                           token="admin-token")
    assert status == 201 and allowed["kind"] == "SubjectAccessReview"
    assert allowed["status"] == {"allowed": True, "reason": (
        'RBAC: allowed by ClusterRoleBinding "operator" of ClusterRole "operator" to ServiceAccount '
        '"agent-session-operator/agent-sessions-system"')}
    assert denied["status"] == {"allowed": False}
    assert denied["spec"]["resourceAttributes"] == {"verb": "delete", "resource": "pods", "namespace": "team-a"}


async def test_subject_access_review_of_a_non_resource_path(http):
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": "alice", "groups": [AUTHENTICATED],
                       "nonResourceAttributes": {"path": "/apis", "verb": "get"}}}
    _, answer = await call(http, "POST", SAR, review, token="admin-token")
    assert answer["status"] == {"allowed": True, "reason": (
        'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group '
        '"system:authenticated"')}


async def test_subject_access_review_needs_create_permission_and_a_subject(http):
    status, body = await call(http, "POST", SAR, sar(verb="get", resource="pods"))
    assert status == 403 and 'cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" ' \
                             "at the cluster scope" in body["message"]
    anonymous = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                 "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}
    status, body = await call(http, "POST", SAR, anonymous, token="admin-token")
    assert status == 422 and "at least one of user or group must be specified" in body["message"]
    assert (await call(http, "GET", SAR, token="admin-token"))[0] == 405


async def test_self_subject_access_review_asks_for_the_requester(http):
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "default"}}}
    status, mine = await call(http, "POST", SSAR, review)
    _, alices = await call(http, "POST", SSAR, review, token="alice-token")
    assert status == 201 and mine["status"]["allowed"] is True and alices["status"] == {"allowed": False}
    assert "user" not in mine["spec"]


async def test_token_review_answers_from_the_tokens(http):
    def review(token: str) -> dict:
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}

    status, known = await call(http, "POST", TOKEN_REVIEWS, review("operator-token"), token="admin-token")
    _, unknown = await call(http, "POST", TOKEN_REVIEWS, review("stolen"), token="admin-token")
    assert status == 201
    assert known["status"]["authenticated"] is True
    assert known["status"]["user"] == {"username": OPERATOR, "groups": OPERATOR_GROUPS}
    assert unknown["status"]["authenticated"] is False and unknown["status"]["user"] == {}
    assert (await call(http, "POST", TOKEN_REVIEWS, review("operator-token")))[0] == 403
    assert (await call(http, "POST", TOKEN_REVIEWS, review(""), token="admin-token"))[0] == 400


async def test_blocking_owner_reference_needs_update_on_the_owners_finalizers(api, http):
    _, owner = await call(http, "POST", AGS, {"apiVersion": "agentsession.dev/v1alpha1", "kind": "AgentSession",
                                               "metadata": {"name": "s1"}, "spec": {"agent": {"image": "a:1"}}})
    ref = {"apiVersion": "agentsession.dev/v1alpha1", "kind": "AgentSession", "name": "s1",
           "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}
    status, body = await call(http, "POST", PODS, pod(ownerReferences=[ref]))
    assert status == 403 and body["reason"] == "Forbidden" and body["details"] == {"name": "p1", "kind": "pods"}
    assert "cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on" \
           in body["message"]
    assert api.get("pods", "default", "p1") is None
    assert (await call(http, "POST", PODS, pod(ownerReferences=[{**ref, "blockOwnerDeletion": False}])))[0] == 201
    assert (await call(http, "POST", PODS, pod("p2", ownerReferences=[ref]), token="admin-token"))[0] == 201


async def test_kubeconfig_carries_the_token_and_kubernetes_asyncio_authenticates_with_it(api, tmp_path):
    from kubernetes_asyncio import client, config

    path = api.write_kubeconfig(tmp_path / "kubeconfig", token="operator-token")
    assert yaml.safe_load(path.read_text())["users"][0]["user"] == {"token": "operator-token"}
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(path), client_configuration=configuration)
    async with client.ApiClient(configuration) as api_client:
        core = client.CoreV1Api(api_client)
        assert (await asyncio.wait_for(core.list_namespaced_pod("default"), DEADLINE)).items == []
        with pytest.raises(client.ApiException) as refused:
            await core.list_namespaced_secret("default")
    assert refused.value.status == 403


def test_an_authorizer_without_tokens_is_refused():
    with pytest.raises(ValueError, match="needs tokens"):
        StrictKubernetesAPI(authorizer=RBACAuthorizer())
