"""The one runtime client and what `/v1/info` says: a timeout per kind of call, answers tagged
with the Kubernetes identity, failures handed to the caller's hook."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request

from agent_sessions.wire.runtime_client import OWN_KEEPALIVE_SECONDS, RuntimeCallFailed, RuntimeClient, RuntimeTimeouts
from agent_sessions.wire.runtime_info import RuntimeInfo
from agent_sessions.wire.session_ref import SessionRef
from agent_sessions.wire.sse import sse_encode, wants_stream

REF = SessionRef("team-a", "demo", "u-1")
CLAIMED = {"namespace": "x", "name": "y", "uid": "z"}
INFO = {"session": CLAIMED, "state": "busy", "sessionInfo": {"title": "t", "updatedAt": None}, "lastSeq": 4,
        "messageCount": 2, "health": {"status": "unhealthy", "reason": "AgentExited", "exitCode": 1}}


def test_info_is_read_and_relayed_with_the_kubernetes_identity():
    info = RuntimeInfo.from_json(INFO)
    assert (info.state, info.session_info, info.last_seq, info.message_count) == ("busy", {"title": "t"}, 4, 2)
    assert not info.healthy and info.health_message() == "AgentExited; exit code 1"
    assert info.tagged(REF) == {**INFO, "session": REF.to_json()}
    assert RuntimeInfo.from_json({}).healthy and RuntimeInfo.from_json({"lastSeq": True}).last_seq is None


@pytest.mark.parametrize(("query", "accept", "stream"), [
    ("", "", False), ("?stream=true", "", True), ("?stream=1", "", True), ("?stream=no", "", False),
    ("", "text/event-stream", True), ("", "application/json", False),
])
def test_a_client_asks_for_a_stream_by_query_or_accept_header(query, accept, stream):
    request = make_mocked_request("POST", "/v1/messages" + query, headers={"Accept": accept} if accept else {})
    assert wants_stream(request) is stream


def test_the_gateway_timeouts_bound_short_calls_but_not_a_turn():
    timeouts = RuntimeTimeouts.of(connect_seconds=2, request_seconds=7)
    assert (timeouts.short.total, timeouts.short.sock_connect) == (7, 2)
    assert (timeouts.message.total, timeouts.message.sock_read, timeouts.message.sock_connect) == (None, None, 2)


@pytest.fixture
async def runtime():
    async def info(request: web.Request) -> web.Response:
        return web.json_response(INFO)

    async def messages(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if request.query.get("wait") == "false":
            return web.json_response({"accepted": True}, status=409 if body["id"] == "busy" else 202)
        if request.query.get("stream") == "true":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(sse_encode({"session": CLAIMED, "seq": 5, "event": "agent_message_chunk"}))
            await response.write(sse_encode({"session": CLAIMED, "seq": 6, "event": "done"}))
            return response
        return web.json_response({"code": "agent_error", "message": "boom"}, status=502)

    app = web.Application()
    app.router.add_get("/v1/info", info)
    app.router.add_post("/v1/messages", messages)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_answers_are_tagged_and_failures_go_through_the_hook(runtime):
    seen: list[RuntimeCallFailed] = []

    def hook(failure: RuntimeCallFailed) -> Exception:
        seen.append(failure)
        return LookupError(str(failure))

    async with aiohttp.ClientSession() as http:
        client = RuntimeClient(http, failure=hook)
        assert (await client.info(runtime, REF)).tagged(REF)["session"] == REF.to_json()
        async with client.stream(runtime, REF, {"text": "hi"}) as frames:
            assert [(f["session"], f["seq"]) async for f in frames] == [(REF.to_json(), 5), (REF.to_json(), 6)]
        with pytest.raises(LookupError):
            await client.send(runtime, REF, {"text": "hi"})
    assert (seen[0].session, seen[0].status, seen[0].body["code"]) == (REF, 502, "agent_error")


async def test_a_delivery_is_accepted_or_busy_and_an_unreachable_runtime_fails(runtime):
    client = RuntimeClient(user_agent="test")
    try:
        assert (await client.deliver(runtime, "hi", "m-1")).accepted
        assert (await client.deliver(runtime, "hi", "busy")).busy
        with pytest.raises(RuntimeCallFailed, match="unreachable") as caught:
            await client.info("http://127.0.0.1:9")
        assert caught.value.status is None
    finally:
        await client.close()


def test_a_failed_agent_start_is_read_with_its_reason_and_message():
    body = {"agentStart": {"state": "failed", "reason": "AgentExecFailed", "message": "cannot run 'x': No such file"},
            "health": {"status": "unhealthy", "reason": "AgentExecFailed", "message": "cannot run 'x': No such file"}}
    info = RuntimeInfo.from_json(body)
    assert info.start_failed and info.agent_start["reason"] == "AgentExecFailed"
    assert info.health_message() == "AgentExecFailed; cannot run 'x': No such file"
    assert not RuntimeInfo.from_json({"agentStart": {"state": "started"}}).start_failed
    assert not RuntimeInfo.from_json({"agentStart": "garbage"}).start_failed


async def test_the_clients_own_session_lets_idle_runtime_connections_go_within_seconds():
    """The operator calls each runtime every 10–60 s: a connection kept idle for aiohttp's default
    15 s is held for nothing, and at 10,000 sessions they were thousands of sockets (issue 11)."""
    connections: list[asyncio.BaseTransport] = []

    async def info(request: web.Request) -> web.Response:
        connections.append(request.transport)
        return web.json_response(INFO)

    app = web.Application()
    app.router.add_get("/v1/info", info)
    async with contextlib.AsyncExitStack() as stack:
        runtimes = [await stack.enter_async_context(TestServer(app)) for _ in range(10)]
        client = RuntimeClient(user_agent="test")
        stack.push_async_callback(client.close)
        for server in runtimes:
            await client.info(str(server.make_url("")).rstrip("/"), REF)
        assert sum(not t.is_closing() for t in connections) == 10  # kept for a reconcile's next call
        await asyncio.sleep(2 * OWN_KEEPALIVE_SECONDS + 1.0)  # aiohttp sweeps idle ones every keepalive
        assert sum(not t.is_closing() for t in connections) == 0


async def test_a_failure_says_whether_the_runtime_surely_did_nothing():
    """`not_taken`: the call reached no runtime, or one that refused it as not its session's (401)
    or nothing it serves (404) — so making it to another endpoint repeats nothing. A busy answer,
    a 5xx, a connection dropped after the request went out: the runtime may have acted."""
    async def answer(request: web.Request) -> web.Response:
        status = int(request.match_info["status"])
        return web.json_response({"code": "x", "message": "y"}, status=status)

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request went out; no answer comes
        writer.transport.abort()

    app = web.Application()
    app.router.add_post("/{status}/v1/messages", answer)
    dropping = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    closed = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    closed_port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(TestServer(app))
        stack.push_async_callback(dropping.wait_closed)
        stack.callback(dropping.close)
        client = RuntimeClient(user_agent="test")
        stack.push_async_callback(client.close)
        base = str(server.make_url("")).rstrip("/")

        async def failure_of(endpoint: str, streamed: bool) -> RuntimeCallFailed:
            with pytest.raises(RuntimeCallFailed) as caught:
                if streamed:
                    async with client.stream(endpoint, REF, {"text": "hi"}):
                        pass
                else:
                    await client.send(endpoint, REF, {"text": "hi"})
            return caught.value

        for streamed in (False, True):
            for status, not_taken in ((401, True), (404, True), (409, False), (500, False), (502, False)):
                failure = await failure_of(f"{base}/{status}", streamed)
                assert (failure.status, failure.not_taken) == (status, not_taken)
            refused = await failure_of(f"http://127.0.0.1:{closed_port}", streamed)
            assert (refused.status, refused.connected, refused.not_taken) == (None, False, True)
            dropped = await failure_of(f"http://127.0.0.1:{dropping.sockets[0].getsockname()[1]}", streamed)
            assert (dropped.status, dropped.connected, dropped.not_taken) == (None, True, False)
