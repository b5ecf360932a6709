"""Who the caller is and what it may do: `GET /v1/whoami`, `GET /v1/namespaces`,
`GET /v1/namespaces/{ns}/access` and `GET …/sessions/{name}/access`.

A UI shows no button for what its user may not do, so it asks first. Every answer is the
cluster's: TokenReview for who, SubjectAccessReviews (the cached ones every request makes,
`authz`) for what. Asking about oneself needs only a valid token, as `kubectl auth can-i` does.

Which namespaces: Kubernetes has no "namespaces I may list agentsessions in" query, and listing
Namespaces would need a broad right the gateway does not have (nor should). So the gateway offers
the namespaces it is told it serves (`--namespace`, `GatewayOptions.namespaces`), else those that
hold at least one AgentSession — found with its own cluster-wide `list agentsessions`, which it
already has for the status stream, in one paged list kept `namespaces_cache_seconds` per replica
(a gateway whose RBAC is per namespace, unable to list cluster-wide, offers none and says so in
its log) — and the caller gets those it may `list agentsessions` in: one review when it may do so
cluster-wide, else one per namespace (cached). A namespace without sessions is not offered unless
configured; a UI lets its user type one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from .authn import Caller, bearer_token
from .authz import CANCEL_ANY, LIST, PATCH, READ, SEND, WATCH, Permission
from .service import SERVICE, GatewayService, check_names
from .ttl_cache import TTLCache

logger = logging.getLogger(__name__)

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
    """The namespaces offered: the configured ones, else those holding AgentSessions, kept `ttl`
    seconds (one list for all callers)."""

    def __init__(self, configured: tuple[str, ...], ttl: float) -> None:
        self.configured = sorted(set(configured))
        self.cache = TTLCache[str, list[str]](ttl, 1)
        self.warned = False

    async def get(self, service: GatewayService) -> list[str]:
        if self.configured:
            return self.configured
        return await self.cache.get_or_load("", lambda: self._list(service))

    async def _list(self, service: GatewayService) -> list[str]:
        found = await service.directory.namespaces()
        if found is None:
            if not self.warned:
                logger.warning("the gateway may not list agentsessions cluster-wide: GET /v1/namespaces offers "
                               "no namespace; give the namespaces it serves with --namespace")
                self.warned = True
            return []
        return found


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
    options = app[SERVICE].options
    app[NAMESPACES] = NamespaceIndex(options.namespaces, options.namespaces_cache_seconds)
    app.router.add_get("/v1/whoami", whoami)
    app.router.add_get("/v1/namespaces", list_namespaces)
    app.router.add_get("/v1/namespaces/{namespace}/access", access)
    app.router.add_get(sessions + "/{name}/access", access)
