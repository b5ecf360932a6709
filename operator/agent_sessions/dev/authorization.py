"""Who a request is and what it may do: Kubernetes authorization attributes and RBAC.

Why this exists: "the operator works with exactly the RBAC its install grants" is only a
claim until the operator has run against a server that enforces those rules.  Everything
here is pure (no I/O, no clock), so the rules are tested with tables and the embedded API
(:class:`~agent_sessions.dev.strict_api.StrictKubernetesAPI`) only has to call it.

It follows kube-apiserver's own code, so that what is allowed here is allowed there:

* :func:`attributes_for` is ``RequestInfoFactory.NewRequestInfo`` (k8s.io/apiserver): the
  verb from the HTTP method (a GET of a collection is ``list``, or ``watch`` with
  ``?watch=``; a DELETE of a collection is ``deletecollection``), ``/watch/`` paths,
  subresources, the namespace of ``/api/v1/namespaces/<ns>`` itself, the name taken from a
  ``metadata.name=`` field selector of a list or watch (so ``resourceNames`` rules can allow
  a single-object watch), and non-resource paths outside ``/api`` and ``/apis``;
* :class:`RBACAuthorizer` is plugin/pkg/auth/authorizer/rbac: ClusterRoleBindings grant
  everywhere, RoleBindings only in their namespace (to a Role or a ClusterRole), rules match
  on verbs, API groups, resources (``*``, ``pods/log``, ``*/status``), ``resourceNames`` and
  ``nonResourceURLs`` (``*`` suffix = prefix); a binding to a missing role is reported in the
  reason, as the server does;
* the bootstrap policy every cluster has is included by default: ``system:discovery``,
  ``system:public-info-viewer`` and ``system:basic-user``, bound to ``system:authenticated``;
* :func:`forbidden_message` is the server's 403 message, word for word;
* :func:`owner_reference_denial` is the ``OwnerReferencesPermissionEnforcement`` admission
  plugin: setting ``blockOwnerDeletion`` needs ``update`` on the owner's ``finalizers``
  subresource (why the operator's RBAC grants ``agentsessions/finalizers``).  It is not in
  kube-apiserver's default plugin list but is enabled on OpenShift and many hardened clusters.

Not modelled: aggregated ClusterRoles (``aggregationRule``), impersonation, the Node and
webhook authorizers, ``escalate``/``bind`` checks on writes of RBAC objects, and the field
and label selector attributes of 1.31's authorization (alpha).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from agent_sessions.dev.selection import FieldSelector, SelectorError

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
SERVICE_ACCOUNTS = "system:serviceaccounts"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"

_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
# Writes of these are never checked by OwnerReferencesPermissionEnforcement (the kubelet).
_OWNER_REFERENCE_EXEMPT = frozenset({("", "pods", "status")})


def service_account_user(namespace: str, name: str) -> tuple[str, list[str]]:
    """The user name and groups the API server gives a service account's token."""
    return (f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
            [SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED])


# --- request attributes ---------------------------------------------------------------------


@dataclass(frozen=True)
class RequestAttributes:
    """What the authorizer decides on (k8s.io/apiserver ``authorizer.Attributes``).

    Absent parts are "" as on the server: ``namespace`` "" is cluster scope, ``api_group``
    "" the core group.  ``path`` is the URL path; it is what a non-resource rule matches.
    """

    user: str = ""
    groups: tuple[str, ...] = ()
    verb: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = False
    api_version: str = ""

    def as_user(self, user: str, groups: Iterable[str]) -> RequestAttributes:
        return dataclasses.replace(self, user=user, groups=tuple(groups))


