"""Interleaving keep-alives into a stream that may be silent for minutes (long agent turns).

Used by every Server-Sent Events writer (the runtime's turn streams, the gateway's relays), so that
proxies and clients never take a thinking agent for a dead connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


async def with_keepalive(source: AsyncIterator[T], interval: float) -> AsyncIterator[T | None]:
    """The items of `source`, and None whenever `interval` seconds pass without one.

    The pending read is never cancelled to make room for a keep-alive (cancelling a read in the
    middle of a frame would lose it); it is only cancelled when the consumer stops iterating."""
    iterator = source.__aiter__()
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield None
                continue
            future, pending = pending, None
            try:
                item = future.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        closer = getattr(iterator, "aclose", None)
        if closer is not None:
            with contextlib.suppress(RuntimeError):
                await closer()
