"""The WebSocket protocol of `GET /v1/ws`: client frames parsed, server frames built (pure).

Client → server (JSON text frames):

* `{"type": "subscribe", "namespace", "name", "after_seq"?}` — the session's frames after
  `after_seq` (history first), then live; without `after_seq`, only new frames.
* `{"type": "unsubscribe", "namespace", "name"}`
* `{"type": "send", "namespace", "name", "id"?, "text" | "prompt"}` — one turn; `id` (a string or
  number of the client's choosing) comes back on every frame of the turn's reply.
* `{"type": "cancel", "namespace", "name", "id"?}` — stop the session's running turn.
* `{"type": "ping", "id"?}` — answered with `{"type": "pong", "id"?}`.

Server → client, every frame naming its session as `{"namespace", "name", "uid"}`:

* `{"type": "subscribed", "session", "after_seq"}` / `{"type": "unsubscribed", "session"}`
* `{"type": "event", "id"?, "session", "seq", "event", "update", "time"}` — one session update
* `{"type": "done", "id"?, "session", "seq", "event": "done", "stopReason", "usage"}` — a turn ended
* `{"type": "error", "id"?, "session"?, "seq"?, "code", "message"}` — a turn failed (with `seq`), or a
  request failed (with the request's `id`; `session` null for a frame that could not be read)
* `{"type": "cancelled", "id"?, "session", "cancelled": bool}`
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent_sessions.wire.frames import EVENT_DONE, EVENT_ERROR, Frame
from agent_sessions.wire.message_request import InvalidMessage, message_of

from .errors import INVALID_REQUEST, GatewayError

RequestId = str | int | None


class ProtocolError(GatewayError):
    """A client frame the gateway cannot act on; `request_id` when the frame had a readable one."""

    def __init__(self, message: str, request_id: RequestId = None, session: Mapping[str, Any] | None = None) -> None:
        super().__init__(INVALID_REQUEST, message, session=session)
        self.request_id = request_id


@dataclass(frozen=True)
class Subscribe:
    namespace: str
    name: str
    after_seq: int | None = None


@dataclass(frozen=True)
class Unsubscribe:
    namespace: str
    name: str


@dataclass(frozen=True)
class Send:
    namespace: str
    name: str
    id: RequestId
    message: dict[str, Any]


@dataclass(frozen=True)
class Cancel:
    namespace: str
    name: str
    id: RequestId = None


@dataclass(frozen=True)
class Ping:
    id: RequestId = None


ClientFrame = Subscribe | Unsubscribe | Send | Cancel | Ping


def parse_client_frame(text: str) -> ClientFrame:
    """The request a client text frame makes; ProtocolError (422 `invalid_request`) otherwise."""
    try:
        body = json.loads(text)
    except ValueError:
        raise ProtocolError("the frame is not valid JSON") from None
    if not isinstance(body, dict):
        raise ProtocolError("a frame must be a JSON object with a \"type\"")
    request_id = _request_id(body)
    kind = body.get("type")
    if kind == "ping":
        return Ping(request_id)
    if kind not in ("subscribe", "unsubscribe", "send", "cancel"):
        raise ProtocolError(f"unknown frame type {kind!r}: expected subscribe, unsubscribe, send, cancel or ping",
                            request_id)
    namespace, name = body.get("namespace"), body.get("name")
    if not isinstance(namespace, str) or not namespace or not isinstance(name, str) or not name:
        raise ProtocolError(f'a {kind} frame needs "namespace" and "name" strings', request_id)
    session = {"namespace": namespace, "name": name, "uid": None}
    if kind == "subscribe":
        after_seq = body.get("after_seq")
        if after_seq is not None and (not isinstance(after_seq, int) or isinstance(after_seq, bool) or after_seq < 0):
            raise ProtocolError('"after_seq" must be a non-negative integer', request_id, session)
        return Subscribe(namespace, name, after_seq)
    if kind == "unsubscribe":
        return Unsubscribe(namespace, name)
    if kind == "cancel":
        return Cancel(namespace, name, request_id)
    try:
        message = message_of(body, id_field=None)  # the frame's `id` correlates, see module docstring
    except InvalidMessage as exc:
        raise ProtocolError(str(exc), request_id, session) from None
    return Send(namespace, name, request_id, message)


def _request_id(body: Mapping[str, Any]) -> RequestId:
    value = body.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return value


def event_frame(frame: Frame, request_id: RequestId = None) -> dict[str, Any]:
    """A tagged session frame as a server frame: `done`, `error` (a failed turn) or `event`."""
    kind = frame.get("event")
    out: dict[str, Any] = {"type": "done" if kind == EVENT_DONE else "error" if kind == EVENT_ERROR else "event"}
    if request_id is not None:
        out["id"] = request_id
    out.update((key, value) for key, value in frame.items() if key not in ("type", "id"))
    return out


def error_frame(error: GatewayError, request_id: RequestId = None,
                session: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error"}
    if request_id is not None:
        out["id"] = request_id
    out["session"] = error.session if error.session is not None else (dict(session) if session else None)
    out["code"] = error.code
    out["message"] = error.message
    return out


def control_frame(kind: str, session: Mapping[str, Any] | None, request_id: RequestId = None,
                  **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    if request_id is not None:
        out["id"] = request_id
    if session is not None:
        out["session"] = dict(session)
    out.update(fields)
    return out
