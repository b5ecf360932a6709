"""`GET /v1/history?wait=S`: a long poll that answers when a frame is recorded, not on a timer.

The bridge's HTTP app is served in the test's loop over a bridge without an agent; frames are
recorded as the agent's updates would be (`_on_update`), so the test knows to the microsecond when
one was recorded and can tell a wake-up from a poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent_sessions.runtime.bridge import RuntimeBridge
from agent_sessions.runtime.history import HistoryStore
from agent_sessions.runtime.http_api import build_app
from agent_sessions.runtime.options import RuntimeOptions

TIER = "embedded"  # serves the runtime's HTTP app on a loopback port
DEADLINE = 10.0


class Served:
    def __init__(self, bridge: RuntimeBridge, url: str) -> None:
        self.bridge = bridge
        self.url = url

    def record(self, text: str = "x") -> float:
        """Record one agent frame, as the agent's update would; returns when (perf_counter)."""
        self.bridge._on_update({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}})
        return time.perf_counter()

    async def readers_waiting(self, count: int) -> None:
        async with asyncio.timeout(DEADLINE):
            while self.bridge.waiting_readers != count:
                await asyncio.sleep(0.005)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    bridge = RuntimeBridge(RuntimeOptions(command=("agent",), workspace=tmp_path))
    bridge._history = HistoryStore.open(tmp_path / "history.jsonl")
    runner = web.AppRunner(build_app(bridge), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Served(bridge, f"http://127.0.0.1:{port}")
    finally:
        await bridge.close()
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


async def history(http: aiohttp.ClientSession, served: Served, query: str) -> tuple[int, dict[str, Any], float]:
    """(status, body, perf_counter when the answer was read)."""
    async with http.get(f"{served.url}/v1/history?{query}") as response:
        body = await response.json()
        return response.status, body, time.perf_counter()


async def test_frames_already_there_are_answered_at_once(served, http):
    served.record("one")
    served.record("two")
    started = time.perf_counter()
    status, body, answered = await history(http, served, "after_seq=0&wait=30")
    assert status == 200
    assert [item["seq"] for item in body["items"]] == [1, 2]
    assert body["lastSeq"] == 2 and body["longPoll"] is True
    assert answered - started < 5, "frames after after_seq are answered without waiting"


async def test_a_waiting_request_is_answered_when_the_next_frame_is_recorded(served, http):
    served.record()
    waiting = asyncio.create_task(history(http, served, "after_seq=1&wait=30"))
    await served.readers_waiting(1)
    assert not waiting.done()
    recorded = served.record("news")
    status, body, answered = await waiting
    assert status == 200 and body["longPoll"] is True
    assert [(item["seq"], item["update"]["content"]["text"]) for item in body["items"]] == [(2, "news")]
    # Woken by the frame, not by a timer: a loopback round trip, nowhere near a poll interval.
    assert answered - recorded < 0.2, f"answered {1000 * (answered - recorded):.0f} ms after the frame"
    assert served.bridge.waiting_readers == 0


async def test_a_wait_with_nothing_new_ends_empty_after_the_wait(served, http):
    served.record()
    started = time.perf_counter()
    status, body, answered = await history(http, served, "after_seq=1&wait=0.3")
    assert status == 200
    assert body["items"] == [] and body["lastSeq"] == 1 and body["longPoll"] is True
    assert answered - started >= 0.3


async def test_without_wait_history_answers_at_once_and_says_nothing_of_long_polls(served, http):
    served.record()
    status, body, _ = await history(http, served, "after_seq=1")
    assert status == 200 and body["items"] == [] and "longPoll" not in body
    assert served.bridge.info()["capabilities"]["longPoll"] is True


@pytest.mark.parametrize("wait", ["x", "-1", "30.5", "nan", "inf", "1e9"])
async def test_a_bad_wait_is_an_invalid_request(served, http, wait):
    status, body, _ = await history(http, served, f"after_seq=0&wait={wait}")
    assert status == 422 and body["code"] == "invalid_request"
    assert "wait" in body["message"]


async def test_many_waiting_requests_are_all_answered_by_one_frame(served, http):
    waiting = [asyncio.create_task(history(http, served, "after_seq=0&wait=30")) for _ in range(200)]
    await served.readers_waiting(200)
    served.record()
    answers = await asyncio.wait_for(asyncio.gather(*waiting), timeout=DEADLINE)
    assert {(status, tuple(item["seq"] for item in body["items"])) for status, body, _ in answers} == {(200, (1,))}
    assert served.bridge.waiting_readers == 0


async def test_waiting_readers_cost_a_future_each_and_one_frame_wakes_them_all(served):
    """10,000 readers parked on the bridge itself (no HTTP): one frame answers every one of them."""
    bridge = served.bridge
    readers = [asyncio.create_task(bridge.history_after_waiting(0, None, 30)) for _ in range(10_000)]
    async with asyncio.timeout(DEADLINE):
        while bridge.waiting_readers < len(readers):
            await asyncio.sleep(0.01)
    served.record()
    done = await asyncio.wait_for(asyncio.gather(*readers), timeout=DEADLINE)
    assert all([frame["seq"] for frame in frames] == [1] for frames in done)
    assert bridge.waiting_readers == 0


async def test_a_client_that_goes_away_leaves_no_waiting_reader(served):
    async with aiohttp.ClientSession() as http:
        waiting = asyncio.create_task(history(http, served, "after_seq=0&wait=30"))
        await served.readers_waiting(1)
        waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await served.readers_waiting(0)  # the request's handler was cancelled with its connection


async def test_stopping_the_bridge_answers_waiting_requests_at_once(served, http):
    waiting = asyncio.create_task(history(http, served, "after_seq=0&wait=30"))
    await served.readers_waiting(1)
    started = time.perf_counter()
    await served.bridge.close()
    status, body, answered = await asyncio.wait_for(waiting, timeout=DEADLINE)
    assert status == 200 and body["items"] == [] and body["longPoll"] is True
    assert answered - started < 2, "a stopping bridge does not keep long polls for their whole wait"
    status, body, _ = await history(http, served, "after_seq=0&wait=30")
    assert status == 200 and body["items"] == [], "nor does it make new ones wait"
