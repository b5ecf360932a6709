"""Server-Sent Events on the session wire: one encoder, one parser, one way to write a stream.

The runtime streams a turn, the gateway relays it (and a session's live events), the CLI and the
gateway read the runtime's stream: all of them write and read the same `text/event-stream`. A
message is `id: <seq>` (so a reconnecting client's `Last-Event-ID` is the `after_seq` to resume
from), `event: <kind>`, `data: <the tagged frame as JSON>`. A stream that is silent for
`keepalive` seconds (an agent thinking) gets a `: keep-alive` comment, so proxies keep it open.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .frames import Frame, frame_seq
from .keepalive import with_keepalive

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""Headers of every event stream (`X-Accel-Buffering: no`: nginx must not hold frames back)."""
SSE_KEEPALIVE = b": keep-alive\n\n"
STREAM_VALUES = ("true", "1", "yes")


def wants_stream(request: web.Request) -> bool:
    """`?stream=true` or `Accept: text/event-stream`: the client asked for SSE, not one JSON reply."""
    if request.query.get("stream", "").lower() in STREAM_VALUES:
        return True
    return "text/event-stream" in request.headers.get("Accept", "")


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


async def open_event_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    return response


async def relay(response: web.StreamResponse, frames: AsyncIterator[Frame], keepalive: float,
                on_frame: Callable[[Frame], None] | None = None) -> Frame | None:
    """Write `frames` (tagged) as SSE with a `: keep-alive` comment after each `keepalive` seconds
    of silence. Returns the last frame written. What `frames` raises propagates."""
    last = None
    async for frame in with_keepalive(frames, keepalive):
        if frame is None:
            await response.write(SSE_KEEPALIVE)
            continue
        if on_frame is not None:
            on_frame(frame)
        await response.write(sse_encode(frame))
        last = frame
    return last


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
