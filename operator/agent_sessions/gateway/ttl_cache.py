"""A small time-bounded, size-bounded cache for authentication and authorization answers.

Why: every request needs a TokenReview and a SubjectAccessReview, two round trips to the API
server. Reusing an answer for a few seconds takes that load off the API server for chatty clients
(a WebSocket subscribing to fifty sessions, a UI polling) while a revoked token or role binding
still stops working within the TTL. Concurrent misses for the same key share one lookup, so a burst
of requests with a new token makes one TokenReview, not fifty.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, ttl: float, max_size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self.clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._inflight: dict[K, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) while fresh, else (False, None)."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if self.clock() >= expires:
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = (self.clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, or `load()`'s (then cached), with one `load` per key at a time.

        The load runs as its own task: a caller that goes away does not cancel it for the others.
        Failures are not cached."""
        found, value = self.get(key)
        if found:
            return value  # type: ignore[return-value]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, load))
            task.add_done_callback(_retrieve)
            self._inflight[key] = task
        return await asyncio.shield(task)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await load()
            self.put(key, value)
            return value
        finally:
            self._inflight.pop(key, None)


def _retrieve(task: asyncio.Future) -> None:
    """Mark a load's failure as seen: the callers re-raise it, asyncio need not log it."""
    if not task.cancelled():
        task.exception()
