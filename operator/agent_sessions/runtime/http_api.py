"""The runtime's HTTP API, served on the session's endpoint (§7).

* `GET /healthz` — 200 while the agent is up and its session open and the runtime can keep the
  conversation (history writable, turns ending properly), else 503 with the reason. Both bodies
  carry `agentStart`: `{"state": "starting"|"started"|"failed"}`, and for a failed start
  `reason` (`AgentExecFailed`, `AgentExited`, `InitializeFailed`, `AuthenticationRequired`,
  `SessionRefused`), `message` and, after an exit, `exitCode` — final: the bridge never retries.
* `GET /v1/info` — identity, state, agent start, session info, activity, counters, health,
  capabilities.
* `POST /v1/messages` — one turn: a JSON reply, or SSE with `?stream=true` or
  `Accept: text/event-stream`, or with `?wait=false` just 202 once the turn has started. An
  optional `"id"` in the body makes the message idempotent: a repeated id is answered with the
  turn the first one started, never a new one.
* `GET /v1/history?after_seq=N[&limit=M][&wait=S]` — recorded frames after `N`. With `wait`
  (seconds, 0 to `MAX_HISTORY_WAIT_SECONDS`) it is a long poll: when nothing is recorded after `N`
  yet, the answer waits up to `S` seconds for the next frame and comes as soon as there is one
  (empty when none came, or the runtime is stopping), and says `"longPoll": true` so a client can
  tell a runtime that honours `wait` from one that ignored it (an http platform's, say). That is
  how the gateway tails a session without polling.
* `POST /v1/cancel` — ask the agent to stop the running turn.

Every endpoint but `/healthz` requires `Authorization: Bearer <token>` when the bridge was given
a token (`--token-file`; the providers always give one, derived from the runtime key that only the
operator and the gateway hold, see `wire.credentials`): without it, or with another, the answer
is 401 `unauthorized`, before the request is routed (so an unknown path is 401 too: nothing is
learnt without the token). `/healthz` stays open for the kubelet's probes; it tells whether the
agent is up, nothing of the conversation. The comparison is constant-time and the token is never
logged. A bridge started by hand without a token serves everyone, and says so once in its log.

Errors are `{"code", "message", "session"}` (and `field` when one field of the body is to blame):
`invalid_request` 422 (also for a body that is not UTF-8 or text that is not valid Unicode),
`message_too_large` 413, `session_busy` 409, `agent_unavailable` 503, and for a turn that failed
`agent_error` / `agent_exited` / `cancel_timeout` / `cancel_failed` 502, `history_unwritable` /
`runtime_stopping` 503, anything else 500. Message contents are never logged.

A client that goes away cancels its request's handler (`handler_cancellation`): a long poll does
not outlive its client. Nothing else depends on a request staying: a turn runs in its own task,
and cancel's work is shielded from its request.

While tracing is on (`wire.tracing`), every request but `/healthz` and `/v1/history` is a server
span continuing the caller's `traceparent`, and a turn started by a message is a child span of that
request's.

Every body is valid UTF-8 JSON: what an agent sent (its name, an error text) is made JSON-safe
when it would not encode.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from agent_sessions.wire.credentials import bearer, token_matches
from agent_sessions.wire.frames import (
    EVENT_ERROR,
    Frame,
    is_terminal,
    json_safe,
    reply_content,
    reply_text,
    tag_frame,
)
from agent_sessions.wire.message_request import (
    MAX_MESSAGE_BYTES,
    InvalidMessage,
    json_body,
    message_id_from_body,
    prompt_from_body,
    read_limited,
)
from agent_sessions.wire.paths import CANCEL_PATH, HEALTH_PATH, HISTORY_PATH, INFO_PATH, MESSAGES_PATH
from agent_sessions.wire import tracing
from agent_sessions.wire.sse import open_event_stream, relay, wants_stream

from .bridge import AgentUnavailable, RuntimeBridge, SessionBusy, Turn

logger = logging.getLogger(__name__)

BRIDGE: web.AppKey[RuntimeBridge] = web.AppKey("bridge", RuntimeBridge)
KEEPALIVE_SECONDS = 15.0
MAX_HISTORY_WAIT_SECONDS = 30.0
"""The longest `wait` a history request may ask for (below the usual proxies' idle timeouts)."""
TURN_ERROR_STATUS = {
    "agent_error": 502,
    "agent_exited": 502,
    "cancel_timeout": 502,
    "cancel_failed": 502,
    "history_unwritable": 503,
    "runtime_stopping": 503,
}


def _dumps(body: Any) -> str:
    """Strict JSON that encodes as UTF-8, whatever an agent put in `body` (see `json_safe`)."""
    try:
        text = json.dumps(body, ensure_ascii=False, allow_nan=False)
        if not text.isascii():
            text.encode("utf-8")
    except ValueError:  # NaN, or a lone surrogate (UnicodeEncodeError)
        text = json.dumps(json_safe(body), ensure_ascii=False, allow_nan=False)
    return text


def _bridge(request: web.Request) -> RuntimeBridge:
    return request.app[BRIDGE]


def error_response(request: web.Request, status: int, code: str, message: str, **extra: Any) -> web.Response:
    body = {"code": code, "message": message, "session": _bridge(request).session, **extra}
    return web.json_response(body, status=status, dumps=_dumps)


@web.middleware
async def require_token(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """401 `unauthorized` for any request but `GET /healthz` without the bridge's token."""
    token = _bridge(request).options.token
    if token is None or (request.path == HEALTH_PATH and request.method in ("GET", "HEAD")):
        return await handler(request)
    if not token_matches(token, bearer(request.headers.get("Authorization"))):
        return error_response(request, 401, "unauthorized",
                              "this session's runtime requires its bearer token (held by the operator and the "
                              "gateway only): call it through the gateway")
    return await handler(request)


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Routing errors (404, 405) in the same JSON shape as every other error."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return error_response(request, 404, "not_found", f"no such endpoint: {request.path}")
    except web.HTTPMethodNotAllowed as exc:
        return error_response(request, 405, "method_not_allowed", f"{request.method} is not allowed on {request.path}",
                              allowed=sorted(exc.allowed_methods))


async def healthz(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    return web.json_response(bridge.health_json(), status=200 if bridge.runtime_health.ok else 503, dumps=_dumps)


async def info(request: web.Request) -> web.Response:
    return web.json_response(_bridge(request).info(), dumps=_dumps)


async def post_message(request: web.Request) -> web.StreamResponse:
    bridge = _bridge(request)
    try:
        body = json_body(await read_limited(request, MAX_MESSAGE_BYTES))
        blocks = prompt_from_body(body)
        message_id = message_id_from_body(body)
        if bridge.options.protocol == "stdio-lines" and any(block.get("type") != "text" for block in blocks):
            raise InvalidMessage("this agent speaks stdio-lines: only text content is accepted")
    except InvalidMessage as exc:
        return error_response(request, exc.status, exc.code, str(exc), **({"field": exc.field} if exc.field else {}))
    turn = bridge.known_turn(message_id)
    duplicate = turn is not None
    if turn is None:
        try:
            turn = bridge.begin_turn(blocks, message_id)
        except SessionBusy as exc:
            return error_response(request, 409, "session_busy", str(exc))
        except AgentUnavailable as exc:
            return error_response(request, 503, "agent_unavailable", str(exc), health=bridge.health_json())
    else:
        logger.info("message id seen before (turn from seq %d): answering with that turn", turn.user_seq)
    if request.query.get("wait", "").lower() in ("false", "0", "no"):
        accepted = {
            "session": bridge.session,
            "id": message_id,
            "seq": turn.user_seq,
            "accepted": True,
            "duplicate": duplicate,
        }
        return web.json_response(accepted, status=200 if duplicate else 202, dumps=_dumps)
    if wants_stream(request):
        return await _stream_turn(request, bridge, turn)
    await turn.finished.wait()
    return _turn_reply(request, bridge, turn)


def _turn_reply(request: web.Request, bridge: RuntimeBridge, turn: Turn) -> web.Response:
    result = turn.result
    assert result is not None
    if result["event"] == EVENT_ERROR:
        return error_response(request, TURN_ERROR_STATUS.get(result["code"], 500), result["code"], result["message"],
                              seq=result["seq"])
    content = reply_content(turn.frames)
    body = {
        "session": bridge.session,
        "seq": result["seq"],
        "stopReason": result["stopReason"],
        "text": reply_text(content),
        "content": content,
        "usage": result["usage"],
    }
    return web.json_response(body, dumps=_dumps)


async def _stream_turn(request: web.Request, bridge: RuntimeBridge, turn: Turn) -> web.StreamResponse:
    queue = turn.subscribe()
    response = web.StreamResponse()
    try:
        response = await open_event_stream(request)
        await relay(response, _turn_frames(queue, bridge.session), KEEPALIVE_SECONDS)
        await response.write_eof()
    except (ConnectionError, asyncio.CancelledError) as exc:  # cancelled: the client went away (or the server stops)
        logger.info("a stream client went away; the turn goes on and its frames stay in history")
        if isinstance(exc, asyncio.CancelledError):
            raise
    finally:
        turn.unsubscribe(queue)
    return response


async def _turn_frames(queue: asyncio.Queue[Frame], session: dict[str, Any]) -> AsyncIterator[Frame]:
    """The turn's frames as they are recorded, tagged, up to its `done` or `error`."""
    while True:
        frame = await queue.get()
        yield tag_frame(frame, session)
        if is_terminal(frame):
            return


def _wait_seconds(request: web.Request) -> float | None:
    raw = request.query.get("wait")
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidMessage(f"wait must be a number of seconds, got {raw!r}") from None
    if not 0 <= value <= MAX_HISTORY_WAIT_SECONDS:  # NaN too
        raise InvalidMessage(f"wait must be between 0 and {MAX_HISTORY_WAIT_SECONDS:g} seconds")
    return value


def _non_negative_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidMessage(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise InvalidMessage(f"{name} must not be negative")
    return value


async def history(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    try:
        after_seq = _non_negative_int(request, "after_seq") or 0
        limit = _non_negative_int(request, "limit")
        wait = _wait_seconds(request)
    except InvalidMessage as exc:
        return error_response(request, exc.status, exc.code, str(exc))
    if wait is None:
        frames = bridge.history_after(after_seq, limit)
    else:
        frames = await bridge.history_after_waiting(after_seq, limit, wait)
    body: dict[str, Any] = {
        "session": bridge.session,
        "items": [tag_frame(frame, bridge.session) for frame in frames],
        "lastSeq": bridge.last_seq,
    }
    if wait is not None:
        body["longPoll"] = True
    return web.json_response(body, dumps=_dumps)


async def cancel(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    cancelled = await asyncio.shield(bridge.cancel())  # carried through if the client goes away
    return web.json_response({"session": bridge.session, "cancelled": cancelled}, dumps=_dumps)


def build_app(bridge: RuntimeBridge) -> web.Application:
    if bridge.options.token is None:
        logger.warning("no token configured (--token-file, $AGENT_SESSION_TOKEN_FILE): anyone who can connect "
                       "to this runtime may read its history and prompt its agent")
    # Not traced: probes, and history reads (the gateway's tails long-poll it after every frame).
    requests = tracing.request_spans(frozenset({HEALTH_PATH, HISTORY_PATH}), lambda request: bridge.span_attributes)
    app = web.Application(client_max_size=MAX_MESSAGE_BYTES, middlewares=[requests, require_token, json_errors],
                          handler_args={"handler_cancellation": True})
    app[BRIDGE] = bridge
    app.router.add_get(HEALTH_PATH, healthz)
    app.router.add_get(INFO_PATH, info)
    app.router.add_post(MESSAGES_PATH, post_message)
    app.router.add_get(HISTORY_PATH, history)
    app.router.add_post(CANCEL_PATH, cancel)
    return app
