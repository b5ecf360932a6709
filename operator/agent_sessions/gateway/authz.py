"""What a caller may do: SubjectAccessReview on the AgentSession the request names (§7).

Reading a session is `get agentsessions` (name-scoped), listing them is `list agentsessions`,
sending to or cancelling a session is `create agentsessions/messages` (a subresource no object
has: it exists to be granted, e.g. `resources: ["agentsessions/messages"], verbs: ["create"]`).
The review is made for the caller's user, groups, uid and extra — exactly what an impersonated
request would be authorized as — so the cluster's RBAC (or any authorizer) decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client

from agent_sessions.api import constants as c
from agent_sessions.wire.session_ref import SessionRef

from .authn import Caller
from .errors import FORBIDDEN, GatewayError
from .kube_errors import KUBE_FAILURES, KUBE_REQUEST_SECONDS, kube_failure
from .ttl_cache import TTLCache

MESSAGES_SUBRESOURCE = "messages"


@dataclass(frozen=True)
class Permission:
    verb: str
    subresource: str = ""

    def describe(self) -> str:
        resource = f"{c.SESSION_PLURAL}/{self.subresource}" if self.subresource else c.SESSION_PLURAL
        return f"{self.verb} {resource}.{c.GROUP}"


READ = Permission("get")
LIST = Permission("list")
SEND = Permission("create", MESSAGES_SUBRESOURCE)

AccessKey = tuple[Caller, Permission, str, str]


def access_review(caller: Caller, permission: Permission, namespace: str, name: str = "") -> dict[str, Any]:
    """The SubjectAccessReview asking whether `caller` may do `permission` on a session."""
    attributes: dict[str, Any] = {"namespace": namespace, "verb": permission.verb, "group": c.GROUP,
                                  "version": c.VERSION, "resource": c.SESSION_PLURAL}
    if permission.subresource:
        attributes["subresource"] = permission.subresource
    if name:
        attributes["name"] = name
    spec: dict[str, Any] = {"user": caller.user, "groups": list(caller.groups), "resourceAttributes": attributes}
    if caller.uid:
        spec["uid"] = caller.uid
    if caller.extra:
        spec["extra"] = caller.extra_json()
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


class AccessReviewer:
    def __init__(self, api: client.ApiClient, cache: TTLCache[AccessKey, bool]) -> None:
        self.api = api
        self.cache = cache
        self.reviews = 0
        """SubjectAccessReviews made (the rest were answered from the cache)."""

    async def allowed(self, caller: Caller, permission: Permission, namespace: str, name: str = "") -> bool:
        key: AccessKey = (caller, permission, namespace, name)
        return await self.cache.get_or_load(key, lambda: self._review(caller, permission, namespace, name))

    async def require(self, caller: Caller, permission: Permission, namespace: str, name: str = "") -> None:
        """403 `forbidden` unless allowed. Asked before the session is looked up, so a caller who
        may not read a session cannot learn whether it exists."""
        if not await self.allowed(caller, permission, namespace, name):
            target = SessionRef(namespace, name).to_json() if name else None
            where = f"{c.SESSION_SINGULAR} {namespace}/{name}" if name else f"namespace {namespace}"
            raise GatewayError(FORBIDDEN, f"user {caller.user!r} may not {permission.describe()} ({where})",
                               session=target)

    async def _review(self, caller: Caller, permission: Permission, namespace: str, name: str) -> bool:
        self.reviews += 1
        body = access_review(caller, permission, namespace, name)
        try:
            review = await client.AuthorizationV1Api(self.api).create_subject_access_review(
                body, _request_timeout=KUBE_REQUEST_SECONDS)
        except KUBE_FAILURES as exc:
            raise kube_failure(exc, "create subjectaccessreviews") from None
        return bool(review.status and review.status.allowed)
