"""Frames: the one shape of everything a session says, streamed or replayed (§7).

A *frame* is what the bridge records for each thing that happens in a session, in order, with
a per-session monotonic `seq`:

* an ACP `session/update` from the agent — `{"seq", "event": <sessionUpdate kind>, "time",
  "update": <the update exactly as the agent sent it>}`;
* the user's message — `event: "user_message"`, `update: {"sessionUpdate": "user_message",
  "content": [<ACP content blocks>], "messageId": <the client's id, when it gave one>}` (ACP has
  no whole-message update, so the bridge makes one in the same shape as the agent's);
* the end of a turn — `{"seq", "event": "done", "time", "stopReason", "usage"}`;
* a turn that failed — `{"seq", "event": "error", "time", "code", "message"}`.

History items and SSE `data:` are the same object: the stored frame plus the `session` it
belongs to. A client that reads `/v1/history?after_seq=N` after a dropped stream sees exactly
the frames it missed, and the gateway relays both without reshaping them.

Pure functions only: the store and the HTTP layer do the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

EVENT_USER_MESSAGE = "user_message"
EVENT_DONE = "done"
EVENT_ERROR = "error"
EVENT_AGENT_MESSAGE_CHUNK = "agent_message_chunk"
EVENT_SESSION_INFO_UPDATE = "session_info_update"
EVENT_USAGE_UPDATE = "usage_update"
UNKNOWN_EVENT = "unknown"

Frame = dict[str, Any]


def update_kind(update: Mapping[str, Any]) -> str:
    """The ACP `sessionUpdate` discriminator, which is also the SSE event name."""
    kind = update.get("sessionUpdate")
    return kind if isinstance(kind, str) and kind else UNKNOWN_EVENT


def user_message_update(blocks: list[dict[str, Any]], message_id: str | None = None) -> dict[str, Any]:
    update: dict[str, Any] = {"sessionUpdate": EVENT_USER_MESSAGE, "content": blocks}
    if message_id is not None:
        update["messageId"] = message_id
    return update


def message_id_of(frame: Mapping[str, Any]) -> str | None:
    """The client's id of a `user_message` frame, if it gave one."""
    if frame.get("event") != EVENT_USER_MESSAGE:
        return None
    message_id = (frame.get("update") or {}).get("messageId")
    return message_id if isinstance(message_id, str) else None


def turn_frames(frames: Iterable[Mapping[str, Any]]) -> list[Frame]:
    """The frames of the turn that starts with the first frame (a `user_message`): up to and
    including its `done`/`error`, or up to the next user message if it never ended."""
    taken: list[Frame] = []
    for index, frame in enumerate(frames):
        if index > 0 and frame.get("event") == EVENT_USER_MESSAGE:
            break
        taken.append(dict(frame))
        if frame.get("event") in (EVENT_DONE, EVENT_ERROR):
            break
    return taken


def update_body(update: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(event, body) of a frame that carries one session update."""
    return update_kind(update), {"update": dict(update)}


def done_body(stop_reason: str, usage: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    return EVENT_DONE, {"stopReason": stop_reason, "usage": dict(usage) if usage is not None else None}


def error_body(code: str, message: str) -> tuple[str, dict[str, Any]]:
    return EVENT_ERROR, {"code": code, "message": message}


def with_session(frame: Mapping[str, Any], session: Mapping[str, Any]) -> Frame:
    """The frame as clients see it: history item and SSE data alike."""
    return {"session": dict(session), **frame}


def sse_message(frame: Mapping[str, Any], session: Mapping[str, Any]) -> bytes:
    """One Server-Sent Events message; `id:` is the seq, so `Last-Event-ID` means `after_seq`."""
    data = json.dumps(with_session(frame, session), separators=(",", ":"), ensure_ascii=False)
    return f"id: {frame['seq']}\nevent: {frame['event']}\ndata: {data}\n\n".encode()


SSE_KEEPALIVE = b": keep-alive\n\n"


def reply_content(frames: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The agent's reply as content blocks: its `agent_message_chunk`s, adjacent texts joined
    into one plain text block (annotations of text chunks are dropped), other blocks as sent."""
    blocks: list[dict[str, Any]] = []
    for frame in frames:
        if frame.get("event") != EVENT_AGENT_MESSAGE_CHUNK:
            continue
        block = (frame.get("update") or {}).get("content")
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text" and blocks and blocks[-1].get("type") == "text":
            blocks[-1] = {"type": "text", "text": blocks[-1]["text"] + str(block.get("text", ""))}
        elif block.get("type") == "text":
            blocks.append({"type": "text", "text": str(block.get("text", ""))})
        else:
            blocks.append(dict(block))
    return blocks


def reply_text(content: Iterable[Mapping[str, Any]]) -> str:
    return "".join(str(block.get("text", "")) for block in content if block.get("type") == "text")


def turn_usage(prompt_usage: Mapping[str, Any] | None, frames: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Usage of a turn: the prompt response's `usage` when the agent gave one, else the last
    `usage_update` of the turn (without its `sessionUpdate` tag), else None."""
    if prompt_usage is not None:
        return dict(prompt_usage)
    last = None
    for frame in frames:
        if frame.get("event") == EVENT_USAGE_UPDATE:
            last = frame.get("update")
    if last is None:
        return None
    return {key: value for key, value in last.items() if key != "sessionUpdate"}
