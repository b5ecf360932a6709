"""Tailing: replay then live, in seq order, each frame once; one poller shared; failures end it."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from agent_sessions.gateway.errors import GatewayError
from agent_sessions.gateway.feed import LONG_POLL_SECONDS, FeedRegistry, SessionTail
from agent_sessions.wire.runtime_client import HistoryPage
from agent_sessions.wire.runtime_info import RuntimeInfo
from agent_sessions.wire.session_ref import SessionRef

REF = SessionRef("ns", "s", "u")


class StubRuntime:
    """Just the history and info calls of RuntimeClient, over a list; like a runtime that ignores
    `wait` (it answers at once, without `longPoll`)."""

    def __init__(self, last: int = 0) -> None:
        self.frames = [{"session": REF.to_json(), "seq": n, "event": "x"} for n in range(1, last + 1)]
        self.history_calls = 0
        self.down = False

    def add(self, count: int = 1) -> None:
        for _ in range(count):
            self.frames.append({"session": REF.to_json(), "seq": len(self.frames) + 1, "event": "x"})

    async def info(self, endpoint, session):
        if self.down:
            raise GatewayError("provider_unavailable", "down")
        return RuntimeInfo(last_seq=len(self.frames))

    async def history(self, endpoint, session, after_seq, limit=None):
        self.history_calls += 1
        if self.down:
            raise GatewayError("provider_unavailable", "down")
        items = [f for f in self.frames if f["seq"] > after_seq]
        return (items[:limit] if limit else items), len(self.frames)

    async def history_page(self, endpoint, session, after_seq, limit=None, *, wait=None):
        return HistoryPage(*await self.history(endpoint, session, after_seq, limit))


async def take(iterator, count: int) -> list[int]:
    out = []
    async with asyncio.timeout(5):
        while len(out) < count:
            out.append((await anext(iterator))["seq"])
    return out


async def test_tail_replays_after_after_seq_then_follows_without_gaps_or_repeats():
    runtime = StubRuntime(last=5)
    registry = FeedRegistry(runtime, poll_seconds=0.01, page_size=2)  # type: ignore[arg-type]
    tail = SessionTail(registry, REF, "http://rt", after_seq=1)
    assert await tail.open() == 1
    frames = tail.frames()
    assert await take(frames, 4) == [2, 3, 4, 5]
    runtime.add(3)
    assert await take(frames, 3) == [6, 7, 8]
    await frames.aclose()
    await tail.close()
    assert registry.feeds == {}


async def test_tail_without_after_seq_starts_at_the_present():
    runtime = StubRuntime(last=5)
    registry = FeedRegistry(runtime, poll_seconds=0.01, page_size=100)  # type: ignore[arg-type]
    tail = SessionTail(registry, REF, "http://rt", after_seq=None)
    assert await tail.open() == 5
    runtime.add()
    assert await take(tail.frames(), 1) == [6]
    await tail.close()


async def test_subscribers_of_one_session_share_one_feed():
    runtime = StubRuntime()
    registry = FeedRegistry(runtime, poll_seconds=0.01, page_size=100)  # type: ignore[arg-type]
    tails = [SessionTail(registry, REF, "http://rt", 0) for _ in range(3)]
    for tail in tails:
        await tail.open()
    assert len(registry.feeds) == 1
    runtime.add(2)
    iterators = [tail.frames() for tail in tails]
    assert [await take(it, 2) for it in iterators] == [[1, 2]] * 3
    for tail in tails:
        await tail.close()
    assert registry.feeds == {}


async def test_published_frames_reach_subscribers_before_the_next_poll():
    runtime = StubRuntime()
    registry = FeedRegistry(runtime, poll_seconds=3600, page_size=100)  # type: ignore[arg-type]
    tail = SessionTail(registry, REF, "http://rt", None)
    await tail.open()
    runtime.add()
    registry.publish(REF, "http://rt", runtime.frames[-1])
    assert await take(tail.frames(), 1) == [1]
    assert runtime.history_calls == 0
    await tail.close()


async def test_a_failing_runtime_ends_every_subscription_with_its_error():
    runtime = StubRuntime()
    registry = FeedRegistry(runtime, poll_seconds=0.01, page_size=100)  # type: ignore[arg-type]
    tail = SessionTail(registry, REF, "http://rt", None)
    await tail.open()
    runtime.down = True
    with pytest.raises(GatewayError):
        await take(tail.frames(), 1)
    await tail.close()


class LongPollStub(StubRuntime):
    """A runtime that honours `wait`: it answers when there is a frame after `after_seq` (or after
    the wait), says so, and says it long-polls in its info."""

    def __init__(self, last: int = 0, *, early: bool = False, refuses_wait: bool = False) -> None:
        super().__init__(last)
        self.recorded = asyncio.Event()
        self.early = early
        """Answer an empty long poll at once (a runtime stopping, or a broken one)."""
        self.refuses_wait = refuses_wait
        self.waits: list[float | None] = []

    def add(self, count: int = 1) -> None:
        super().add(count)
        self.recorded.set()
        self.recorded.clear()

    async def info(self, endpoint, session):
        info = await super().info(endpoint, session)
        return RuntimeInfo(last_seq=info.last_seq, body={"capabilities": {"longPoll": not self.refuses_wait}})

    async def history_page(self, endpoint, session, after_seq, limit=None, *, wait=None):
        self.waits.append(wait)
        if wait is not None and self.refuses_wait:
            self.history_calls += 1
            raise GatewayError("invalid_request", "unknown parameter wait")
        if wait is not None and not self.early:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    while len(self.frames) <= after_seq:
                        await self.recorded.wait()
        items, last = await self.history(endpoint, session, after_seq, limit)
        return HistoryPage(items, last, long_poll=wait is not None)


async def test_a_long_polling_runtime_is_followed_without_polling():
    runtime = LongPollStub(last=2)
    registry = FeedRegistry(runtime, poll_seconds=3600, page_size=100)  # type: ignore[arg-type]
    tail = SessionTail(registry, REF, "http://rt", None)
    assert await tail.open() == 2
    frames = tail.frames()
    for n in range(3, 8):
        runtime.add()
        assert await take(frames, 1) == [n]
    assert runtime.history_calls <= 6, "one long poll per frame (and the one waiting now), nothing more"
    assert set(runtime.waits) == {LONG_POLL_SECONDS}
    await frames.aclose()
    await tail.close()


async def test_early_empty_answers_to_long_polls_are_taken_as_polls():
    runtime = LongPollStub(early=True)
    registry = FeedRegistry(runtime, poll_seconds=0.05, page_size=100)  # type: ignore[arg-type]
    tail = SessionTail(registry, REF, "http://rt", None)
    await tail.open()
    await asyncio.sleep(0.5)  # the window over which requests are counted
    assert 2 <= runtime.history_calls <= 15, f"{runtime.history_calls} requests in 0.5 s at a 0.05 s interval"
    runtime.add()
    assert await take(tail.frames(), 1) == [1]
    await tail.close()


async def test_a_runtime_that_refuses_wait_is_polled_without_it():
    runtime = LongPollStub(refuses_wait=True)
    registry = FeedRegistry(runtime, poll_seconds=0.01, page_size=100)  # type: ignore[arg-type]
    tail = SessionTail(registry, REF, "http://rt", None)
    await tail.open()
    runtime.add(2)
    assert await take(tail.frames(), 2) == [1, 2]
    assert runtime.waits[0] == LONG_POLL_SECONDS, "asked once with wait, refused"
    assert set(runtime.waits[1:]) == {None}, "then never again"
    await tail.close()
