"""Frames on the wire: tagging them with their session, writing and reading Server-Sent Events.

A runtime frame is `{"seq", "event", "time", "update" | "stopReason"/"usage" | "code"/"message"}`
(runtime history items and SSE `data:` alike, §7). The gateway relays frames unchanged except for
`session`, which it replaces with the Kubernetes identity (see `SessionRef`), and `seq`, which it
makes sure is present. Pure functions; the HTTP layer does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .session_ref import SessionRef

EVENT_DONE = "done"
EVENT_ERROR = "error"
TERMINAL_EVENTS = frozenset({EVENT_DONE, EVENT_ERROR})
SSE_KEEPALIVE = b": keep-alive\n\n"

Frame = dict[str, Any]


def tag_frame(frame: Mapping[str, Any], session: SessionRef, *, event: str | None = None,
              seq: int | None = None) -> Frame:
    """`frame` as the gateway's clients see it: `session` first, then `seq` and `event`, then the rest.

    `event` and `seq` fill in what the frame lacks (an SSE frame names its event in the `event:`
    line and its seq in `id:`); what the frame has wins, except `session`, which is always replaced.
    """
    tagged: Frame = {"session": session.to_json()}
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


def sse_encode(frame: Mapping[str, Any]) -> bytes:
    """One SSE message for a tagged frame: `id: <seq>` (so `Last-Event-ID` resumes after it),
    `event: <kind>`, `data: <json>`. A frame without a seq (a gateway-made error) gets no `id:`."""
    lines = []
    seq = frame_seq(frame)
    if seq is not None:
        lines.append(f"id: {seq}")
    lines.append(f"event: {frame.get('event') or 'message'}")
    data = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
    lines.append(f"data: {data}")
    return ("\n".join(lines) + "\n\n").encode()


@dataclass
class SSEMessage:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class SSEParser:
    """Incremental parser of an `text/event-stream` body (the WHATWG rules: `\\n`, `\\r\\n` or `\\r`
    line ends, `:` comments ignored, multi-line `data:` joined with `\\n`, a blank line dispatches).

    Feed it the bytes as they arrive; it returns the messages they complete."""

    def __init__(self) -> None:
        self._buffer = ""
        self._decoder_pending = b""
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        raw = self._decoder_pending + chunk
        try:
            text = raw.decode()
            self._decoder_pending = b""
        except UnicodeDecodeError as exc:  # a multi-byte character split between chunks
            text = raw[: exc.start].decode()
            self._decoder_pending = raw[exc.start:]
        self._buffer += text
        return list(self._messages())

    def _messages(self) -> Iterator[SSEMessage]:
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return
            line, self._buffer = self._buffer[: cut[0]], self._buffer[cut[1]:]
            if line == "":
                if self._data:
                    yield SSEMessage(event=self._event or "message", data="\n".join(self._data), id=self._id)
                self._event, self._data = "", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
            elif name == "id" and "\0" not in value:
                self._id = value


def _line_end(buffer: str) -> tuple[int, int] | None:
    """(end of the first line, start of the next) or None if no line is complete. A `\\r` at the
    very end may be the first half of `\\r\\n`: wait for more."""
    newline, carriage = buffer.find("\n"), buffer.find("\r")
    if carriage == -1 or (newline != -1 and newline < carriage):
        return (newline, newline + 1) if newline != -1 else None
    if carriage + 1 == len(buffer):
        return None
    return (carriage, carriage + 2) if buffer[carriage + 1] == "\n" else (carriage, carriage + 1)
