"""Tailing: replay then live, in seq order, each frame once; one poller shared; failures end it."""

from __future__ import annotations

import asyncio

import pytest

from agent_sessions.gateway.errors import GatewayError
from agent_sessions.gateway.feed import FeedRegistry, SessionTail
from agent_sessions.wire.runtime_info import RuntimeInfo
from agent_sessions.wire.session_ref import SessionRef

REF = SessionRef("ns", "s", "u")


class StubRuntime:
    """Just the history and info calls of RuntimeClient, over a list."""

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