def attributes_for(method: str, path: str, query: Mapping[str, Any] | None = None, *,
                   user: str = "", groups: Iterable[str] = ()) -> RequestAttributes:
    """The authorization attributes of an HTTP request, as kube-apiserver derives them."""
    query = query or {}
    parts = path.strip("/").split("/") if path.strip("/") else []
    base = RequestAttributes(user=user, groups=tuple(groups), path=path)
    non_resource = dataclasses.replace(base, verb=method.lower())
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(parts) < 3:
            return non_resource
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]
    if parts[0] in ("watch", "proxy"):  # the deprecated /watch/... and /proxy/... forms
        if len(parts) < 2:  # the server answers 400 here; no resource is named either way
            return dataclasses.replace(non_resource, api_group=group, api_version=version)
        verb, parts = parts[0], parts[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if parts[0] == "namespaces":
        if len(parts) > 1:
            namespace = parts[1]
            if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
                parts = parts[2:]
    resource = parts[0]
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and verb != "proxy" else ""
    if not name and verb == "get":
        verb = "watch" if _watch_requested(query) else "list"
        name = _name_from_field_selector(_first(query, "fieldSelector"))
    if not name and verb == "delete":
        verb = "deletecollection"
    return dataclasses.replace(base, verb=verb, api_group=group, api_version=version,
                               resource=resource, subresource=subresource, namespace=namespace,
                               name=name, resource_request=True)


def _first(query: Mapping[str, Any], key: str) -> str | None:
    value = query.get(key)
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def _watch_requested(query: Mapping[str, Any]) -> bool:
    """``watch`` as the server's query decoder reads it: anything but "0" or "false" is true."""
    value = _first(query, "watch")
    return value is not None and value != "0" and value.lower() != "false"


def _name_from_field_selector(text: str | None) -> str:
    """The name a ``metadata.name=<name>`` term pins a list or watch to, else ""."""
    try:
        selector = FieldSelector.parse(text)
    except SelectorError:
        return ""
    for term in selector.terms:
        if term.field == "metadata.name" and not term.negated:
            name = term.value
            if name not in (".", "..") and "/" not in name and "%" not in name:
                return name
            return ""
    return ""


# --- RBAC -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRule:
    """One ``rules[]`` entry of a Role or ClusterRole."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, rule: Mapping[str, Any]) -> PolicyRule:
        return cls(verbs=tuple(rule.get("verbs") or ()), api_groups=tuple(rule.get("apiGroups") or ()),
                   resources=tuple(rule.get("resources") or ()),
                   resource_names=tuple(rule.get("resourceNames") or ()),
                   non_resource_urls=tuple(rule.get("nonResourceURLs") or ()))

    def allows(self, attrs: RequestAttributes) -> bool:
        if not ("*" in self.verbs or attrs.verb in self.verbs):
            return False
        if not attrs.resource_request:
            return any(url == "*" or url == attrs.path
                       or (url.endswith("*") and attrs.path.startswith(url.rstrip("*")))
                       for url in self.non_resource_urls)
        return ("*" in self.api_groups or attrs.api_group in self.api_groups) \
            and self._matches_resource(attrs) \
            and (not self.resource_names or attrs.name in self.resource_names)

    def _matches_resource(self, attrs: RequestAttributes) -> bool:
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        for resource in self.resources:
            if resource in ("*", combined):
                return True
            if attrs.subresource and resource == f"*/{attrs.subresource}":
                return True
        return False


@dataclass(frozen=True)
class Subject:
    kind: str  # ServiceAccount | User | Group
    name: str
    namespace: str = ""

    def applies_to(self, user: str, groups: tuple[str, ...], binding_namespace: str) -> bool:
        if self.kind == "User":
            return user == self.name
        if self.kind == "Group":
            return self.name in groups
        if self.kind == "ServiceAccount":
            namespace = self.namespace or binding_namespace
            return bool(namespace) and user == f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{self.name}"
        return False

    def describe(self, binding_namespace: str) -> str:
        if self.kind == "ServiceAccount":
            return f"{self.kind} {_q(self.name + '/' + (self.namespace or binding_namespace))}"
        return f"{self.kind} {_q(self.name)}"


@dataclass(frozen=True)
class Binding:
    """A ClusterRoleBinding (``namespace`` "") or a RoleBinding."""

    name: str
    namespace: str
    role_kind: str  # ClusterRole | Role
    role_name: str
    subjects: tuple[Subject, ...]

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Binding:
        meta, ref = doc.get("metadata") or {}, doc.get("roleRef") or {}
        namespace = meta.get("namespace", "") if doc.get("kind") == "RoleBinding" else ""
        subjects = tuple(Subject(s.get("kind", ""), s.get("name", ""), s.get("namespace", ""))
                         for s in doc.get("subjects") or ())
        return cls(meta.get("name", ""), namespace, ref.get("kind", ""), ref.get("name", ""), subjects)

    def describe(self, subject: Subject) -> str:
        if self.namespace:
            return (f"RoleBinding {_q(self.name + '/' + self.namespace)} of {self.role_kind} "
                    f"{_q(self.role_name)} to {subject.describe(self.namespace)}")
        return (f"ClusterRoleBinding {_q(self.name)} of {self.role_kind} {_q(self.role_name)} "
                f"to {subject.describe('')}")


class Decision(NamedTuple):
    allowed: bool
    reason: str


class RBACAuthorizer:
    """The RBAC authorizer over a fixed set of roles and bindings."""

    def __init__(self, *, cluster_roles: Mapping[str, Iterable[PolicyRule]] | None = None,
                 roles: Mapping[tuple[str, str], Iterable[PolicyRule]] | None = None,
                 bindings: Iterable[Binding] = ()) -> None:
        """``roles`` are keyed by (namespace, name); ``bindings`` are ClusterRoleBindings and
        RoleBindings alike (see :class:`Binding`)."""
        self.cluster_roles = {name: tuple(rules) for name, rules in (cluster_roles or {}).items()}
        self.roles = {key: tuple(rules) for key, rules in (roles or {}).items()}
        self.bindings = tuple(bindings)

    @classmethod
    def from_manifests(cls, docs: Iterable[Mapping[str, Any] | None], *,
                       bootstrap: bool = True) -> RBACAuthorizer:
        """From ClusterRole, Role, ClusterRoleBinding and RoleBinding manifests (anything else
        in ``docs`` is ignored, so a whole ``helm template`` output can be passed); with
        ``bootstrap``, plus the cluster's built-in discovery roles (:data:`BOOTSTRAP_POLICY`)."""
        cluster_roles: dict[str, list[PolicyRule]] = {}
        roles: dict[tuple[str, str], list[PolicyRule]] = {}
        bindings: list[Binding] = []
        for doc in [*(BOOTSTRAP_POLICY if bootstrap else ()), *docs]:
            if not doc or doc.get("apiVersion") != RBAC_API_VERSION:
                continue
            kind, meta = doc.get("kind"), doc.get("metadata") or {}
            rules = [PolicyRule.from_dict(rule) for rule in doc.get("rules") or ()]
            if kind == "ClusterRole":
                cluster_roles[meta.get("name", "")] = rules
            elif kind == "Role":
                roles[(meta.get("namespace", "default"), meta.get("name", ""))] = rules
            elif kind in ("ClusterRoleBinding", "RoleBinding"):
                bindings.append(Binding.from_dict(doc))
        return cls(cluster_roles=cluster_roles, roles=roles, bindings=bindings)

    def authorize(self, attrs: RequestAttributes) -> Decision:
        """The RBAC decision and its reason as the authorizer reports it (what a
        SubjectAccessReview returns): ``RBAC: allowed by ...``, or "" / the errors met."""
        errors: list[str] = []
        cluster_bindings = [b for b in self.bindings if not b.namespace]
        namespaced = [b for b in self.bindings if b.namespace and b.namespace == attrs.namespace]
        for binding in [*cluster_bindings, *(namespaced if attrs.namespace else ())]:
            subject = next((s for s in binding.subjects
                            if s.applies_to(attrs.user, attrs.groups, binding.namespace)), None)
            if subject is None:
                continue
            rules = self._rules_of(binding)
            if rules is None:
                kind = binding.role_kind.lower()
                errors.append(f"{kind}.rbac.authorization.k8s.io {_q(binding.role_name)} not found")
                continue
            if any(rule.allows(attrs) for rule in rules):
                return Decision(True, f"RBAC: allowed by {binding.describe(subject)}")
        return Decision(False, f"RBAC: {_aggregate(errors)}" if errors else "")

    def allowed(self, attrs: RequestAttributes) -> Decision:
        """The decision as the API server reports it: a denial's reason is the message of
        its 403 (see :func:`forbidden_message`)."""
        decision = self.authorize(attrs)
        if decision.allowed:
            return decision
        return Decision(False, forbidden_message(attrs, decision.reason))

    def _rules_of(self, binding: Binding) -> tuple[PolicyRule, ...] | None:
        if binding.role_kind == "ClusterRole":
            return self.cluster_roles.get(binding.role_name)
        if binding.role_kind == "Role" and binding.namespace:
            return self.roles.get((binding.namespace, binding.role_name))
        return None


def _q(text: str) -> str:
    """Go's ``%q`` for the names that occur here."""
    return json.dumps(text, ensure_ascii=False)


def _aggregate(errors: list[str]) -> str:
    """``utilerrors.NewAggregate(errors).Error()``: one message as is, several bracketed."""
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else f"[{', '.join(unique)}]"


def _cluster_role(name: str, urls: list[str] | None = None, rules: list[dict] | None = None) -> dict:
    return {"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": {"name": name},
            "rules": rules or [{"verbs": ["get"], "nonResourceURLs": urls or []}]}


def _group_binding(name: str, *groups: str) -> dict:
    return {"apiVersion": RBAC_API_VERSION, "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}
                         for g in groups]}


