"""The gateway's operations, shared by its HTTP and WebSocket front ends.

Order of checks, for every request that names a session (so that a caller learns nothing about a
session it may not see): authenticate (401) → rate limit (429) → check the names (422) → authorize
on the namespace and name asked for (403) → only then read the session (404, 409, …). A 404
therefore only ever reaches callers allowed to `get` the session.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from kubernetes_asyncio import client

from agent_sessions.wire.runtime_client import RuntimeClient, RuntimeTimeouts
from agent_sessions.wire.session_ref import SessionRef

from .authn import Caller, TokenReviewer
from .authz import AccessKey, AccessReviewer, Permission
from .errors import INVALID_REQUEST, RATE_LIMITED, GatewayError, runtime_failure
from .feed import FeedRegistry
from .kube_errors import KUBE_FAILURES
from .options import GatewayOptions
from .rate_limit import RateLimiter
from .session_directory import SessionDirectory
from .session_view import endpoint_of, is_serving
from .ttl_cache import TTLCache
from .wake import SessionWaker, not_running

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
READY_CACHE_SECONDS = 5.0


def check_names(namespace: str, name: str | None = None) -> None:
    """422 for names Kubernetes could not hold (before they reach an access review)."""
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise GatewayError(INVALID_REQUEST, f"invalid namespace: {namespace!r}")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        raise GatewayError(INVALID_REQUEST, f"invalid session name: {name!r}")


class GatewayService:
    def __init__(self, options: GatewayOptions, api: client.ApiClient, http: aiohttp.ClientSession) -> None:
        self.options = options
        self.api = api
        self.http = http
        ttl, size = options.auth_cache_seconds, options.auth_cache_size
        self.authn = TokenReviewer(api, TTLCache[str, Caller | None](ttl, size))
        self.authz = AccessReviewer(api, TTLCache[AccessKey, bool](ttl, size))
        self.limiter = RateLimiter(options.rate_limit_per_second, options.rate_limit_burst)
        self.directory = SessionDirectory(api)
        timeouts = RuntimeTimeouts.of(connect_seconds=options.upstream_connect_seconds,
                                      request_seconds=options.upstream_request_seconds)
        self.runtime = RuntimeClient(http, timeouts=timeouts, failure=runtime_failure)
        self.feeds = FeedRegistry(self.runtime, options.history_poll_seconds, options.history_page_size)
        self.waker = SessionWaker(self.directory, self.runtime, timeout=options.wake_timeout_seconds,
                                  operator_defaults=options.operator_defaults)
        self._ready_at = 0.0
        self.closing = False

    async def close(self) -> None:
        self.closing = True
        await self.feeds.close()

    # -- who may do what --------------------------------------------------------------------

    async def caller(self, token: str | None) -> Caller:
        """Authenticate, then take a token from the caller's rate-limit bucket."""
        caller = await self.authn.authenticate(token)
        self.rate_limit(caller)
        return caller

    def rate_limit(self, caller: Caller) -> None:
        wait = self.limiter.check(caller.user)
        if wait > 0:
            raise GatewayError(RATE_LIMITED, f"too many requests from {caller.user!r}; retry in {wait:.1f}s",
                               retry_after=wait)

    async def authorize(self, caller: Caller, permission: Permission, namespace: str, name: str | None = None) -> None:
        check_names(namespace, name)
        await self.authz.require(caller, permission, namespace, name or "")

    # -- sessions ---------------------------------------------------------------------------

    async def session(self, namespace: str, name: str) -> dict[str, Any]:
        return await self.directory.get(namespace, name)

    async def serving(self, namespace: str, name: str) -> tuple[dict[str, Any], SessionRef, str]:
        """The session, its identity and endpoint; 409 unless it is Running with an endpoint
        (reads, events and cancel never wake a session)."""
        obj = await self.directory.get(namespace, name)
        if not is_serving(obj):
            raise not_running(obj)
        return obj, SessionRef.of(obj), endpoint_of(obj) or ""

    async def for_message(self, namespace: str, name: str) -> tuple[dict[str, Any], SessionRef, str]:
        """Like `serving`, but a session stopped for idleness is woken first (see `wake`)."""
        obj = await self.waker.deliverable(await self.directory.get(namespace, name))
        return obj, SessionRef.of(obj), endpoint_of(obj) or ""

    # -- readiness --------------------------------------------------------------------------

    async def ready(self) -> bool:
        """Ready while the Kubernetes API answers (checked at most every few seconds)."""
        if self.closing:
            return False
        now = time.monotonic()
        if now - self._ready_at < READY_CACHE_SECONDS:
            return True
        try:
            await client.VersionApi(self.api).get_code(_request_timeout=5)
        except KUBE_FAILURES:
            return False
        self._ready_at = now
        return True


def query_int(query: Mapping[str, str], name: str) -> int | None:
    """A non-negative integer query parameter, or None; 422 otherwise."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise GatewayError(INVALID_REQUEST, f"{name} must be a non-negative integer, got {raw!r}") from None
    if value < 0:
        raise GatewayError(INVALID_REQUEST, f"{name} must be a non-negative integer, got {raw!r}")
    return value


SERVICE: web.AppKey[GatewayService] = web.AppKey("gateway", GatewayService)
