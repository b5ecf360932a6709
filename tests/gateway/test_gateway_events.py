"""`GET …/events`: replay after `after_seq` (or `Last-Event-ID`), then tail; keep-alives."""

from __future__ import annotations

import asyncio

import aiohttp

from .conftest import ALICE, DEADLINE, identity, make_session, read_sse
from .test_gateway_http import session_url


def seqs(messages: list[dict]) -> list[int]:
    return [m["data"]["seq"] for m in messages]


async def test_events_replay_after_after_seq_then_tail_new_frames(api, runtime, gateway, http):
    fake = runtime.add("s1")
    obj = make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    await fake.start_turn("before")  # seqs 1..5

    async with http.get(session_url(gateway, "demo") + "/events?after_seq=2", headers=ALICE) as events:
        assert events.status == 200
        replay = await read_sse(events, lambda m: len(m) == 3)
        assert seqs(replay) == [3, 4, 5]

        # A turn through the gateway (published to the feed at once) ...
        async with http.post(session_url(gateway, "demo") + "/messages", json={"text": "via gateway"},
                             headers=ALICE) as resp:
            assert resp.status == 200
        through = await read_sse(events, lambda m: len(m) == 5)
        # ... and one that never passed through this replica (seen by polling history).
        await fake.start_turn("elsewhere")
        elsewhere = await read_sse(events, lambda m: len(m) == 5)

    assert seqs(through) == [6, 7, 8, 9, 10]
    assert seqs(elsewhere) == [11, 12, 13, 14, 15]
    everything = replay + through + elsewhere
    assert all(m["data"]["session"] == identity(obj) for m in everything)
    assert [int(m["id"]) for m in everything] == list(range(3, 16))
    assert elsewhere[0]["data"]["update"]["content"][0]["text"] == "elsewhere"


async def test_last_event_id_resumes_where_the_browser_left_off(api, runtime, gateway, http):
    fake = runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    await fake.start_turn("one")

    headers = {**ALICE, "Last-Event-ID": "4"}
    async with http.get(session_url(gateway, "demo") + "/events?after_seq=0", headers=headers) as events:
        replay = await read_sse(events, lambda m: len(m) == 1)
    assert seqs(replay) == [5]


async def test_events_without_after_seq_only_tail(api, runtime, gateway, http):
    fake = runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    await fake.start_turn("old")

    async with http.get(session_url(gateway, "demo") + "/events", headers=ALICE) as events:
        await fake.start_turn("new")
        fresh = await read_sse(events, lambda m: len(m) == 5)
    assert seqs(fresh) == [6, 7, 8, 9, 10]


async def test_silent_event_stream_gets_keep_alive_comments(api, runtime, start_gateway, http):
    gateway = (await start_gateway(keepalive_seconds=0.1)).url
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))

    async with http.get(session_url(gateway, "demo") + "/events", headers=ALICE) as events:
        async with asyncio.timeout(DEADLINE):
            line = await events.content.readline()
    assert line == b": keep-alive\n"


async def test_one_history_poller_per_session_whatever_the_subscribers(api, runtime, start_gateway, http):
    running = await start_gateway()
    fake = runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    feeds = running.service.feeds.feeds
    url = session_url(running.url, "demo") + "/events"
    async with http.get(url, headers=ALICE) as first, http.get(url, headers=ALICE) as second:
        await fake.start_turn("fan out")
        one = await read_sse(first, lambda m: len(m) == 5)
        two = await read_sse(second, lambda m: len(m) == 5)
        assert len(feeds) == 1
        assert len(next(iter(feeds.values())).subscribers) == 2
    assert seqs(one) == seqs(two) == [1, 2, 3, 4, 5]
    async with asyncio.timeout(DEADLINE):  # the last subscriber gone, the poller stops
        while feeds:
            await asyncio.sleep(0.01)


async def test_event_stream_ends_with_an_error_when_the_runtime_goes_away(api, runtime, gateway, http):
    runtime.add("s1")
    obj = make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    async with http.get(session_url(gateway, "demo") + "/events", headers=ALICE) as events:
        del runtime.sessions["s1"]  # the runtime no longer serves it: history polls fail
        messages = await read_sse(events, lambda m: bool(m))
    assert messages[-1]["event"] == "error"
    assert messages[-1]["data"]["code"] == "provider_unavailable"
    assert messages[-1]["data"]["session"] == identity(obj)


async def test_shutdown_ends_streams_so_clients_reconnect_elsewhere(api, runtime, http, tmp_path):
    from agent_sessions.gateway.options import GatewayOptions
    from agent_sessions.gateway.server import serve_gateway
    from agent_sessions.k8s.client import make_api_client

    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    client = await make_api_client(str(api.write_kubeconfig(tmp_path / "kc", token="gateway-token")))
    try:
        async with serve_gateway(GatewayOptions(host="127.0.0.1", port=0, history_poll_seconds=0.05), client) as gw:
            events = await http.get(session_url(gw.url, "demo") + "/events", headers=ALICE)
            ws = await http.ws_connect(f"{gw.url}/v1/ws", headers=ALICE)
            await ws.send_json({"type": "ping"})
            assert (await ws.receive_json())["type"] == "pong"
        # Leaving the context shut the gateway down: both streams were ended, promptly.
        async with asyncio.timeout(DEADLINE):
            messages = await read_sse(events, lambda m: bool(m))
            closing = await ws.receive()
        assert messages[-1]["event"] == "error" and messages[-1]["data"]["code"] == "provider_unavailable"
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1001)  # going away
        events.release()
        await ws.close()
    finally:
        await client.close()
