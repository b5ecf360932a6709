"""The gateway's HTTP API (§7). See the package docstring for the endpoints and their answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from agent_sessions.wire.frames import EVENT_DONE, EVENT_ERROR, Frame
from agent_sessions.wire.message_request import InvalidMessage, check_declared_size, parse_message, read_limited
from agent_sessions.wire.session_ref import SessionRef
from agent_sessions.wire.sse import open_event_stream, relay, wants_stream

from . import metrics
from .access_api import add_access_routes
from .authn import bearer_token
from .authz import LIST, READ, SEND
from .config_api import add_config_routes
from .console import add_console_routes
from .errors import (
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    REQUEST_TIMEOUT,
    GatewayError,
    error_body,
    invalid_message,
    stream_error_frame,
)
from .providers_api import add_provider_routes
from .service import SERVICE, GatewayService, query_int
from .session_view import detail, endpoint_of, is_serving, summary
from .state_api import add_state_routes
from .status_stream import install_status_streams, wants_watch, watch_sessions
from .websocket import websocket

logger = logging.getLogger(__name__)

_dumps = partial(json.dumps, ensure_ascii=False)
SESSIONS = "/v1/namespaces/{namespace}/sessions"
SESSION = SESSIONS + "/{name}"


def _service(request: web.Request) -> GatewayService:
    return request.app[SERVICE]


def error_response(error: GatewayError) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=error.headers(), dumps=_dumps)


@web.middleware
async def json_errors(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every error as `{"code", "message", "session"}`; requests counted by route and status."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await handler(request)
    except GatewayError as exc:
        response = error_response(exc)
        if exc.code == REQUEST_TIMEOUT:
            # Sent, then the connection closed: neither kept alive nor lingered on (aiohttp would
            # go on reading the rest of the unread body for its lingering time).
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()
    except web.HTTPNotFound:
        response = web.json_response(error_body(NOT_FOUND, f"no such endpoint: {request.path}"), status=404)
    except web.HTTPMethodNotAllowed as exc:
        response = web.json_response(
            error_body(METHOD_NOT_ALLOWED, f"{request.method} is not allowed on {request.path}",
                       allowed=sorted(exc.allowed_methods)), status=405)
    except (asyncio.CancelledError, web.HTTPException):
        raise
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        response = web.json_response(error_body(INTERNAL_ERROR, "the gateway failed; see its logs"), status=500)
    metrics.REQUESTS.labels(route, str(response.status)).inc()
    return response


# -- operations ---------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready = await _service(request).ready()
    return web.json_response({"status": "ok" if ready else "unavailable"}, status=200 if ready else 503)


async def prometheus(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(REGISTRY))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


def metrics_app() -> web.Application:
    """The metrics listener's application: `/metrics` alone (`GatewayOptions.metrics_port`)."""
    app = web.Application()
    app.router.add_get("/metrics", prometheus)
    return app


# -- sessions -----------------------------------------------------------------------------------


async def list_sessions(request: web.Request) -> web.StreamResponse:
    if wants_watch(request):  # ?watch=true: the session-status stream (`status_stream`)
        return await watch_sessions(request)
    service, namespace = _service(request), request.match_info["namespace"]
    caller = await service.caller(bearer_token(request.headers))
    await service.authorize(caller, LIST, namespace)
    items = await service.directory.list(namespace)
    items.sort(key=lambda obj: obj["metadata"]["name"])
    return web.json_response({"namespace": namespace, "items": [summary(obj) for obj in items]}, dumps=_dumps)


async def get_session(request: web.Request) -> web.Response:
    service = _service(request)
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    caller = await service.caller(bearer_token(request.headers))
    await service.authorize(caller, READ, namespace, name)
    after_seq = query_int(request.query, "after_seq") or 0
    limit = query_int(request.query, "limit")
    obj = await service.session(namespace, name)
    view = summary(obj)
    body: dict[str, Any] = {"session": view["session"], "info": view, "detail": detail(obj), "runtime": None,
                            "items": [], "lastSeq": None}
    if is_serving(obj):
        ref, endpoint = SessionRef.of(obj), endpoint_of(obj) or ""
        body["runtime"] = (await service.runtime.info(endpoint, ref)).tagged(ref)
        body["items"], body["lastSeq"] = await service.runtime.history(endpoint, ref, after_seq, limit)
    return web.json_response(body, dumps=_dumps)


