"""Authentication and authorization as the server's filter chain does them (bearer tokens,
RBAC before routing), OwnerReferencesPermissionEnforcement on writes, and the TokenReview,
SubjectAccessReview and SelfSubjectAccessReview resources, answered and never stored."""

from __future__ import annotations

from aiohttp import web

from agent_sessions.dev.authorization import (
    RequestAttributes,
    access_review_errors,
    access_review_status,
    attributes_for,
    forbidden_details,
    owner_reference_denial,
    review_attributes,
    token_review_status,
    with_authenticated,
)
from agent_sessions.dev.object_store import ApiError, bad_request
from agent_sessions.dev.strict_api.codec import Target, decode_body, json_response
from agent_sessions.dev.strict_api.recorded import RecordedRequest


# Create-only resources answered from the authenticator and authorizer, never stored.
REVIEWS = (("authentication.k8s.io", "tokenreviews", "TokenReview"),
            ("authorization.k8s.io", "subjectaccessreviews", "SubjectAccessReview"),
            ("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview"))


class Access:
    """Who may do what on :class:`~agent_sessions.dev.strict_api.server.StrictKubernetesAPI`
    (a mixin: it uses the server's ``tokens``, ``authorizer``, store and catalogue)."""

    def _authorize(self, request: web.Request, record: RecordedRequest) -> RequestAttributes | None:
        """Authentication, then authorization, before routing (as the server's filter chain:
        an unknown resource is 403 to whom may not ask for it).  The request's attributes;
        None when the server runs without authentication, or the request carries no token and
        the server serves those as the admin (``tokenless_admin``)."""
        if self.tokens is None:
            return None
        scheme, _, rest = request.headers.get("Authorization", "").strip().partition(" ")
        token = rest.split(" ")[0] if scheme.lower() == "bearer" else ""
        identity = self.tokens.get(token) if token else None
        if identity is None:
            if not token and self.tokenless_admin:
                return None  # kube-apiserver's insecure port: neither authenticated nor authorized
            raise ApiError(401, "Unauthorized", "Unauthorized")
        record.user, record.groups = identity[0], tuple(with_authenticated(identity[1]))
        attrs = attributes_for(request.method, request.path, request.query, user=record.user,
                               groups=record.groups)
        if self.authorizer is not None:
            record.authorized, record.authorization_reason = self.authorizer.allowed(attrs)
            if not record.authorized:
                raise ApiError(403, "Forbidden", record.authorization_reason,
                               forbidden_details(attrs))
        return attrs

    def _admit_owner_references(self, request: web.Request, target: Target, raw: bytes,
                                content_type: str, attrs: RequestAttributes | None) -> None:
        """OwnerReferencesPermissionEnforcement for an authorized write (403 if it refuses)."""
        if attrs is None or self.authorizer is None or not self.enforce_owner_references:
            return
        rtype, namespace, name = target.rtype, target.namespace, target.name
        old = new = body = decode_body(raw, content_type, strict=False)
        if request.method == "POST":
            old = None
        else:
            try:  # the object as this write would leave it; a failing write fails on its own
                old = self.store.get(rtype, namespace, name or "")
                if request.method == "PATCH":
                    new = self.store.patch(rtype, namespace, name or "", content_type, body,
                                           subresource=target.subresource, dry_run=True)[0]
            except ApiError:
                return
        denial = owner_reference_denial(self.authorizer, attrs, new, old, self._owner_resources)
        if denial is not None:
            name = attrs.name or ((new or {}).get("metadata") or {}).get("name") or ""
            raise ApiError(403, "Forbidden", denial, forbidden_details(
                RequestAttributes(api_group=rtype.group, resource=rtype.plural, name=name)))

    def _owner_resources(self, api_version: str, kind: str) -> list[tuple[str, str, bool]]:
        group, _, version = api_version.rpartition("/")
        return [(t.group, t.plural, t.namespaced) for t in self.catalogue
                if (t.group, t.version, t.kind) == (group, version, kind)]

    def _review(self, request: web.Request, target: Target, raw: bytes, content_type: str,
                requester: RequestAttributes | None) -> web.Response:
        """TokenReview, SubjectAccessReview and SelfSubjectAccessReview: answered, not stored."""
        rtype = target.rtype
        if request.method != "POST" or target.name is not None:
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        body = decode_body(raw, content_type)
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request must be a {rtype.kind} object")
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        if rtype.plural == "tokenreviews":
            if not spec.get("token"):
                raise bad_request("token is required for TokenReview in authentication")
            status = token_review_status(self.tokens, spec)
        else:
            self_review = rtype.plural == "selfsubjectaccessreviews"
            problems = access_review_errors(spec, needs_subject=not self_review)
            if problems:
                summary = problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]"
                raise ApiError(422, "Invalid", f'{rtype.qualified_kind} "" is invalid: {summary}',
                               {"group": rtype.group, "kind": rtype.kind})
            requester = requester or RequestAttributes()
            asked = (review_attributes(spec, requester.user, requester.groups) if self_review
                     else review_attributes(spec))
            status = access_review_status(self.authorizer, asked)
        review = {**body, "apiVersion": rtype.api_version, "kind": rtype.kind,
                  "metadata": body.get("metadata") or {"creationTimestamp": None},
                  "spec": spec, "status": status}
        return json_response(review, status=201)
