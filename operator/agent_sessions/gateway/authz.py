"""What a caller may do: SubjectAccessReview on the AgentSession the request names (§7).

Reading a session is `get agentsessions` (name-scoped), listing them is `list agentsessions`,
following a namespace's sessions (the status stream) is `watch agentsessions` on the namespace,
sending to a session and cancelling one's own turn is `create agentsessions/messages` (a
subresource no object has: it exists to be granted, e.g. `resources: ["agentsessions/messages"],
verbs: ["create"]`), cancelling a turn someone else started is `create agentsessions/cancel` too
(`turn_owner`), stopping, starting and restarting one is `patch agentsessions` (`state_api`).

Answers are cached per (user, groups, uid, extra, verb, subresource, namespace, name) for
`auth_cache_seconds` (10 s by default; `auth_cache_size` entries at most, least recently used out
first; concurrent misses share one review), so a WebSocket's frames for one session cost one review
per verb and TTL, whatever their number. What bounds the reviews for many *different* sessions is
the per-caller rate limit (`rate_limit`), on by default: every frame takes a token.
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
CANCEL_SUBRESOURCE = "cancel"


@dataclass(frozen=True)
class Permission:
    verb: str
    subresource: str = ""

    def describe(self) -> str:
        resource = f"{c.SESSION_PLURAL}/{self.subresource}" if self.subresource else c.SESSION_PLURAL
        return f"{self.verb} {resource}.{c.GROUP}"


READ = Permission("get")
LIST = Permission("list")
WATCH = Permission("watch")
SEND = Permission("create", MESSAGES_SUBRESOURCE)
CANCEL_ANY = Permission("create", CANCEL_SUBRESOURCE)
"""Cancel a turn the caller did not start (the caller's own need only SEND)."""
PATCH = Permission("patch")
"""Stop, start, restart a session (`state_api`: done with the caller's own token)."""

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


def forbidden(caller: Caller, permission: Permission, namespace: str, name: str = "") -> GatewayError:
    """403 `forbidden`, the same for a session that exists and one that does not (`service` answers
    a missing session with it too when the caller may not read it)."""
    target = SessionRef(namespace, name).to_json() if name else None
    where = f"{c.SESSION_SINGULAR} {namespace}/{name}" if name else f"namespace {namespace}"
    return GatewayError(FORBIDDEN, f"user {caller.user!r} may not {permission.describe()} ({where})",
                        session=target)


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
            raise forbidden(caller, permission, namespace, name)

    async def _review(self, caller: Caller, permission: Permission, namespace: str, name: str) -> bool:
        self.reviews += 1
        body = access_review(caller, permission, namespace, name)
        try:
            review = await client.AuthorizationV1Api(self.api).create_subject_access_review(
                body, _request_timeout=KUBE_REQUEST_SECONDS)
        except KUBE_FAILURES as exc:
            raise kube_failure(exc, "create subjectaccessreviews") from None
        return bool(review.status and review.status.allowed)
