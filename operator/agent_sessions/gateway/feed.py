"""Tailing a session: one history follower per session per replica, shared by all its subscribers.

Why history: the runtime bridge streams a turn only to the request that started it; what anyone
else learns about the session, they learn from `GET /v1/history?after_seq=N`. The gateway must be
stateless (any replica serves any client), so it cannot rely on having started the turn itself.
A `SessionFeed` therefore follows the runtime's history after the last seq it has seen and fans
the new frames out to every SSE `/events` client and WebSocket subscriber of that session on this
replica — one follower per session, not per subscriber, and none at all for sessions nobody
watches.

Push, not polling: the feed long-polls (`&wait=LONG_POLL_SECONDS`). The runtime answers as soon
as a frame is recorded after the cursor (its bridge wakes waiting readers when it records one),
or empty after the wait, and the feed asks again at once: a frame reaches subscribers one
loopback round trip after the agent produced it, and an idle session costs one request per
`LONG_POLL_SECONDS`. The first request goes out at once when the runtime's info says it long-polls
(`capabilities.longPoll`); after that, each answer decides when the next one goes. A runtime that
ignores `wait` (an http platform serving the runtime API itself, an older bridge) answers at once
and without `"longPoll": true`: the next request waits `history_poll_seconds` (or a poke), so such
a runtime is polled at that interval as before and never spun on, and one that starts honouring
`wait` (after an upgrade) is followed by push from its next answer. An empty answer that came back
well before its wait (a runtime stopping) counts as a poll too. A runtime that refuses `wait`
(422) is polled without it from then on.

Latency: frames of a turn that passes through this replica (a message sent through it) are also
published into the feed as they stream by, so subscribers on the same replica see them at once;
others see them one round trip later (a polled runtime: within one poll interval).

Order and gaps: a feed delivers frames in seq order, each once. A subscriber first attaches (its
queue gets everything after the feed's cursor), then replays history from its own `after_seq` up
to the runtime's lastSeq, then drains its queue skipping what the replay covered: no frame is lost
between the replay and the tail, none is seen twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from agent_sessions.wire.frames import Frame, frame_seq
from agent_sessions.wire.runtime_client import RuntimeClient
from agent_sessions.wire.session_ref import SessionRef

from . import metrics
from .errors import INVALID_REQUEST, PROVIDER_UNAVAILABLE, GatewayError

logger = logging.getLogger(__name__)

MAX_BACKLOG = 10_000
"""Frames a subscriber may fall behind by before it is dropped (it can resume with after_seq)."""

LONG_POLL_SECONDS = 25.0
"""How long one history request may wait for the next frame (the runtime allows up to 30 s; the
request's timeout is `upstream_request_seconds` on top). None or 0: plain polling."""

FeedKey = tuple[str, str, str | None, str]


@dataclass(eq=False)
class Subscription:
    start: int
    """The feed's cursor when this subscription began: it receives every frame after it."""
    backlog: deque[Frame] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failure: GatewayError | None = None

    def push(self, frame: Frame) -> None:
        if self.failure is not None:
            return
        if len(self.backlog) >= MAX_BACKLOG:
            self.fail(GatewayError(PROVIDER_UNAVAILABLE, "the subscriber fell too far behind; resume with after_seq"))
            return
        self.backlog.append(frame)
        self.ready.set()

    def fail(self, error: GatewayError) -> None:
        if self.failure is None:
            self.failure = error
            self.backlog.clear()
            self.ready.set()

    async def next(self) -> Frame:
        """The next frame; raises the feed's failure once the backlog is drained."""
        while not self.backlog:
            if self.failure is not None:
                raise self.failure
            self.ready.clear()
            await self.ready.wait()
        return self.backlog.popleft()


class SessionFeed:
    def __init__(self, key: FeedKey, session: SessionRef, endpoint: str, runtime: RuntimeClient,
                 poll_seconds: float, page_size: int, wait_seconds: float | None = LONG_POLL_SECONDS) -> None:
        self.key = key
        self.session = session
        self.endpoint = endpoint
        self.runtime = runtime
        self.poll_seconds = poll_seconds
        self.page_size = page_size
        self.wait_seconds = wait_seconds or None
        """The long poll's wait; None once the runtime refused it (and when configured so)."""
        self.cursor = 0
        self.subscribers: set[Subscription] = set()
        self.failure: GatewayError | None = None
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin at the runtime's current lastSeq (subscribers replay older frames themselves)."""
        info = await self.runtime.info(self.endpoint, self.session)
        self.cursor = info.last_seq or 0
        capabilities = info.body.get("capabilities")
        long_polls = isinstance(capabilities, dict) and capabilities.get("longPoll") is True
        self._task = asyncio.create_task(self._follow(at_once=long_polls), name=f"gateway.feed {self.session}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self) -> Subscription:
        subscription = Subscription(start=self.cursor)
        if self.failure is not None:
            subscription.fail(self.failure)
        self.subscribers.add(subscription)
        return subscription

    def publish(self, frame: Frame) -> None:
        """A frame seen on a stream through this replica: delivered now if it is the next one, else
        the follower is asked to catch up at once."""
        seq = frame_seq(frame)
        if seq is None or seq <= self.cursor:
            return
        if seq == self.cursor + 1:
            self._deliver(frame)
        else:
            self._poke.set()

    def _deliver(self, frame: Frame) -> None:
        seq = frame_seq(frame)
        if seq is None or seq <= self.cursor:
            return
        self.cursor = seq
        for subscription in list(self.subscribers):
            subscription.push(frame)

    async def _follow(self, at_once: bool) -> None:
        """Ask the runtime for what follows the cursor, again at once after a long poll's answer,
        else after `poll_seconds` (or a poke); the first time at once when the runtime says it
        long-polls (`capabilities.longPoll` in its info)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not at_once:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._poke.wait(), timeout=self.poll_seconds)
                self._poke.clear()
                wait = self.wait_seconds
                asked = loop.time()
                try:
                    page = await self.runtime.history_page(self.endpoint, self.session, self.cursor, self.page_size,
                                                           wait=wait)
                except GatewayError as exc:
                    if wait is None or exc.code != INVALID_REQUEST:
                        raise
                    logger.info("the runtime of %s refuses long polls: polling it every %gs", self.session,
                                self.poll_seconds)
                    self.wait_seconds = None
                    at_once = False
                    continue
                before = self.cursor
                for item in page.items:
                    self._deliver(item)
                if before < self.cursor < page.last_seq:
                    at_once = True  # more pages to fetch
                    continue
                # A long poll that was answered with frames, or after (most of) its wait, is followed
                # by the next at once; anything else (an ignored wait, a runtime stopping) is a poll.
                at_once = page.long_poll and wait is not None and (bool(page.items) or loop.time() - asked >= wait / 2)
        except GatewayError as exc:
            logger.info("tailing %s stopped: %s", self.session, exc.message)
            self.failure = exc
            for subscription in list(self.subscribers):
                subscription.fail(exc)


class FeedRegistry:
    """The feeds of this replica, by session (namespace, name, uid) and endpoint; a feed lives while
    it has subscribers."""

    def __init__(self, runtime: RuntimeClient, poll_seconds: float, page_size: int,
                 wait_seconds: float | None = LONG_POLL_SECONDS) -> None:
        self.runtime = runtime
        self.poll_seconds = poll_seconds
        """The interval for runtimes that do not long-poll."""
        self.page_size = page_size
        self.wait_seconds = wait_seconds
        self.feeds: dict[FeedKey, SessionFeed] = {}
        self._starting: dict[FeedKey, asyncio.Future[SessionFeed]] = {}

    @staticmethod
    def key(session: SessionRef, endpoint: str) -> FeedKey:
        return (session.namespace, session.name, session.uid, endpoint)

    async def attach(self, session: SessionRef, endpoint: str) -> tuple[SessionFeed, Subscription]:
        key = self.key(session, endpoint)
        while True:
            feed = self.feeds.get(key)
            if feed is not None and feed.failure is None:
                return feed, feed.subscribe()
            starting = self._starting.get(key)
            if starting is None:
                starting = asyncio.ensure_future(self._start(key, session, endpoint))
                starting.add_done_callback(_retrieve)
                self._starting[key] = starting
            feed = await asyncio.shield(starting)
            if self.feeds.get(key) is feed:  # else it was started and dropped meanwhile: again
                return feed, feed.subscribe()

    async def _start(self, key: FeedKey, session: SessionRef, endpoint: str) -> SessionFeed:
        try:
            feed = SessionFeed(key, session, endpoint, self.runtime, self.poll_seconds, self.page_size,
                               self.wait_seconds)
            await feed.start()
            self.feeds[key] = feed
            metrics.TAILED_SESSIONS.set(len(self.feeds))
            return feed
        finally:
            self._starting.pop(key, None)

    async def detach(self, feed: SessionFeed, subscription: Subscription) -> None:
        feed.subscribers.discard(subscription)
        if not feed.subscribers and self.feeds.get(feed.key) is feed:
            del self.feeds[feed.key]
            metrics.TAILED_SESSIONS.set(len(self.feeds))
            await feed.stop()
        elif not feed.subscribers:
            await feed.stop()

    def publish(self, session: SessionRef, endpoint: str, frame: Frame) -> None:
        feed = self.feeds.get(self.key(session, endpoint))
        if feed is not None:
            feed.publish(frame)

    async def close(self) -> None:
        """At shutdown: end every subscription (its client reconnects, to another replica)."""
        feeds = list(self.feeds.values())
        self.feeds.clear()
        metrics.TAILED_SESSIONS.set(0)
        going = GatewayError(PROVIDER_UNAVAILABLE, "the gateway is shutting down; reconnect to resume", retry_after=1)
        for feed in feeds:
            await feed.stop()
            feed.failure = going
            for subscription in list(feed.subscribers):
                subscription.fail(going)


class SessionTail:
    """One subscriber's view of a session: history after `after_seq`, then every new frame, in seq
    order, each once. `await open()` (errors: runtime unreachable), iterate, `await close()`."""

    def __init__(self, registry: FeedRegistry, session: SessionRef, endpoint: str, after_seq: int | None) -> None:
        self.registry = registry
        self.session = session
        self.endpoint = endpoint
        self.after_seq = after_seq
        self.position = 0
        """The last seq delivered (or replayed past)."""
        self._feed: SessionFeed | None = None
        self._subscription: Subscription | None = None

    async def open(self) -> int:
        """Attach; returns the seq the tail starts after (after_seq, or the feed's cursor if none)."""
        self._feed, self._subscription = await self.registry.attach(self.session, self.endpoint)
        self.position = self.after_seq if self.after_seq is not None else self._subscription.start
        return self.position

    async def close(self) -> None:
        if self._feed is not None and self._subscription is not None:
            await self.registry.detach(self._feed, self._subscription)
        self._feed = self._subscription = None

    async def frames(self) -> AsyncIterator[Frame]:
        assert self._feed is not None and self._subscription is not None, "open() first"
        runtime, page = self.registry.runtime, self.registry.page_size
        if self.position < self._subscription.start:
            while True:
                items, last = await runtime.history(self.endpoint, self.session, self.position, page)
                for item in items:
                    seq = frame_seq(item)
                    if seq is not None and seq > self.position:
                        self.position = seq
                        yield item
                if not items or self.position >= last:
                    break
        while True:
            frame = await self._subscription.next()
            seq = frame_seq(frame)
            if seq is not None and seq > self.position:
                self.position = seq
                yield frame


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