_HEALTH_AND_VERSION = ["/livez", "/readyz", "/healthz", "/version", "/version/"]
BOOTSTRAP_POLICY: tuple[dict, ...] = (
    _cluster_role("system:discovery", [*_HEALTH_AND_VERSION, "/openapi", "/openapi/*", "/api",
                                       "/api/*", "/apis", "/apis/*"]),
    _group_binding("system:discovery", AUTHENTICATED),
    _cluster_role("system:public-info-viewer", _HEALTH_AND_VERSION),
    _group_binding("system:public-info-viewer", AUTHENTICATED, UNAUTHENTICATED),
    _cluster_role("system:basic-user", rules=[
        {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
         "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
        {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
         "resources": ["selfsubjectreviews"]}]),
    _group_binding("system:basic-user", AUTHENTICATED),
)
"""The parts of kube-apiserver's bootstrap RBAC policy every authenticated client relies on:
discovery (``/api``, ``/apis``, ``/openapi``, ``/version``), health, and asking what it may do."""


# --- the API server's answers ---------------------------------------------------------------


def forbidden_message(attrs: RequestAttributes, reason: str = "") -> str:
    """The message of the API server's 403 for a request the authorizer refused."""
    user = _q(attrs.user)
    if not attrs.resource_request:
        text = f"User {user} cannot {attrs.verb} path {_q(attrs.path)}"
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        scope = (f"in the namespace {_q(attrs.namespace)}" if attrs.namespace
                 else "at the cluster scope")
        text = (f"User {user} cannot {attrs.verb} resource {_q(resource)} in API group "
                f"{_q(attrs.api_group)} {scope}")
    if reason:
        text = f"{text}: {reason}"
    return f"{_qualified(attrs)} is forbidden: {text}" if attrs.resource else f"forbidden: {text}"


def forbidden_details(attrs: RequestAttributes) -> dict:
    """The ``details`` of a 403 Status: the resource (as ``kind``), its group and name."""
    details = {"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource}
    return {key: value for key, value in details.items() if value}


def _qualified(attrs: RequestAttributes) -> str:
    resource = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    return f"{resource} {_q(attrs.name)}" if attrs.name else resource


def access_review_errors(spec: Any, *, needs_subject: bool = True) -> list[str]:
    """Why a SubjectAccessReview spec is invalid (the server's 422), if it is;
    ``needs_subject`` False for a SelfSubjectAccessReview (the requester is the subject)."""
    if not isinstance(spec, Mapping):
        return ["spec: Required value"]
    problems = []
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        problems.append("spec.nonResourceAttributes: Invalid value: cannot be specified in "
                        "combination with resourceAttributes")
    if resource is None and non_resource is None:
        problems.append("spec.resourceAttributes: Invalid value: exactly one of "
                        "nonResourceAttributes or resourceAttributes must be specified")
    if needs_subject and not spec.get("user") and not spec.get("groups"):
        problems.append('spec.user: Invalid value: "": at least one of user or group must be '
                        "specified")
    return problems


def review_attributes(spec: Mapping[str, Any], user: str | None = None,
                      groups: Iterable[str] | None = None) -> RequestAttributes:
    """The attributes a SubjectAccessReview spec asks about; ``user``/``groups`` override the
    spec's (a SelfSubjectAccessReview asks for the requester)."""
    who = spec.get("user", "") if user is None else user
    their_groups = tuple(spec.get("groups") or ()) if groups is None else tuple(groups)
    if spec.get("nonResourceAttributes") is not None:
        attrs = spec["nonResourceAttributes"]
        return RequestAttributes(user=who, groups=their_groups, verb=attrs.get("verb", ""),
                                 path=attrs.get("path", ""))
    attrs = spec.get("resourceAttributes") or {}
    return RequestAttributes(user=who, groups=their_groups, verb=attrs.get("verb", ""),
                             api_group=attrs.get("group", ""), api_version=attrs.get("version", ""),
                             resource=attrs.get("resource", ""),
                             subresource=attrs.get("subresource", ""),
                             namespace=attrs.get("namespace", ""), name=attrs.get("name", ""),
                             resource_request=True)


def access_review_status(authorizer: RBACAuthorizer | None, attrs: RequestAttributes) -> dict:
    """``status`` of a SubjectAccessReview: the authorizer's decision (no authorizer: the
    server runs with AlwaysAllow)."""
    if authorizer is None:
        return {"allowed": True}
    decision = authorizer.authorize(attrs)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


def token_review_status(tokens: Mapping[str, tuple[str, Iterable[str]]] | None,
                        spec: Mapping[str, Any]) -> dict:
    """``status`` of a TokenReview: who the token is (valid for any audience asked for)."""
    identity = (tokens or {}).get(spec.get("token") or "")
    if identity is None:
        return {"authenticated": False, "user": {}, "error": "invalid bearer token"}
    user, groups = identity
    return {"authenticated": True, "user": {"username": user, "groups": with_authenticated(groups)},
            "audiences": list(spec.get("audiences") or [DEFAULT_AUDIENCE])}


def with_authenticated(groups: Iterable[str]) -> list[str]:
    """The groups of an authenticated user: the server adds ``system:authenticated``."""
    groups = list(groups)
    return groups if AUTHENTICATED in groups else [*groups, AUTHENTICATED]


# --- OwnerReferencesPermissionEnforcement ---------------------------------------------------

OwnerResources = Callable[[str, str], list[tuple[str, str, bool]]]
"""(apiVersion, kind) → the (group, resource, namespaced) it maps to, [] if unknown."""


def owner_reference_denial(authorizer: RBACAuthorizer, attrs: RequestAttributes,
                           new: Mapping[str, Any] | None, old: Mapping[str, Any] | None,
                           owner_resources: OwnerResources) -> str | None:
    """The 403 message of the ``OwnerReferencesPermissionEnforcement`` admission plugin for
    a create (``old`` None) or update of ``new`` by ``attrs``' user, or None if admitted.

    Changing ``ownerReferences`` of an existing object needs ``delete`` on it; adding a
    ``blockOwnerDeletion: true`` reference needs ``update`` on ``<owner>/finalizers``.
    """
    if not isinstance(new, Mapping) or attrs.verb not in ("create", "update", "patch"):
        return None
    if (attrs.api_group, attrs.resource, attrs.subresource) in _OWNER_REFERENCE_EXEMPT:
        return None
    new_refs = _owner_refs(new)
    old_refs = _owner_refs(old) if old is not None else []
    if new_refs == old_refs:  # nothing set on a create, nothing changed on an update
        return None
    name = attrs.name or (new.get("metadata") or {}).get("name") or ""
    denied = dataclasses.replace(attrs, name=name)
    if old is not None:
        delete = dataclasses.replace(attrs, verb="delete", path="")
        if not authorizer.authorize(delete).allowed:
            return _admission_forbidden(denied, "cannot set an ownerRef on a resource you can't "
                                                "delete: , <nil>")
    blocking_before = {ref.get("uid") for ref in old_refs if ref.get("blockOwnerDeletion")}
    for ref in new_refs:
        if not ref.get("blockOwnerDeletion") or ref.get("uid") in blocking_before:
            continue
        mappings = owner_resources(ref.get("apiVersion", ""), ref.get("kind", ""))
        if not mappings:
            return _admission_forbidden(
                denied, f"cannot set blockOwnerDeletion in this case because cannot find "
                        f"RESTMapping for APIVersion {ref.get('apiVersion')} Kind {ref.get('kind')}")
        for group, resource, namespaced in mappings:
            finalizers = RequestAttributes(
                user=attrs.user, groups=attrs.groups, verb="update", api_group=group,
                resource=resource, subresource="finalizers", name=ref.get("name", ""),
                namespace=attrs.namespace if namespaced else "", resource_request=True)
            if not authorizer.authorize(finalizers).allowed:
                return _admission_forbidden(
                    denied, "cannot set blockOwnerDeletion if an ownerReference refers to a "
                            "resource you can't set finalizers on: , <nil>")
    return None


def _owner_refs(obj: Mapping[str, Any]) -> list[dict]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [ref for ref in refs if isinstance(ref, dict)]


def _admission_forbidden(attrs: RequestAttributes, why: str) -> str:
    return f"{_qualified(attrs)} is forbidden: {why}"
