"""The runtime client's history long poll: its timeout is the wait on top of the short one, and
the page says whether the runtime honoured `wait` (`"longPoll": true`) or ignored it."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agent_sessions.wire.runtime_client import RuntimeClient, RuntimeTimeouts
from agent_sessions.wire.session_ref import SessionRef

REF = SessionRef("team-a", "demo", "u-1")
CLAIMED = {"namespace": "x", "name": "y", "uid": "z"}


@pytest.fixture
async def history_runtime():
    """History that honours `wait` by answering only after it (nothing new ever comes), or, under
    `/ignoring`, answers at once whatever `wait` says."""

    async def history(request: web.Request) -> web.Response:
        body = {"session": CLAIMED, "items": [{"session": CLAIMED, "seq": 5, "event": "x"}], "lastSeq": 5}
        wait = request.query.get("wait")
        if wait is not None and not request.path.startswith("/ignoring"):
            await asyncio.sleep(float(wait))
            body["longPoll"] = True
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/v1/history", history)
    app.router.add_get("/ignoring/v1/history", history)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_a_history_long_poll_may_outlast_the_short_timeout_and_says_whether_it_was_honoured(history_runtime):
    timeouts = RuntimeTimeouts.of(connect_seconds=2, request_seconds=0.3)
    async with aiohttp.ClientSession() as http:
        client = RuntimeClient(http, timeouts=timeouts)
        page = await client.history_page(history_runtime, REF, 4, wait=0.6)
        assert page.long_poll and page.last_seq == 5
        assert [item["session"] for item in page.items] == [REF.to_json()]
        assert not (await client.history_page(history_runtime, REF, 4)).long_poll
        assert not (await client.history_page(history_runtime + "/ignoring", REF, 4, wait=0.6)).long_poll
        assert await client.history(history_runtime, REF, 4, wait=0.01) == (page.items, 5)
