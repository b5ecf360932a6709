"""`GET /v1/ws`: many sessions over one socket, strictly apart; subscribe, send, cancel."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from .conftest import ALICE, BOB, DEADLINE, identity, make_session


async def receive_until(ws: aiohttp.ClientWebSocketResponse, done: Callable[[list[dict]], bool],
                        frames: list[dict] | None = None) -> list[dict]:
    frames = [] if frames is None else frames
    async with asyncio.timeout(DEADLINE):
        while not done(frames):
            frames.append(await ws.receive_json())
    return frames


def count(frames: list[dict], **match: Any) -> int:
    return sum(all(frame.get(k) == v for k, v in match.items()) for frame in frames)


async def test_two_sessions_messaged_at_once_over_one_socket_never_see_each_other(api, runtime, gateway, http):
    runtime.add("ra", chunk_delay=0.02)
    runtime.add("rb", chunk_delay=0.02)
    a = make_session(api, "alpha", endpoint=runtime.endpoint("ra"))
    b = make_session(api, "beta", endpoint=runtime.endpoint("rb"))

    async with http.ws_connect(f"{gateway}/v1/ws", headers=ALICE) as ws:
        await ws.send_json({"type": "subscribe", "namespace": "team-a", "name": "alpha", "after_seq": 0})
        await receive_until(ws, lambda f: count(f, type="subscribed") == 1)
        await ws.send_json({"type": "send", "namespace": "team-a", "name": "alpha", "id": "to-a", "text": "one"})
        await ws.send_json({"type": "send", "namespace": "team-a", "name": "beta", "id": 7, "text": "two"})
        frames = await receive_until(ws, lambda f: count(f, type="done") == 2)

    for_a = [f for f in frames if f.get("session") == identity(a) and f["type"] in ("event", "done")]
    for_b = [f for f in frames if f.get("session") == identity(b) and f["type"] in ("event", "done")]
    assert len(for_a) == len(for_b) == 5
    assert len(for_a) + len(for_b) == len([f for f in frames if f["type"] in ("event", "done")])
    # Each session's own reply, its own request id, its own ordered seqs, each seq once.
    assert {f["id"] for f in for_a} == {"to-a"} and {f["id"] for f in for_b} == {7}
    assert [f["seq"] for f in for_a] == [f["seq"] for f in for_b] == [1, 2, 3, 4, 5]
    text_a = "".join(f["update"]["content"]["text"] for f in for_a if f.get("event") == "agent_message_chunk")
    text_b = "".join(f["update"]["content"]["text"] for f in for_b if f.get("event") == "agent_message_chunk")
    assert (text_a, text_b) == ("ra heard: one", "rb heard: two")


async def test_subscription_replays_then_tails_and_stops_after_unsubscribe(api, runtime, gateway, http):
    fake = runtime.add("s1")
    obj = make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    await fake.start_turn("earlier")

    async with http.ws_connect(f"{gateway}/v1/ws", headers=ALICE) as ws:
        await ws.send_json({"type": "subscribe", "namespace": "team-a", "name": "demo", "after_seq": 3})
        frames = await receive_until(ws, lambda f: count(f, type="done") == 1)
        assert frames[0] == {"type": "subscribed", "session": identity(obj), "after_seq": 3}
        assert [f["seq"] for f in frames[1:]] == [4, 5]

        await fake.start_turn("live")  # not through the gateway: arrives by polling
        live = await receive_until(ws, lambda f: count(f, type="done") == 1)
        assert [f["seq"] for f in live] == [6, 7, 8, 9, 10]
        assert all(f["session"] == identity(obj) and "id" not in f for f in live)

        await ws.send_json({"type": "unsubscribe", "namespace": "team-a", "name": "demo"})
        await receive_until(ws, lambda f: count(f, type="unsubscribed") == 1)
        await fake.start_turn("unheard")
        await ws.send_json({"type": "ping", "id": "p"})
        after = await receive_until(ws, lambda f: count(f, type="pong") == 1)
    assert after == [{"type": "pong", "id": "p"}]


async def test_sending_to_a_subscribed_session_delivers_each_frame_once_with_the_request_id(
        api, runtime, gateway, http):
    fake = runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    async with http.ws_connect(f"{gateway}/v1/ws", headers=ALICE) as ws:
        await ws.send_json({"type": "subscribe", "namespace": "team-a", "name": "demo"})
        await receive_until(ws, lambda f: count(f, type="subscribed") == 1)
        await ws.send_json({"type": "send", "namespace": "team-a", "name": "demo", "id": "r1", "text": "hi"})
        frames = await receive_until(ws, lambda f: count(f, type="done") == 1)
        # The feed delivers in seq order: had it repeated the turn, the repeats would come before
        # the next turn's frames.
        await fake.start_turn("next")
        later = await receive_until(ws, lambda f: count(f, type="done") == 1)
    assert [f["seq"] for f in frames] == [1, 2, 3, 4, 5]
    assert {f["id"] for f in frames} == {"r1"}
    assert [f["seq"] for f in later] == [6, 7, 8, 9, 10]
    assert all("id" not in f for f in later)


@pytest.mark.parametrize("after_seq", [None, 0, 3])
async def test_send_right_after_subscribe_keeps_history_and_reply_in_order(api, runtime, gateway, http, after_seq):
    """The send does not wait for `subscribed`: the replay still comes first, then the reply."""
    fake = runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    await fake.start_turn("earlier")  # seqs 1..5
    subscribe = {"type": "subscribe", "namespace": "team-a", "name": "demo"}
    if after_seq is not None:
        subscribe["after_seq"] = after_seq
    async with http.ws_connect(f"{gateway}/v1/ws", headers=ALICE) as ws:
        await ws.send_json(subscribe)
        await ws.send_json({"type": "send", "namespace": "team-a", "name": "demo", "id": "now", "text": "hi"})
        frames = await receive_until(ws, lambda f: count(f, type="done", id="now") == 1)
    assert frames[0]["type"] == "subscribed"
    replayed = [f["seq"] for f in frames[1:] if "id" not in f]
    reply = [f["seq"] for f in frames[1:] if f.get("id") == "now"]
    assert replayed == list(range((after_seq if after_seq is not None else 5) + 1, 6))
    assert reply == [6, 7, 8, 9, 10]
    assert [f["seq"] for f in frames[1:]] == replayed + reply


async def test_a_send_without_an_id_still_gets_its_whole_reply(api, runtime, gateway, http):
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    async with http.ws_connect(f"{gateway}/v1/ws", headers=ALICE) as ws:
        await ws.send_json({"type": "subscribe", "namespace": "team-a", "name": "demo"})
        await ws.send_json({"type": "send", "namespace": "team-a", "name": "demo", "text": "anonymous"})
        frames = await receive_until(ws, lambda f: count(f, type="done") == 1)
    assert [f["seq"] for f in frames if f["type"] != "subscribed"] == [1, 2, 3, 4, 5]


async def test_cancel_over_the_socket_ends_the_turn(api, runtime, gateway, http):
    runtime.add("s1", hold=True)
    obj = make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    async with http.ws_connect(f"{gateway}/v1/ws", headers=ALICE) as ws:
        await ws.send_json({"type": "send", "namespace": "team-a", "name": "demo", "id": 1, "text": "long"})
        await receive_until(ws, lambda f: count(f, event="agent_message_chunk") == 1)
        await ws.send_json({"type": "cancel", "namespace": "team-a", "name": "demo", "id": 2})
        frames = await receive_until(ws, lambda f: count(f, type="done") == 1)
    assert {"type": "cancelled", "id": 2, "session": identity(obj), "cancelled": True} in frames
    done = next(f for f in frames if f["type"] == "done")
    assert done["stopReason"] == "cancelled" and done["id"] == 1


async def test_every_frame_is_authorized_on_its_own_session(api, runtime, gateway, http):
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    async with http.ws_connect(f"{gateway}/v1/ws", headers=BOB) as ws:
        await ws.send_json({"type": "subscribe", "namespace": "team-a", "name": "demo"})
        await ws.send_json({"type": "send", "namespace": "team-a", "name": "demo", "id": "s", "text": "x"})
        await ws.send_json({"type": "cancel", "namespace": "team-a", "name": "demo", "id": "c"})
        await ws.send_json({"type": "subscribe", "namespace": "team-b", "name": "ghost"})
        frames = await receive_until(ws, lambda f: count(f, type="error") == 3 and count(f, type="subscribed") == 1)
    errors = {(f.get("id"), f["session"]["name"], f["code"]) for f in frames if f["type"] == "error"}
    assert errors == {("s", "demo", "forbidden"), ("c", "demo", "forbidden"), (None, "ghost", "forbidden")}
    assert runtime.sessions["s1"].history == []


async def test_bad_frames_are_answered_with_errors_and_the_socket_stays_open(api, runtime, start_gateway, http):
    gateway = (await start_gateway(max_message_bytes=100)).url
    async with http.ws_connect(f"{gateway}/v1/ws", headers=ALICE) as ws:
        await ws.send_str("{nope")
        await ws.send_json({"type": "fly"})
        await ws.send_json({"type": "send", "namespace": "team-a", "name": "demo", "id": "e"})
        await ws.send_json({"type": "send", "namespace": "team-a", "name": "demo", "id": "big", "text": "x" * 200})
        await ws.send_json({"type": "send", "namespace": "team-a", "name": "nope", "id": "404", "text": "x"})
        frames = await receive_until(ws, lambda f: len(f) == 5)
    codes = sorted((str(f.get("id")), f["code"]) for f in frames)
    assert codes == [("404", "session_not_found"), ("None", "invalid_request"), ("None", "invalid_request"),
                     ("big", "message_too_large"), ("e", "invalid_request")]


async def test_upgrade_needs_a_token_which_a_browser_may_pass_as_a_subprotocol(api, runtime, gateway, http):
    async with http.get(f"{gateway}/v1/ws") as resp:
        assert resp.status == 401
        assert (await resp.json())["code"] == "unauthorized"
    async with http.get(f"{gateway}/v1/ws", headers=ALICE) as resp:  # not an upgrade
        assert (resp.status, (await resp.json())["code"]) == (422, "invalid_request")
    token = base64.urlsafe_b64encode(b"alice-token").decode().rstrip("=")
    protocols = ("agent-sessions.v1", f"base64url.bearer.authorization.k8s.io.{token}")
    async with http.ws_connect(f"{gateway}/v1/ws", protocols=protocols) as ws:
        assert ws.protocol == "agent-sessions.v1"
        await ws.send_json({"type": "ping", "id": 1})
        assert await ws.receive_json() == {"type": "pong", "id": 1}
