"""Writing Server-Sent Events responses: headers, frames, keep-alives, a closing error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from .errors import GatewayError
from .frames import EVENT_ERROR, SSE_KEEPALIVE, Frame, sse_encode
from .keepalive import with_keepalive

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def error_frame(error: GatewayError, session: dict[str, Any] | None) -> Frame:
    """The closing `event: error` of a stream that failed in the gateway (no seq: the runtime did
    not record it)."""
    return {"session": error.session or session, "seq": None, "event": EVENT_ERROR, "code": error.code,
            "message": error.message}


async def open_event_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    return response


async def relay(response: web.StreamResponse, frames: AsyncIterator[Frame], keepalive: float,
                on_frame: Callable[[Frame], None] | None = None) -> Frame | None:
    """Write `frames` as SSE with a `: keep-alive` comment after each `keepalive` seconds of silence.
    Returns the last frame written. GatewayError from `frames` propagates."""
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
