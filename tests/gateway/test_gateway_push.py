"""Tails are pushed: a frame the agent produces reaches an SSE `/events` client in a round trip,
not a poll interval, through the runtime's long poll; a runtime that ignores `wait` is polled at
`history_poll_seconds`, never spun on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from agent_sessions.runtime.bridge import RuntimeBridge
from agent_sessions.runtime.history import HistoryStore
from agent_sessions.runtime.http_api import build_app
from agent_sessions.runtime.options import RuntimeOptions, SessionIdentity

from .conftest import ALICE, DEADLINE, identity, make_session, read_sse
from .test_gateway_http import session_url

TIER = "embedded"  # serves a runtime bridge's HTTP app in the test


class ServedBridge:
    """A runtime bridge (no agent) on a loopback port; frames are recorded as the agent's would be."""

    def __init__(self, bridge: RuntimeBridge, url: str) -> None:
        self.bridge = bridge
        self.url = url

    def record(self, text: str) -> float:
        self.bridge._on_update({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}})
        return time.perf_counter()

    async def long_polled(self) -> None:
        """Until a reader (the gateway's feed) waits on the bridge's history."""
        async with asyncio.timeout(DEADLINE):
            while not self.bridge.waiting_readers:
                await asyncio.sleep(0.005)


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[ServedBridge]:
    options = RuntimeOptions(command=("agent",), workspace=tmp_path, session=SessionIdentity("team-a", "demo", "u"))
    runtime = RuntimeBridge(options)
    runtime._history = HistoryStore.open(tmp_path / "history.jsonl")
    runner = web.AppRunner(build_app(runtime), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield ServedBridge(runtime, f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runtime.close()
        await runner.cleanup()


async def test_a_frame_reaches_an_sse_client_in_a_round_trip_not_a_poll_interval(api, bridge, start_gateway, http):
    # A poll interval no push could be mistaken for: only a pushed frame arrives within the bound.
    gateway = (await start_gateway(history_poll_seconds=5.0)).url
    obj = make_session(api, "demo", endpoint=bridge.url)
    bridge.record("before")  # seq 1: replayed, not tailed

    async with http.get(session_url(gateway, "demo") + "/events?after_seq=0", headers=ALICE) as events:
        assert events.status == 200
        assert [m["data"]["seq"] for m in await read_sse(events, lambda m: len(m) == 1)] == [1]
        latencies = []
        for n in range(2, 7):
            await bridge.long_polled()
            produced = bridge.record(f"frame {n}")
            [message] = await read_sse(events, lambda m: len(m) == 1)
            latencies.append(time.perf_counter() - produced)
            assert message["data"]["seq"] == n and message["id"] == str(n)
            assert message["data"]["update"]["content"]["text"] == f"frame {n}"
            assert message["data"]["session"] == identity(obj)
    assert max(latencies) < 0.3, f"latencies (ms): {[round(1000 * t) for t in latencies]}"


async def test_frames_recorded_in_a_burst_arrive_in_order_each_once(api, bridge, start_gateway, http):
    gateway = (await start_gateway(history_poll_seconds=5.0)).url
    make_session(api, "demo", endpoint=bridge.url)
    async with http.get(session_url(gateway, "demo") + "/events", headers=ALICE) as events:
        await bridge.long_polled()
        for n in range(1, 201):
            bridge.record(f"frame {n}")
            if n % 7 == 0:
                await asyncio.sleep(0)  # let some long polls be answered mid-burst
        messages = await read_sse(events, lambda m: len(m) == 200)
    assert [m["data"]["seq"] for m in messages] == list(range(1, 201))


async def test_a_runtime_that_ignores_wait_is_polled_at_the_interval_not_spun_on(api, runtime, start_gateway, http):
    gateway = (await start_gateway(history_poll_seconds=0.1)).url
    fake = runtime.add("s1")  # answers history at once, whatever `wait` says
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))

    def history_requests() -> int:
        return sum(path.endswith("/v1/history") for path in fake.requests)

    async with http.get(session_url(gateway, "demo") + "/events", headers=ALICE) as events:
        async with asyncio.timeout(DEADLINE):
            while not history_requests():
                await asyncio.sleep(0.01)
        first = history_requests()
        await asyncio.sleep(1.0)  # the window over which requests are counted
        polls = history_requests() - first
        assert 3 <= polls <= 15, f"{polls} history requests in 1 s at a 0.1 s interval"
        await fake.start_turn("still tailed")
        messages = await read_sse(events, lambda m: len(m) == 5)
    assert [m["data"]["seq"] for m in messages] == [1, 2, 3, 4, 5]
