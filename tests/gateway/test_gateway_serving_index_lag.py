"""A client can be ahead of the gateway's serving index: it read the session's new status itself
(a restart: the new pod's endpoint) while the watch event that tells the index is still on its
way. A call to the endpoint the index had that surely did nothing — nobody listening there, or
another session's runtime refusing the token (401) — is made again to the session's endpoint now;
a call the old runtime may have acted on is never made twice (`GatewayService.reach`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from prometheus_client import REGISTRY

from support.waits import eventually

from .conftest import ALICE, DEADLINE, identity, make_session, read_sse
from .fake_runtime import FakeRuntime, free_port
from .test_gateway_serving_index import session_reads

SESSION = "/v1/namespaces/team-a/sessions/demo"


def stale_lookups() -> float:
    return REGISTRY.get_sample_value("agent_session_gateway_session_lookups_total", {"source": "stale"}) or 0.0


async def lagging(api, runtime: FakeRuntime, service, old: str) -> tuple[dict, str]:
    """The session `demo`, now served by `s2`, while the index still has the endpoint it had
    before: `s1`, now another session's runtime (`old="401"`), or a port nobody listens on
    (`old="refused"`). Returns the session and the old endpoint."""
    runtime.add("s2")
    obj = make_session(api, "demo", endpoint=runtime.endpoint("s2"))
    if old == "401":
        runtime.add("s1")
        runtime.require_token("s1", "another-sessions-token")
        stale = runtime.endpoint("s1")
    else:
        stale = f"http://127.0.0.1:{free_port()}/s1"
    await eventually(lambda: service.index.lookup("team-a", "demo") is not None, "the index", timeout=DEADLINE)
    # What a watch that has not delivered the restart yet leaves in the index:
    service.index.namespaces["team-a"].targets["demo"] = (obj["metadata"]["uid"], stale)
    api.reset_requests()
    return obj, stale


async def sync_message(http: aiohttp.ClientSession, url: str, obj: dict) -> None:
    async with http.post(f"{url}{SESSION}/messages", json={"text": "hi"}, headers=ALICE) as resp:
        reply = await resp.json()
    assert resp.status == 200, reply
    assert (reply["session"], reply["text"]) == (identity(obj), "s2 heard: hi")


async def streamed_message(http: aiohttp.ClientSession, url: str, obj: dict) -> None:
    async with http.post(f"{url}{SESSION}/messages?stream=true", json={"text": "hi"}, headers=ALICE) as resp:
        assert resp.status == 200, await resp.text()
        events = await read_sse(resp, lambda m: bool(m) and m[-1]["event"] in ("done", "error"))
    assert events[-1]["event"] == "done", events
    text = "".join(e["data"]["update"]["content"]["text"] for e in events if e["event"] == "agent_message_chunk")
    assert text == "s2 heard: hi" and all(e["data"]["session"] == identity(obj) for e in events)


async def ws_frames(http: aiohttp.ClientSession, url: str, request: dict, last: str) -> list[dict]:
    frames: list[dict] = []
    async with http.ws_connect(f"{url}/v1/ws", headers=ALICE) as ws:
        await ws.send_json({"namespace": "team-a", "name": "demo", **request})
        async with asyncio.timeout(DEADLINE):
            while not frames or frames[-1]["type"] not in (last, "error"):
                frames.append(await ws.receive_json())
    return frames


async def ws_message(http: aiohttp.ClientSession, url: str, obj: dict) -> None:
    frames = await ws_frames(http, url, {"type": "send", "id": "m1", "text": "hi"}, "done")
    assert frames[-1]["type"] == "done", frames
    text = "".join(f["update"]["content"]["text"] for f in frames if f.get("event") == "agent_message_chunk")
    assert text == "s2 heard: hi" and all(f["session"] == identity(obj) for f in frames)


async def ws_subscription(http: aiohttp.ClientSession, url: str, obj: dict) -> None:
    frames = await ws_frames(http, url, {"type": "subscribe", "after_seq": 0}, "subscribed")
    assert frames == [{"type": "subscribed", "session": identity(obj), "after_seq": 0}]


async def event_stream(http: aiohttp.ClientSession, url: str, obj: dict) -> None:
    async with http.get(f"{url}{SESSION}/events?after_seq=0", headers=ALICE) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/event-stream"


async def cancel(http: aiohttp.ClientSession, url: str, obj: dict) -> None:
    async with http.post(f"{url}{SESSION}/cancel", headers=ALICE) as resp:
        body = await resp.json()
    assert resp.status == 200 and body == {"session": identity(obj), "cancelled": False}, body


CALLS: dict[str, Callable[[aiohttp.ClientSession, str, dict], Awaitable[None]]] = {
    "sync message": sync_message, "streamed message": streamed_message, "websocket message": ws_message,
    "websocket subscription": ws_subscription, "event stream": event_stream, "cancel": cancel,
}


@pytest.mark.parametrize("old", ["401", "refused"])
@pytest.mark.parametrize("call", list(CALLS))
async def test_a_client_ahead_of_the_index_is_answered_by_the_sessions_runtime_now(
        api, runtime, start_gateway, http, call, old):
    running = await start_gateway()
    obj, stale = await lagging(api, runtime, running.service, old)
    stale_before = stale_lookups()

    await CALLS[call](http, running.url, obj)

    assert len(session_reads(api, "demo")) == 1  # the one read that found where it serves now
    assert stale_lookups() == stale_before + 1
    if old == "401":
        assert runtime.sessions["s1"].requests == [] and len(runtime.refused) == 1  # it took nothing
    assert runtime.sessions["s2"].requests, "the session's runtime now was called"
    # The stale endpoint is forgotten; the next request reads the session, until the watch says more.
    assert running.service.index.lookup("team-a", "demo") is None


async def test_a_message_the_old_runtime_answered_is_not_sent_again(api, runtime, start_gateway, http):
    # The old endpoint's runtime took the request and answered it (here: busy): sending it to the
    # new one too would be a second delivery of the same message.
    running = await start_gateway()
    obj, _ = await lagging(api, runtime, running.service, "401")
    runtime.tokens.pop("s1")
    held = runtime.sessions["s1"]
    held.hold = True
    held.start_turn("a turn already running")
    async with http.post(f"{running.url}{SESSION}/messages", json={"text": "hi"}, headers=ALICE) as resp:
        body = await resp.json()
    assert (resp.status, body["code"]) == (409, "session_busy"), body
    assert runtime.sessions["s2"].requests == []
    held.released.set()


async def test_a_message_whose_connection_dropped_after_it_went_out_is_not_sent_again(
        api, runtime, start_gateway, http):
    running = await start_gateway()

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    dropping = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        obj, _ = await lagging(api, runtime, running.service, "refused")
        port = dropping.sockets[0].getsockname()[1]
        running.service.index.namespaces["team-a"].targets["demo"] = (obj["metadata"]["uid"],
                                                                      f"http://127.0.0.1:{port}/s1")
        async with http.post(f"{running.url}{SESSION}/messages", json={"text": "hi"}, headers=ALICE) as resp:
            body = await resp.json()
        assert (resp.status, body["code"]) == (503, "provider_unavailable"), body
        assert runtime.sessions["s2"].requests == []
        assert session_reads(api, "demo") == []
        assert running.service.index.lookup("team-a", "demo") is None  # the next message reads the session
    finally:
        dropping.close()
        await dropping.wait_closed()


async def test_a_runtime_refusing_at_the_endpoint_the_session_still_has_is_not_called_twice(
        api, runtime, start_gateway, http):
    running = await start_gateway()
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    await eventually(lambda: running.service.index.lookup("team-a", "demo") is not None, "the index",
                     timeout=DEADLINE)
    runtime.require_token("s1", "not-what-the-gateway-derives")
    async with http.post(f"{running.url}{SESSION}/messages", json={"text": "hi"}, headers=ALICE) as resp:
        body = await resp.json()
    assert (resp.status, body["code"]) == (503, "provider_unavailable"), body
    assert len(runtime.refused) == 1  # read again: the same endpoint, so no second call


async def test_forgetting_a_failed_endpoint_keeps_what_the_watch_said_since(api, runtime, start_gateway):
    running = await start_gateway()
    make_session(api, "demo", endpoint="http://127.0.0.1:1/new")
    index = running.service.index
    await eventually(lambda: index.lookup("team-a", "demo") is not None, "the index", timeout=DEADLINE)
    uid, endpoint = index.lookup("team-a", "demo")
    index.forget("team-a", "demo", (uid, "http://127.0.0.1:1/old"))  # a call to the old one failed late
    assert index.lookup("team-a", "demo") == (uid, endpoint)
    index.forget("team-a", "demo", (uid, endpoint))
    assert index.lookup("team-a", "demo") is None
