"""The session-status stream: `GET /v1/namespaces/{ns}/sessions?watch=true` as Server-Sent Events.

A UI following a namespace's sessions gets one event per change instead of polling the list.
Why one shared watch per namespace (`NamespaceWatch`) rather than a Kubernetes watch per client:
a thousand browser tabs on one namespace cost the API server one watch, not a thousand, and the
gateway keeps one copy of the namespace's session summaries, not one per client. The watch is made
with the gateway's credentials (`get/list/watch agentsessions`, as for its other reads); each
caller is authorized for `watch agentsessions` on the namespace first (SubjectAccessReview, as for
every other endpoint), again every `status_stream_recheck_seconds` (and its token re-reviewed), so
a caller who loses the right stops getting events.

What a stream sends (`id:` is the resourceVersion, so a reconnecting client's `Last-Event-ID`
resumes):

* at first, the namespace's sessions as `added` events (no `id:`), then `synced` with `id:` the
  resourceVersion they are current at — the list, without a second request;
* then one `added`, `modified` or `deleted` per change, `id: <resourceVersion>`, data
  `{"type", "resourceVersion", "session": {"namespace", "name", "uid"}, "info": <the list's summary>}`.
  A change that leaves the summary as it was (e.g. a health probe time) is not sent;
* `reset` (data `{"namespace", "reason", "message"}`) when the client must forget what it has: its
  `Last-Event-ID` is older than what this replica keeps (`expired`: the API server's 410 Gone, or a
  replica that never saw it), it read too slowly (`lagged`), or the shared watch had to re-list
  (`relisted`). The namespace's sessions follow as `added` events and `synced`, as at first;
* `error` (`{"code", "message", "session": null}`) before the stream ends (`forbidden`,
  `unauthorized` after a re-check);
* `: keep-alive` comments after `keepalive_seconds` of silence.

Memory is bounded per stream: at most `status_stream_queue` pending changes (a client reading
slower gets `reset` and the current state instead, never an unbounded backlog); per namespace the
summaries and `status_stream_replay` recent changes. Streams per caller are bounded per replica
(`status_streams_per_caller`, 429 `rate_limited` beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client

from agent_sessions.api import constants as c
from agent_sessions.wire.keepalive import with_keepalive
from agent_sessions.wire.sse import SSE_KEEPALIVE, open_event_stream

from . import metrics
from .authn import bearer_token
from .authz import WATCH, forbidden
from .errors import RATE_LIMITED, GatewayError
from .kube_errors import KUBE_FAILURES, kube_failure
from .options import GatewayOptions
from .service import SERVICE, GatewayService
from .session_directory import WatchExpired, session_events, session_pages
from .session_view import summary

logger = logging.getLogger(__name__)

_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
WATCH_SECONDS = 290
"""One watch request lasts at most this long (then the next resumes where it ended)."""
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
"""Waits between failed attempts to watch or re-list, the last one repeated."""
WATCH_VALUES = ("true", "1", "yes")

RESET_EXPIRED = "expired"
RESET_LAGGED = "lagged"
RESET_RELISTED = "relisted"
_RESET_MESSAGES = {
    RESET_EXPIRED: "Last-Event-ID is older than the changes this gateway keeps (410 Gone): forget the sessions "
                   "you have; the namespace's sessions follow",
    RESET_LAGGED: "the stream was read too slowly to send every change: forget the sessions you have; the "
                  "namespace's sessions follow",
    RESET_RELISTED: "the gateway's watch had to start over: forget the sessions you have; the namespace's "
                    "sessions follow",
}


def wants_watch(request: web.Request) -> bool:
    return request.query.get("watch", "").lower() in WATCH_VALUES


@dataclass(frozen=True)
class Change:
    type: str
    """`ADDED`, `MODIFIED` or `DELETED`."""
    version: str
    """The resourceVersion of the session after the change (the SSE `id:`)."""
    info: Mapping[str, Any]
    """`session_view.summary` of the session after the change (before, for DELETED)."""

    def encode(self, with_id: bool = True) -> bytes:
        data = {"type": self.type, "resourceVersion": self.version, "session": self.info.get("session"),
                "info": self.info}
        head = f"id: {self.version}\n" if with_id else ""
        return f"{head}event: {self.type.lower()}\ndata: {_dumps(data)}\n\n".encode()


def _message(event: str, data: Mapping[str, Any], event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {_dumps(data)}\n\n".encode()


class Subscriber:
    """One stream's place in a `NamespaceWatch`: the changes not sent yet (at most `limit`), or a
    reset to send (then the namespace's state, read when the stream gets to it)."""

    def __init__(self, watch: NamespaceWatch, limit: int) -> None:
        self.watch = watch
        self.limit = max(1, limit)
        self.pending: deque[Change] = deque()
        self.reset: str | None = None
        self.snapshot = False
        """The namespace's state is to be sent next (at first, and after a reset)."""
        self.closed = False
        self.woken = asyncio.Event()

    def push(self, change: Change) -> None:
        if self.snapshot or self.closed:
            return  # the state sent next includes it
        if len(self.pending) >= self.limit:
            self.restart(RESET_LAGGED)
            return
        self.pending.append(change)
        self.woken.set()

    def restart(self, reason: str | None) -> None:
        self.pending.clear()
        self.reset, self.snapshot = reason, True
        self.woken.set()

    def close(self) -> None:
        self.closed = True
        self.woken.set()

    async def messages(self) -> AsyncIterator[bytes]:
        while not self.closed:
            if self.snapshot:
                # Taken in one step with clearing what was pending: the state is current at
                # `version`, and every change pushed from now on is newer.
                self.snapshot = False
                reset, self.reset = self.reset, None
                version, views = self.watch.state()
                self.pending.clear()
                if reset is not None:
                    yield _message("reset", {"namespace": self.watch.namespace, "reason": reset,
                                             "message": _RESET_MESSAGES[reset]})
                for view in views:
                    yield Change("ADDED", view[0], view[1]).encode(with_id=False)
                yield _message("synced", {"namespace": self.watch.namespace, "resourceVersion": version,
                                          "count": len(views)}, version)
                continue
            if self.pending:
                yield self.pending.popleft().encode()
                continue
            self.woken.clear()
            await self.woken.wait()


class NamespaceWatch:
    """One Kubernetes watch of a namespace's AgentSessions, shared by every stream of it: the
    sessions' summaries by name, the recent changes (for `Last-Event-ID`), the subscribers."""

    def __init__(self, objects: client.CustomObjectsApi, namespace: str, *, replay: int, queue: int) -> None:
        self.objects = objects
        self.namespace = namespace
        self.queue = queue
        self.views: dict[str, tuple[str, Mapping[str, Any]]] = {}
        """Session name → (resourceVersion, summary)."""
        self.version = ""
        """Where the watch is: the resourceVersion of the list or of the last event."""
        self.recent: deque[tuple[str, Change | None]] = deque(maxlen=max(1, replay))
        """Recent positions, oldest first, with the change sent there (None: nothing was sent)."""
        self.subscribers: set[Subscriber] = set()
        self.task: asyncio.Task[None] | None = None
        self.linger: asyncio.TimerHandle | None = None
        self._listed = asyncio.Lock()

    # -- what streams read ----------------------------------------------------------------------

    def state(self) -> tuple[str, list[tuple[str, Mapping[str, Any]]]]:
        return self.version, [self.views[name] for name in sorted(self.views)]

    def since(self, version: str) -> list[Change] | None:
        """The changes after position `version`; None when this watch does not know it."""
        if version == self.version:
            return []
        positions = [position for position, _ in self.recent]
        if version not in positions:
            return None
        start = len(positions) - positions[::-1].index(version)
        return [change for _, change in list(self.recent)[start:] if change is not None]

    def subscribe(self, resume: str | None) -> Subscriber:
        subscriber = Subscriber(self, self.queue)
        replay = self.since(resume) if resume is not None else None
        if replay is None:
            subscriber.restart(RESET_EXPIRED if resume is not None else None)
        else:
            for change in replay:
                subscriber.push(change)
        self.subscribers.add(subscriber)
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None
        return subscriber

    # -- keeping up with the API server ---------------------------------------------------------

    async def start(self) -> None:
        """List (once, whoever asks first), then watch in the background. What the list raises
        (403, 503 …) is the asking stream's answer."""
        async with self._listed:
            if self.task is None:
                await self.relist(None)
                self.task = asyncio.create_task(self._follow(), name=f"status watch {self.namespace}")

    async def relist(self, reason: str | None) -> None:
        """The namespace's summaries from a list (in pages); `reason`: every stream is reset."""
        views: dict[str, tuple[str, Mapping[str, Any]]] = {}
        version = ""
        try:
            async for page, version in session_pages(self.objects, self.namespace):
                for obj in page:
                    meta = obj.get("metadata") or {}
                    views[str(meta.get("name", ""))] = (str(meta.get("resourceVersion", "")), summary(obj))
        except KUBE_FAILURES as exc:
            raise kube_failure(exc, f"list {c.SESSION_PLURAL}") from None
        self.views, self.version = views, version
        self.recent.clear()
        self.recent.append((self.version, None))
        if reason is not None:
            for subscriber in self.subscribers:
                subscriber.restart(reason)

    async def _follow(self) -> None:
        failures = 0
        while True:
            try:
                if await self._watch_once():
                    await self.relist(RESET_RELISTED)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server away, a broken connection: try again
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                logger.warning("watching sessions in %s failed (%s): again in %gs", self.namespace,
                               getattr(exc, "status", None) or type(exc).__name__, delay)
                await asyncio.sleep(delay)

    async def _watch_once(self) -> bool:
        """Watch from `version` until the request ends; True when the position expired (410)."""
        try:
            async with contextlib.aclosing(
                    session_events(self.objects, self.namespace, self.version, WATCH_SECONDS)) as events:
                async for kind, obj in events:
                    self.apply(kind, obj)
        except WatchExpired:
            return True
        return False

    def apply(self, kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        version = str(meta.get("resourceVersion", ""))
        if not version:
            return
        self.version = version
        if kind == "BOOKMARK":
            self.recent.append((version, None))
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        name = str(meta.get("name", ""))
        view = summary(obj)
        before = self.views.get(name)
        if kind == "DELETED":
            self.views.pop(name, None)
        else:
            self.views[name] = (version, view)
            if before is not None and before[1] == view:
                self.recent.append((version, None))  # nothing a client sees changed
                return
            kind = "MODIFIED" if before is not None else "ADDED"
        change = Change(kind, version, view)
        self.recent.append((version, change))
        for subscriber in self.subscribers:
            subscriber.push(change)

    async def stop(self) -> None:
        for subscriber in self.subscribers:
            subscriber.close()
        if self.linger is not None:
            self.linger.cancel()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class StatusStreams:
    """The shared watches of this replica, by namespace, and the streams open per caller."""

    def __init__(self, api: client.ApiClient, options: GatewayOptions) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.options = options
        self.watches: dict[str, NamespaceWatch] = {}
        self.per_caller: Counter[str] = Counter()

    @contextlib.contextmanager
    def held_by(self, user: str) -> Iterator[None]:
        """One of `user`'s streams; 429 `rate_limited` when it holds `status_streams_per_caller`."""
        limit = self.options.status_streams_per_caller
        if limit > 0 and self.per_caller[user] >= limit:
            raise GatewayError(RATE_LIMITED, f"user {user!r} has {limit} session-status streams open on this gateway; "
                               "close one first", retry_after=self.options.keepalive_seconds)
        self.per_caller[user] += 1
        try:
            yield
        finally:
            self.per_caller[user] -= 1
            if self.per_caller[user] <= 0:
                del self.per_caller[user]

    async def subscribe(self, namespace: str, resume: str | None) -> Subscriber:
        watch = self.watches.get(namespace)
        if watch is None:
            watch = self.watches[namespace] = NamespaceWatch(
                self.objects, namespace, replay=self.options.status_stream_replay, queue=self.options.status_stream_queue)
            metrics.STATUS_WATCHES.inc()
        try:
            await watch.start()
        except BaseException:
            if watch.task is None and not watch.subscribers and self.watches.get(namespace) is watch:
                del self.watches[namespace]
                metrics.STATUS_WATCHES.dec()
            raise
        return watch.subscribe(resume)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        watch = subscriber.watch
        subscriber.close()
        watch.subscribers.discard(subscriber)
        if not watch.subscribers and watch.linger is None:
            watch.linger = asyncio.get_running_loop().call_later(
                self.options.status_stream_linger_seconds, self._retire, watch)

    def _retire(self, watch: NamespaceWatch) -> None:
        watch.linger = None
        if watch.subscribers or self.watches.get(watch.namespace) is not watch:
            return
        del self.watches[watch.namespace]
        metrics.STATUS_WATCHES.dec()
        if watch.task is not None:
            watch.task.cancel()

    def close_streams(self) -> None:
        """Every stream ends (shutdown): their handlers return."""
        for watch in self.watches.values():
            for subscriber in watch.subscribers:
                subscriber.close()

    async def close(self) -> None:
        watches, self.watches = list(self.watches.values()), {}
        metrics.STATUS_WATCHES.dec(len(watches))
        for watch in watches:
            await watch.stop()


STATUS_STREAMS: web.AppKey[StatusStreams] = web.AppKey("status_streams", StatusStreams)


def _last_event_id(request: web.Request) -> str | None:
    raw = (request.headers.get("Last-Event-ID") or "").strip()
    return raw or None


async def watch_sessions(request: web.Request) -> web.StreamResponse:
    service: GatewayService = request.app[SERVICE]
    streams = request.app[STATUS_STREAMS]
    namespace = request.match_info["namespace"]
    token = bearer_token(request.headers)
    caller = await service.caller(token)
    await service.authorize(caller, WATCH, namespace)
    with streams.held_by(caller.user):
        subscriber = await streams.subscribe(namespace, _last_event_id(request))
        metrics.OPEN_STREAMS.labels("sessions").inc()
        try:
            response = await open_event_stream(request)
            checked = time.monotonic()
            async for chunk in with_keepalive(subscriber.messages(), service.options.keepalive_seconds):
                if time.monotonic() - checked >= service.options.status_stream_recheck_seconds:
                    checked = time.monotonic()
                    lost = await _lost_rights(service, token, namespace)
                    if lost is not None:
                        await response.write(_message("error", lost.body()))
                        break
                await response.write(SSE_KEEPALIVE if chunk is None else chunk)
            await response.write_eof()
            return response
        finally:
            metrics.OPEN_STREAMS.labels("sessions").dec()
            streams.unsubscribe(subscriber)


async def _lost_rights(service: GatewayService, token: str | None, namespace: str) -> GatewayError | None:
    """Why the caller may no longer follow the namespace (its token or its `watch` right gone)."""
    try:
        caller = await service.authn.authenticate(token)
        if not await service.authz.allowed(caller, WATCH, namespace):
            return forbidden(caller, WATCH, namespace)
    except GatewayError as exc:
        return exc
    return None


def install_status_streams(app: web.Application) -> None:
    """The registry on `app`, its streams ended at shutdown and its watches stopped at cleanup."""
    streams = StatusStreams(app[SERVICE].api, app[SERVICE].options)
    app[STATUS_STREAMS] = streams

    async def end_streams(app: web.Application) -> None:
        streams.close_streams()

    async def stop_watches(app: web.Application) -> None:
        await streams.close()

    app.on_shutdown.append(end_streams)
    app.on_cleanup.append(stop_watches)
