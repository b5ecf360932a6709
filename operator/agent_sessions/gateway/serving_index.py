"""Where the sessions that can take a message now are served, from a watch: no GET per message.

Every message, cancel and tail needs to know that its session is Running, its uid (the runtime
token is derived from it) and its endpoint. Reading the AgentSession for each one costs a GET on
the API server and the larger part of the gateway's own time per message. Instead, the first
request naming a namespace starts one watch of that namespace's AgentSessions (the gateway's
`list`/`watch agentsessions`), and from then on the gateway knows, per serving session, just
`(uid, endpoint)`; nothing else of a session is kept.

Only a positive answer comes from here, and only while the watch is known to be current: before
the first list, after a watch failed (until it has listed again), for a session not serving, the
caller reads the session as before (`SessionDirectory.get`), which is also the path that wakes a
stopped session and says why one is not running. So the index can only be wrong within the lag
of a watch event (milliseconds), the same window as a GET answered just before the session
stopped; and a call that then fails (the runtime gone, or answering 401 to a recreated session's
new uid) drops the session from the index (`forget`), so the next request reads it. A client can
also be ahead of the index — it read the session's new status itself, the watch event is on its
way — which `GatewayService.reach` covers: a call to an indexed endpoint that did nothing is made
again to the endpoint a read of the session gives. A namespace
nobody messaged for `IDLE_SECONDS` stops being watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes_asyncio import client


from . import metrics
from .session_directory import WatchExpired, session_events, session_pages
from .session_view import endpoint_of, is_serving

logger = logging.getLogger(__name__)

IDLE_SECONDS = 300.0
"""A namespace no request named for this long stops being watched (checked between watches)."""
WATCH_SECONDS = 60
"""One watch request lasts at most this long: a connection that silently died is noticed then."""
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits between failed attempts to list or watch, the last one repeated."""

Target = tuple[str, str]
"""A serving session's (uid, endpoint)."""


def target_of(obj: Mapping[str, Any]) -> Target | None:
    """`(uid, endpoint)` of a session that can take a message now, else None."""
    meta = obj.get("metadata") or {}
    uid = meta.get("uid")
    if not uid or meta.get("deletionTimestamp") or not is_serving(obj):
        return None
    return str(uid), str(endpoint_of(obj))


class NamespaceIndex:
    """The serving sessions of one namespace, kept by a list and a watch."""

    def __init__(self, objects: client.CustomObjectsApi, namespace: str, clock: Callable[[], float]) -> None:
        self.objects = objects
        self.namespace = namespace
        self.clock = clock
        self.targets: dict[str, Target] = {}
        self.current = False
        """Whether `targets` follows the API server now (listed, and the watch has not failed since)."""
        self.version = ""
        self.used = clock()
        self.task: asyncio.Task[None] | None = None

    def idle_in(self, idle_seconds: float) -> float:
        """Seconds until the namespace counts as idle (≤ 0: it is)."""
        return idle_seconds - (self.clock() - self.used)

    async def follow(self, idle_seconds: float) -> None:
        """List, then watch until idle; on a failure, stop answering and start over after a wait."""
        failures, expired = 0, False
        while self.idle_in(idle_seconds) > 0:
            try:
                await self.list()
                while (left := self.idle_in(idle_seconds)) > 0:
                    await self.watch_once(max(1, min(WATCH_SECONDS, math.ceil(left))))
                    failures, expired = 0, False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an expired position, the API server away, a refused watch
                self.current = False
                if isinstance(exc, WatchExpired) and not expired:
                    expired = True
                    continue  # list again, now (twice in a row: after a wait, as any failure)
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                # The first failure in a row is a warning (e.g. a Role without list/watch
                # agentsessions: every message then costs a GET), the retries are not.
                logger.log(logging.WARNING if failures == 1 else logging.DEBUG,
                           "watching sessions in %s for where they serve failed (%s): each message reads its "
                           "session until the watch works again; trying again in %gs", self.namespace,
                           getattr(exc, "status", None) or type(exc).__name__, delay)
                await asyncio.sleep(delay)
        self.current = False

    async def list(self) -> None:
        """The namespace's serving sessions, read in pages (one consistent snapshot), and where
        the watch is to start."""
        targets: dict[str, Target] = {}
        version = ""
        async for page, version in session_pages(self.objects, self.namespace):
            for obj in page:
                target = target_of(obj)
                if target is not None:
                    targets[str((obj.get("metadata") or {}).get("name", ""))] = target
        self.targets, self.version = targets, version
        self.current = True

    async def watch_once(self, seconds: int) -> None:
        """Follow the watch from `version` for `seconds` (the API server ends it then)."""
        async with contextlib.aclosing(session_events(self.objects, self.namespace, self.version, seconds)) as events:
            async for kind, obj in events:
                self.apply(kind, obj)

    def apply(self, kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        version = meta.get("resourceVersion")
        if version:
            self.version = str(version)
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return  # BOOKMARK: only the position moves
        name = str(meta.get("name", ""))
        target = target_of(obj) if kind != "DELETED" else None
        if target is None:
            self.targets.pop(name, None)
        else:
            self.targets[name] = target


class ServingIndex:
    """Serving sessions by namespace and name, for namespaces the gateway was asked about lately."""

    def __init__(self, api: client.ApiClient, *, idle_seconds: float = IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.idle_seconds = idle_seconds
        self.clock = clock
        self.namespaces: dict[str, NamespaceIndex] = {}

    def lookup(self, namespace: str, name: str) -> Target | None:
        """`(uid, endpoint)` when the session is known to be serving now; None: read the session.
        Starts watching the namespace (in the background) if it is not watched yet."""
        index = self.namespaces.get(namespace)
        if index is None or index.task is None or index.task.done():
            index = self.namespaces[namespace] = NamespaceIndex(self.objects, namespace, self.clock)
            index.task = asyncio.create_task(self._follow(index), name=f"serving index {namespace}")
            metrics.INDEXED_NAMESPACES.set(len(self.namespaces))
        index.used = self.clock()
        target = index.targets.get(name) if index.current else None
        metrics.SESSION_LOOKUPS.labels("index" if target is not None else "api").inc()
        return target

    def forget(self, namespace: str, name: str, target: Target) -> None:
        """A call to `target` failed: read the session on the next request (until the watch says
        more). Unless the watch has already said more: a newer target stays."""
        index = self.namespaces.get(namespace)
        if index is not None and index.targets.get(name) == target:
            del index.targets[name]

    async def _follow(self, index: NamespaceIndex) -> None:
        try:
            await index.follow(self.idle_seconds)
        finally:
            if self.namespaces.get(index.namespace) is index:
                del self.namespaces[index.namespace]
                metrics.INDEXED_NAMESPACES.set(len(self.namespaces))

    async def close(self) -> None:
        tasks = [index.task for index in self.namespaces.values() if index.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
