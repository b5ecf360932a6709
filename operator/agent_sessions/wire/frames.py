"""Frames: the one shape of everything a session says, streamed or replayed (§7).

A *frame* is what the runtime bridge records for each thing that happens in a session, in order,
with a per-session monotonic `seq`:

* an ACP `session/update` from the agent — `{"seq", "event": <sessionUpdate kind>, "time",
  "update": <the update exactly as the agent sent it>}`;
* the user's message — `event: "user_message"`, `update: {"sessionUpdate": "user_message",
  "content": [<ACP content blocks>], "messageId": <the client's id, when it gave one>}` (ACP has
  no whole-message update, so the bridge makes one in the same shape as the agent's);
* the end of a turn — `{"seq", "event": "done", "time", "stopReason", "usage"}`;
* a turn that failed — `{"seq", "event": "error", "time", "code", "message"}`.

History items and SSE `data:` are the same object: the stored frame *tagged* with the `session` it
belongs to (`tag_frame`). A client that reads `/v1/history?after_seq=N` after a dropped stream sees
exactly the frames it missed. The gateway relays frames unchanged except for `session`, which it
replaces with the Kubernetes identity (`SessionRef`), and `seq`, which it makes sure is present.

Every frame is valid JSON in valid UTF-8, whatever an agent sent: `json_safe` replaces what
cannot be encoded (lone UTF-16 surrogates, which `\\ud800` escapes in JSON decode to, by U+FFFD;
NaN and infinities by null) before a frame is stored, served or streamed. Control characters need
nothing: JSON escapes them, and frames are split on `\\n` only.

Pure functions only: the store and the HTTP layers do the I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .session_ref import SessionRef

EVENT_USER_MESSAGE = "user_message"
EVENT_DONE = "done"
EVENT_ERROR = "error"
EVENT_AGENT_MESSAGE_CHUNK = "agent_message_chunk"
EVENT_SESSION_INFO_UPDATE = "session_info_update"
EVENT_USAGE_UPDATE = "usage_update"
UNKNOWN_EVENT = "unknown"
TERMINAL_EVENTS = frozenset({EVENT_DONE, EVENT_ERROR})
"""The events that end a turn (and a message's stream)."""

Frame = dict[str, Any]

REPLACEMENT_CHARACTER = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate_at(text: str) -> int | None:
    """The index of the first lone surrogate in `text` (a code point UTF-8 cannot encode), or None.

    `json.loads` pairs `\\ud83d\\ude00` into one character, so any surrogate left is a lone one."""
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    return found.start() if found else None


def safe_text(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (the same object when there is none)."""
    if lone_surrogate_at(text) is None:
        return text
    return _SURROGATE.sub(REPLACEMENT_CHARACTER, text)


def json_safe(value: Any) -> Any:
    """`value` (JSON as Python) made encodable as strict JSON in UTF-8: strings and keys through
    `safe_text`, non-finite numbers as None, anything that is not JSON as its `str`."""
    if isinstance(value, str):
        return safe_text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {safe_text(str(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return safe_text(str(value))


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


def update_body(update: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(event, body) of a frame that carries one session update."""
    return update_kind(update), {"update": dict(update)}


def done_body(stop_reason: str, usage: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    return EVENT_DONE, {"stopReason": stop_reason, "usage": dict(usage) if usage is not None else None}


def error_body(code: str, message: str) -> tuple[str, dict[str, Any]]:
    return EVENT_ERROR, {"code": code, "message": message}


def tag_frame(frame: Mapping[str, Any], session: SessionRef | Mapping[str, Any], *, event: str | None = None,
              seq: int | None = None) -> Frame:
    """`frame` as clients see it (history item and SSE data alike): `session` first, then `seq`
    and `event`, then the rest.

    `event` and `seq` fill in what the frame lacks (an SSE frame names its event in the `event:`
    line and its seq in `id:`); what the frame has wins, except `session`, which is always replaced.
    """
    tagged: Frame = {"session": session.to_json() if isinstance(session, SessionRef) else dict(session)}
    tagged["seq"] = frame.get("seq", seq)
    if "event" in frame or event is not None:
        tagged["event"] = frame.get("event", event)
    for key, value in frame.items():
        if key not in tagged:
            tagged[key] = value
    return tagged


def frame_seq(frame: Mapping[str, Any]) -> int | None:
    seq = frame.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def is_terminal(frame: Mapping[str, Any]) -> bool:
    return frame.get("event") in TERMINAL_EVENTS


def turn_frames(frames: Iterable[Mapping[str, Any]]) -> list[Frame]:
    """The frames of the turn that starts with the first frame (a `user_message`): up to and
    including its `done`/`error`, or up to the next user message if it never ended."""
    taken: list[Frame] = []
    for index, frame in enumerate(frames):
        if index > 0 and frame.get("event") == EVENT_USER_MESSAGE:
            break
        taken.append(dict(frame))
        if is_terminal(frame):
            break
    return taken


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
