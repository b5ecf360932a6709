"""Who the caller is and what it may do: `GET /v1/whoami`, `GET /v1/namespaces`,
`GET /v1/namespaces/{ns}/access` and `GET …/sessions/{name}/access`.

A UI shows no button for what its user may not do, so it asks first. Every answer is the
cluster's: TokenReview for who, SubjectAccessReviews (the cached ones every request makes,
`authz`) for what. Asking about oneself needs only a valid token, as `kubectl auth can-i` does.

Which namespaces: Kubernetes has no "namespaces I may list agentsessions in" query, and listing
Namespaces would need a broad right the gateway does not have (nor should). So the gateway offers
the namespaces that hold at least one AgentSession — found with its own cluster-wide `list
agentsessions`, which it already has for the status stream, in one paged list kept
`namespaces_cache_seconds` per replica — of which the caller gets those it may `list
agentsessions` in: one review when it may do so cluster-wide, else one per namespace (cached). A
namespace without sessions is not offered; a UI lets its user type one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .authn import Caller, bearer_token
from .authz import CANCEL_ANY, LIST, PATCH, READ, SEND, WATCH, Permission
from .service import SERVICE, GatewayService, check_names
from .ttl_cache import TTLCache

ACCESS: dict[str, Permission] = {"get": READ, "list": LIST, "watch": WATCH, "patch": PATCH, "send": SEND,
                                 "cancel": CANCEL_ANY}
"""The rights an `access` answer reports, by the name it gives them."""
NAMESPACE_REVIEWS_AT_ONCE = 16


async def whoami(request: web.Request) -> web.Response:
    service: GatewayService = request.app[SERVICE]
    caller = await service.caller(bearer_token(request.headers))
    return web.json_response({"user": caller.user, "groups": list(caller.groups)})


async def allowed(service: GatewayService, caller: Caller, namespace: str, name: str = "") -> dict[str, bool]:
    """What `caller` may do on the session `name` (or the namespace's sessions), by `ACCESS` name."""
    answers = await asyncio.gather(*(service.authz.allowed(caller, permission, namespace, name)
                                     for permission in ACCESS.values()))
    return dict(zip(ACCESS, answers))


async def access(request: web.Request) -> web.Response:
    service: GatewayService = request.app[SERVICE]
    namespace, name = request.match_info["namespace"], request.match_info.get("name")
    caller = await service.caller(bearer_token(request.headers))
    check_names(namespace, name)
    return web.json_response({"namespace": namespace, "name": name,
                              "allowed": await allowed(service, caller, namespace, name or "")})


class NamespaceIndex:
    """The namespaces holding AgentSessions, kept `ttl` seconds (one list for all callers)."""

    def __init__(self, ttl: float) -> None:
        self.cache = TTLCache[str, list[str]](ttl, 1)

    async def get(self, service: GatewayService) -> list[str]:
        return await self.cache.get_or_load("", service.directory.namespaces)


NAMESPACES: web.AppKey[NamespaceIndex] = web.AppKey("namespaces", NamespaceIndex)


async def list_namespaces(request: web.Request) -> web.Response:
    service: GatewayService = request.app[SERVICE]
    caller = await service.caller(bearer_token(request.headers))
    candidates = await request.app[NAMESPACES].get(service)
    if await service.authz.allowed(caller, LIST, ""):  # cluster-wide: every namespace, one review
        names = candidates
    else:
        limit = asyncio.Semaphore(NAMESPACE_REVIEWS_AT_ONCE)

        async def may_list(namespace: str) -> bool:
            async with limit:
                return await service.authz.allowed(caller, LIST, namespace)

        answers = await asyncio.gather(*(may_list(namespace) for namespace in candidates))
        names = [namespace for namespace, yes in zip(candidates, answers) if yes]
    body: dict[str, Any] = {"items": [{"name": namespace} for namespace in names]}
    return web.json_response(body)


def add_access_routes(app: web.Application, sessions: str) -> None:
    app[NAMESPACES] = NamespaceIndex(app[SERVICE].options.namespaces_cache_seconds)
    app.router.add_get("/v1/whoami", whoami)
    app.router.add_get("/v1/namespaces", list_namespaces)
    app.router.add_get("/v1/namespaces/{namespace}/access", access)
    app.router.add_get(sessions + "/{name}/access", access)
