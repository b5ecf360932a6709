"""What tests ask of the server beyond HTTP: waiting for a condition after every write,
the recorded writes, injected faults and dropped watches."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from types import EllipsisType
from typing import TypeVar

from agent_sessions.dev.strict_api.recorded import RecordedRequest
from agent_sessions.dev.strict_api.streams import Stream


T = TypeVar("T")


class Harness:
    """Test controls of :class:`~agent_sessions.dev.strict_api.server.StrictKubernetesAPI` (a
    mixin: it uses the server's store, request log, faults and open streams)."""

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Blocks until ``predicate()`` is truthy and returns it, re-checking after every
        committed write (no polling); TimeoutError after ``timeout`` seconds.  Call it from
        any thread but the server's (e.g. with :func:`running_api`)."""
        changed = threading.Event()
        self.store.subscribe(changed.set)
        try:
            deadline = time.monotonic() + timeout
            while True:
                changed.clear()
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s")
                changed.wait(remaining)
        finally:
            self.store.unsubscribe(changed.set)

    async def wait_for_async(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """:meth:`wait_for` for a coroutine, in any event loop (the server's included)."""
        stream = Stream(asyncio.get_running_loop(), "wait")
        self.store.subscribe(stream.notify)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    stream.wake.clear()
                    result = predicate()
                    if result:
                        return result
                    await stream.wake.wait()
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout}s") from None
        finally:
            self.store.unsubscribe(stream.notify)

    def writes(self, *, kind: str | None = None, resource: str | None = None,
               subresource: str | None | EllipsisType = ..., method: str | None = None,
               namespace: str | None = None, name: str | None = None) -> list[RecordedRequest]:
        """Recorded write requests (POST/PUT/PATCH/DELETE on resources), filtered.

        ``subresource=None`` keeps only writes to the main resource; the default (``...``)
        keeps all.  ``kind`` is the Kind (``AgentSession``), ``resource`` the plural.
        """
        return [r for r in list(self.requests) if r.is_write
                and (kind is None or r.kind == kind)
                and (resource is None or r.resource == resource)
                and (subresource is ... or r.subresource == subresource)
                and (method is None or r.method == method.upper())
                and (namespace is None or r.namespace == namespace)
                and (name is None or r.name == name)]

    def reset_requests(self) -> None:
        self.requests.clear()

    def fail_next(self, method: str | None, path: str, status: int = 500, *, count: int = 1,
                  retry_after: float | None = None, message: str | None = None) -> None:
        """Makes the next ``count`` requests whose method matches (None = any) and whose path
        matches the regular expression ``path`` (``re.search``) fail with ``status`` and a
        ``Status`` body, before they touch any state; ``retry_after`` sets ``Retry-After``."""
        self._faults.add(method, path, status, count=count, retry_after=retry_after, message=message)

    def drop_watches(self) -> None:
        """Ends every open watch stream now; clients see the stream close and reconnect."""
        for stream in self._open_streams("watch"):
            stream.stop()