async def post_message(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    stream = wants_stream(request)
    started = asyncio.get_running_loop().time()
    code = "ok"
    try:
        limit = service.options.max_message_bytes
        try:
            check_declared_size(request, limit)
            caller = await service.caller(bearer_token(request.headers))
            await service.authorize(caller, SEND, namespace, name)
            message = parse_message(await read_body(request, limit, service.options.body_timeout_seconds))
        except InvalidMessage as exc:
            raise invalid_message(exc) from None
        message = service.owned_message(caller, message)
        if not stream:
            return web.json_response(await service.message(caller, namespace, name, message), dumps=_dumps)
        async with contextlib.AsyncExitStack() as turn:
            ref, endpoint, frames = await service.open_turn(turn, caller, namespace, name, message)
            response = await open_event_stream(request)
            try:
                last = await relay(response, frames, service.options.keepalive_seconds,
                                   on_frame=partial(service.feeds.publish, ref, endpoint))
                code = _outcome(last)
            except GatewayError as exc:
                code = exc.code
                await relay(response, _one(stream_error_frame(exc, ref.to_json())), service.options.keepalive_seconds)
            await response.write_eof()
            return response
    except GatewayError as exc:
        code = exc.code
        raise
    except asyncio.CancelledError:
        code = "client_closed"
        raise
    finally:
        metrics.MESSAGES.labels(code).inc()
        metrics.MESSAGE_SECONDS.labels("stream" if stream else "sync").observe(
            asyncio.get_running_loop().time() - started)


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The message body (at most `limit` bytes), read within `timeout` seconds; 408
    `request_timeout` for a client sending it slower (a slow body holds a connection as a slow
    head would, see `slow_clients`)."""
    try:
        async with asyncio.timeout(timeout if timeout > 0 else None):
            return await read_limited(request, limit)
    except TimeoutError:
        raise GatewayError(REQUEST_TIMEOUT, f"the message body was not received within {timeout:g}s") from None


def _outcome(last: Frame | None) -> str:
    if last is None:
        return "provider_unavailable"
    if last.get("event") == EVENT_ERROR:
        return str(last.get("code") or "error")
    return "ok" if last.get("event") == EVENT_DONE else "provider_unavailable"


async def _one(frame: Frame):  # type: ignore[no-untyped-def]
    yield frame


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or raw.strip() == "":
        return None
    return query_int({"Last-Event-ID": raw.strip()}, "Last-Event-ID")


async def get_events(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    caller = await service.caller(bearer_token(request.headers))
    await service.authorize(caller, READ, namespace, name)
    resume = _last_event_id(request)  # a reconnecting browser's position wins over the URL's
    after_seq = resume if resume is not None else query_int(request.query, "after_seq")
    async with contextlib.AsyncExitStack() as held:
        tail, _ = await service.open_tail(held, caller, namespace, name, after_seq)
        metrics.OPEN_STREAMS.labels("events").inc()
        try:
            response = await open_event_stream(request)
            try:
                await relay(response, tail.frames(), service.options.keepalive_seconds)
            except GatewayError as exc:
                await relay(response, _one(stream_error_frame(exc, tail.session.to_json())),
                            service.options.keepalive_seconds)
            await response.write_eof()
            return response
        finally:
            metrics.OPEN_STREAMS.labels("events").dec()


async def post_cancel(request: web.Request) -> web.Response:
    service = _service(request)
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    caller = await service.caller(bearer_token(request.headers))
    await service.authorize(caller, SEND, namespace, name)
    return web.json_response(await service.cancel(caller, namespace, name), dumps=_dumps)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get(SESSIONS, list_sessions)
    app.router.add_get(SESSION, get_session)
    app.router.add_post(SESSION + "/messages", post_message)
    app.router.add_get(SESSION + "/events", get_events)
    app.router.add_post(SESSION + "/cancel", post_cancel)
    app.router.add_get("/v1/ws", websocket)
    add_provider_routes(app)
    add_access_routes(app, SESSIONS)
    add_config_routes(app, SESSION)
    add_state_routes(app, SESSION)
    install_status_streams(app)
    add_console_routes(app)
