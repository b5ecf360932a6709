"""The gateway's operations, shared by its HTTP and WebSocket front ends.

Order of checks, for every request that names a session (so that a caller learns nothing about a
session it may not see): authenticate (401) → rate limit (429) → check the names (422) → authorize
on the namespace and name asked for (403) → only then look the session up (the serving index, else
a read: 404, 409, …). A 404
therefore only ever reaches callers allowed to `get` the session: a sender who may not `get` it
(`create agentsessions/messages` alone) is answered a missing session with the very 403 a session
it may not send to gets, and a session that is not running without its phase (`as_seen_by`).

Cancel stops only a turn the caller started, unless the caller may `create agentsessions/cancel`
(`turn_owner`).

Every call to a session's runtime carries that session's runtime token, derived from the runtime
key (`runtime_key`, read from the operator's Secret by `keep_runtime_key`) and the uid of the
AgentSession the gateway just read; the gateway is not ready until it holds the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from kubernetes_asyncio import client

from agent_sessions.wire.credentials import session_token
from agent_sessions.wire.frames import EVENT_USER_MESSAGE, Frame, frame_seq, message_id_of
from agent_sessions.wire.runtime_client import RuntimeClient, RuntimeTimeouts
from agent_sessions.wire.runtime_key import RuntimeKeyMissing, read_runtime_key
from agent_sessions.wire.session_ref import SessionRef

from .authn import Caller, TokenReviewer
from .authz import CANCEL_ANY, READ, SEND, AccessKey, AccessReviewer, Permission, forbidden
from .errors import (
    FORBIDDEN,
    INVALID_REQUEST,
    PROVIDER_UNAVAILABLE,
    RATE_LIMITED,
    SESSION_NOT_FOUND,
    SESSION_NOT_RUNNING,
    GatewayError,
    runtime_failure,
)
from . import metrics
from .feed import FeedRegistry, SessionTail
from .kube_errors import KUBE_FAILURES
from .options import GatewayOptions
from .rate_limit import RateLimiter
from .serving_index import ServingIndex
from .session_directory import SessionDirectory
from .session_view import endpoint_of, is_serving
from .ttl_cache import TTLCache
from .turn_owner import owned, started_by
from .wake import SessionWaker, not_running

logger = logging.getLogger(__name__)

T = TypeVar("T")

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
READY_CACHE_SECONDS = 5.0
TURN_SCAN_PAGE = 200
TURN_SCAN_PAGES = 25
"""Looking for the running turn's `user_message`, history is read backwards this many frames at a
time, this many times at most (a turn of more frames counts as not the caller's)."""


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
        self.index = ServingIndex(api)
        timeouts = RuntimeTimeouts.of(connect_seconds=options.upstream_connect_seconds,
                                      request_seconds=options.upstream_request_seconds)
        self.runtime_key: bytes | None = None
        """The runtime key (never logged); None until `keep_runtime_key` has read it."""
        self.runtime = RuntimeClient(http, timeouts=timeouts, failure=runtime_failure, token_for=self._runtime_token)
        self.feeds = FeedRegistry(self.runtime, options.history_poll_seconds, options.history_page_size)
        self.waker = SessionWaker(self.directory, self.runtime, timeout=options.wake_timeout_seconds,
                                  operator_defaults=options.operator_defaults,
                                  key=lambda: getattr(self, "runtime_key", None))
        self._ready_at = 0.0
        self.closing = False

    async def close(self) -> None:
        self.closing = True
        await self.feeds.close()
        await self.index.close()

    # -- the runtime key --------------------------------------------------------------------

    def _runtime_token(self, uid: str) -> str | None:
        key = self.runtime_key
        return session_token(key, uid) if key is not None else None

    async def keep_runtime_key(self) -> None:
        """Read the runtime key Secret, again every `runtime_key_retry_seconds` until it exists
        (the operator creates it on its first start) and the gateway may read it."""
        while not await self.read_runtime_key_once():
            await asyncio.sleep(self.options.runtime_key_retry_seconds)

    async def read_runtime_key_once(self) -> bool:
        """One attempt at reading the runtime key; whether the gateway holds it now (or needs none)."""
        secret = self.options.runtime_key_secret
        if self.runtime_key is not None or not secret:
            return True
        namespace, _, name = secret.partition("/")
        try:
            self.runtime_key = await read_runtime_key(self.api, namespace, name)
        except RuntimeKeyMissing as missing:
            logger.info("waiting for the runtime key: %s", missing)
            return False
        except KUBE_FAILURES as exc:
            logger.warning("cannot read the runtime key Secret %s (%s): retrying", secret,
                           getattr(exc, "status", None) or type(exc).__name__)
            return False
        logger.info("runtime key read from Secret %s", secret)
        return True

    # -- who may do what --------------------------------------------------------------------

    async def caller(self, token: str | None) -> Caller:
        """Authenticate, then take a token from the caller's rate-limit bucket."""
        caller = await self.authn.authenticate(token)
        self.rate_limit(caller)
        return caller

    def rate_limit(self, caller: Caller) -> None:
        wait = self.limiter.check(caller.user)
        if wait > 0:
            shown = math.ceil(wait * 10) / 10  # never "retry in 0.0s"
            raise GatewayError(RATE_LIMITED, f"too many requests from {caller.user!r}; retry in {shown:.1f}s",
                               retry_after=wait)

    async def authorize(self, caller: Caller, permission: Permission, namespace: str, name: str | None = None) -> None:
        check_names(namespace, name)
        await self.authz.require(caller, permission, namespace, name or "")

    # -- sessions ---------------------------------------------------------------------------

    async def session(self, namespace: str, name: str) -> dict[str, Any]:
        return await self.directory.get(namespace, name)

    async def reach(self, caller: Caller, namespace: str, name: str, call: Callable[[SessionRef, str], Awaitable[T]],
                    *, permission: Permission = READ, wake: bool = False) -> tuple[SessionRef, str, T]:
        """`call(ref, endpoint)` on the session's runtime, and the session's identity and endpoint;
        409 unless it is Running with an endpoint — with `wake` (messages), a session stopped for
        idleness is woken first (see `wake`); reads, events and cancel never wake one. `permission`
        is what the caller was authorized for (what a caller who may not read the session is told
        it may not do).

        Where the session serves comes from the serving index when it knows, else from a read of
        the session. The index follows a watch, so a client that read the session's new status
        itself can be ahead of it — right after a restart, the new pod's endpoint is in the status
        the client saw, the old one still in the index until the watch event arrives. So a call to
        an endpoint from the index that did nothing (`GatewayError.not_taken`: unreachable, 401,
        404) is made once more, to the endpoint the session has now, when that is another one."""
        indexed = self.index.lookup(namespace, name)
        if indexed is None:
            target = await self._read(caller, namespace, name, permission, wake)
        else:
            uid, endpoint = indexed
            ref = SessionRef(namespace, name, uid)
            try:
                return ref, endpoint, await call(ref, endpoint)
            except GatewayError as exc:
                if exc.code != PROVIDER_UNAVAILABLE:
                    raise  # the runtime answered: busy, an invalid message
                self.index.forget(namespace, name, indexed)
                if not exc.not_taken:
                    raise
                target = await self._read(caller, namespace, name, permission, wake)
                if target == (ref, endpoint):
                    raise
                metrics.SESSION_LOOKUPS.labels("stale").inc()
                logger.debug("%s/%s: the endpoint the index had (%s) did not take the call (%s); now at %s",
                             namespace, name, endpoint, exc.message, target[1])
        return (*target, await call(*target))

    async def _read(self, caller: Caller, namespace: str, name: str, permission: Permission,
                    wake: bool) -> tuple[SessionRef, str]:
        """The session's identity and endpoint as the API server has them (see `reach`)."""
        try:
            obj = await self.directory.get(namespace, name)
            if wake:
                obj = await self.waker.deliverable(obj, caller.user)
            elif not is_serving(obj):
                raise not_running(obj)
        except GatewayError as exc:
            raise await self.as_seen_by(caller, permission, namespace, name, exc) from None
        return SessionRef.of(obj), endpoint_of(obj) or ""

    async def message(self, caller: Caller, namespace: str, name: str, message: Mapping[str, Any]) -> dict[str, Any]:
        """One turn, answered when it ends (a session stopped for idleness is woken first)."""
        _, _, answer = await self.reach(caller, namespace, name,
                                        lambda ref, endpoint: self.runtime.send(endpoint, ref, message),
                                        permission=SEND, wake=True)
        return answer

    async def open_turn(self, stack: contextlib.AsyncExitStack, caller: Caller, namespace: str, name: str,
                        message: Mapping[str, Any]) -> tuple[SessionRef, str, AsyncIterator[Frame]]:
        """One turn, streamed, held open by `stack`: the session, its endpoint, the turn's frames.
        Raises what the runtime answered instead of taking the turn (see `RuntimeClient.stream`)."""
        return await self.reach(
            caller, namespace, name,
            lambda ref, endpoint: stack.enter_async_context(self.runtime.stream(endpoint, ref, message)),
            permission=SEND, wake=True)

    async def open_tail(self, stack: contextlib.AsyncExitStack, caller: Caller, namespace: str, name: str,
                        after_seq: int | None) -> tuple[SessionTail, int]:
        """The session's tail after `after_seq` (see `SessionTail`), attached and closed by `stack`,
        and the seq it starts after."""
        async def attach(ref: SessionRef, endpoint: str) -> tuple[SessionTail, int]:
            tail = SessionTail(self.feeds, ref, endpoint, after_seq)
            start = await tail.open()
            stack.push_async_callback(tail.close)
            return tail, start

        _, _, opened = await self.reach(caller, namespace, name, attach)
        return opened

    async def as_seen_by(self, caller: Caller, permission: Permission, namespace: str, name: str,
                         error: GatewayError) -> GatewayError:
        """`error` as a caller who may not `get` the session may see it: a missing (or deleted)
        session is the 403 of a session it may not use, a session not running says no more than
        that. Callers who may read the session get `error` as it is. Costs a (cached) review only
        when the session is missing or not running."""
        if error.code not in (SESSION_NOT_FOUND, SESSION_NOT_RUNNING):
            return error
        if await self.authz.allowed(caller, READ, namespace, name):
            return error
        if error.code == SESSION_NOT_FOUND:
            return forbidden(caller, permission, namespace, name)
        return GatewayError(SESSION_NOT_RUNNING, f"session {namespace}/{name} is not running",
                            session=error.session)

    # -- turns ------------------------------------------------------------------------------

    def owned_message(self, caller: Caller, message: dict[str, Any]) -> dict[str, Any]:
        """The message as the runtime is to get it: its id says who sent it (`turn_owner`)."""
        return owned(message, caller.user)

    async def cancel(self, caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        """Stop the session's running turn: `{"session", "cancelled"}`. The caller (authorized to
        send) may stop a turn it started; anyone else's needs `create agentsessions/cancel` (403)."""
        ref, endpoint, info = await self.reach(
            caller, namespace, name, lambda ref, endpoint: self.runtime.info(endpoint, ref), permission=SEND)
        if info.state != "busy":
            return {"session": ref.to_json(), "cancelled": False}
        message_id = await self.running_message_id(endpoint, ref, info.last_seq)
        if not started_by(message_id, caller.user) and not await self.authz.allowed(caller, CANCEL_ANY, namespace, name):
            raise GatewayError(FORBIDDEN, f"the turn running on {ref} was not started by user {caller.user!r}; "
                               f"cancelling it needs {CANCEL_ANY.describe()}", session=ref.to_json())
        return await self.runtime.cancel(endpoint, ref)

    async def running_message_id(self, endpoint: str, ref: SessionRef, last_seq: int | None) -> str | None:
        """The message id of the running turn: the runtime runs one turn at a time and records its
        `user_message` first, so it is the last `user_message` up to `last_seq`."""
        end = last_seq or 0
        for _ in range(TURN_SCAN_PAGES):
            if end <= 0:
                return None
            after = max(0, end - TURN_SCAN_PAGE)
            items, _ = await self.runtime.history(endpoint, ref, after, end - after)
            for frame in reversed(items):
                if frame.get("event") == EVENT_USER_MESSAGE and (frame_seq(frame) or 0) <= end:
                    return message_id_of(frame)
            end = after
        return None

    # -- readiness --------------------------------------------------------------------------

    async def ready(self) -> bool:
        """Ready while the Kubernetes API answers (checked at most every few seconds), once the
        runtime key is held (when one is configured)."""
        if self.closing or (self.options.runtime_key_secret and self.runtime_key is None):
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
