"""Messages through a real bridge to the real demo agent: sync, SSE, info, busy, cancel, limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from agent_sessions.lifecycle.timestamps import parse_timestamp

from .conftest import SESSION, post_json, ready, sse_frames, stream_message, get_json


async def test_sync_message_returns_the_whole_reply(start_bridge, http):
    bridge = await ready(http, start_bridge())
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "hello runtime"})
    assert status == 200, reply
    assert reply["session"] == SESSION
    assert reply["stopReason"] == "end_turn"
    assert reply["text"] == "You said: hello runtime"
    assert reply["content"] == [{"type": "text", "text": "You said: hello runtime"}]
    assert reply["usage"] == {"inputTokens": 2, "outputTokens": 4, "totalTokens": 6}
    status, history = await get_json(http, f"{bridge.url}/v1/history")
    assert reply["seq"] == history["lastSeq"]
    assert history["items"][-1]["event"] == "done"

    body = {"prompt": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", body)
    assert status == 200, reply
    assert reply["text"] == "You said: one\ntwo", "ACP content blocks work as well as text"


async def test_stream_sends_every_update_in_order_and_ends_with_done(start_bridge, http):
    bridge = await ready(http, start_bridge())
    frames = await stream_message(http, bridge, "stream this reply please")
    events = [event for event, _ in frames]
    seqs = [data["seq"] for _, data in frames]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1
    assert all(data["session"] == SESSION for _, data in frames)
    assert all(data["event"] == event for event, data in frames)
    assert events[0] == "user_message"
    assert frames[0][1]["update"]["content"] == [{"type": "text", "text": "stream this reply please"}]
    assert events.count("agent_message_chunk") >= 3
    assert "tool_call" in events and "tool_call_update" in events and "session_info_update" in events
    assert "usage_update" in events
    assert events[-1] == "done"
    done = frames[-1][1]
    assert done["stopReason"] == "end_turn" and done["usage"]["totalTokens"] > 0
    chunks = [data["update"]["content"]["text"] for event, data in frames if event == "agent_message_chunk"]
    assert "".join(chunks) == "You said: stream this reply please"
    tool_update = next(data["update"] for event, data in frames if event == "tool_call_update")
    assert tool_update["status"] == "completed" and tool_update["rawOutput"] == {"words": 4}

    headers = {"Accept": "text/event-stream"}
    async with http.post(f"{bridge.url}/v1/messages", json={"text": "hi"}, headers=headers) as response:
        events = [event async for event, _ in sse_frames(response)]
    assert events[0] == "user_message" and events[-1] == "done", "an Accept header asks for a stream too"


async def test_info_follows_title_turns_activity_and_counts(start_bridge, http):
    bridge = await ready(http, start_bridge())
    status, before = await get_json(http, f"{bridge.url}/v1/info")
    assert status == 200
    assert before["session"] == SESSION
    assert before["state"] == "idle"
    assert before["agent"]["name"] == "agent-sessions-demo"
    assert before["openedWith"] == "session/new" and before["acpSessionId"]
    assert before["lastActivityTime"] is None and before["messageCount"] == 0 and before["lastSeq"] == 0
    assert before["sessionInfo"] == {"title": None, "updatedAt": None, "meta": None}
    assert before["capabilities"]["resume"] is True and before["capabilities"]["streaming"] is True
    assert before["health"] == {"status": "ok", "state": "idle", "protocol": "acp", "acpSessionId": before["acpSessionId"],
                                "agentStart": {"state": "started"}}
    assert before["agentStart"] == {"state": "started"}

    sent_at = datetime.now(UTC).replace(microsecond=0)
    await post_json(http, f"{bridge.url}/v1/messages", {"text": "Plan the migration of the billing service to Postgres 17"})
    status, first = await get_json(http, f"{bridge.url}/v1/info")
    assert first["sessionInfo"]["title"] == "Plan the migration of the billing servi…"
    assert first["sessionInfo"]["meta"] == {"turn": 1}
    assert first["sessionInfo"]["updatedAt"]
    assert parse_timestamp(first["lastActivityTime"]) >= sent_at
    assert first["messageCount"] == 2
    assert first["lastSeq"] > 0

    await post_json(http, f"{bridge.url}/v1/messages", {"text": "and then?"})
    status, second = await get_json(http, f"{bridge.url}/v1/info")
    assert second["sessionInfo"]["title"] == first["sessionInfo"]["title"], "the title comes from the first prompt"
    assert second["sessionInfo"]["meta"] == {"turn": 2}
    assert second["messageCount"] == 4
    assert second["lastSeq"] > first["lastSeq"]
    assert parse_timestamp(second["lastActivityTime"]) >= parse_timestamp(first["lastActivityTime"])


async def test_second_message_during_a_turn_is_refused_as_busy(start_bridge, http):
    bridge = await ready(http, start_bridge(env={"DEMO_AGENT_CHUNK_DELAY": "0.15"}))
    async with http.post(f"{bridge.url}/v1/messages?stream=true", json={"text": "slow one"}) as response:
        frames = sse_frames(response)
        event, _ = await anext(frames)
        assert event == "user_message"
        status, body = await post_json(http, f"{bridge.url}/v1/messages", {"text": "me too"})
        assert status == 409
        assert body["code"] == "session_busy" and body["session"] == SESSION
        status, info = await get_json(http, f"{bridge.url}/v1/info")
        assert info["state"] == "busy"
        rest = [event async for event, _ in frames]
    assert rest[-1] == "done"
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "now it is my turn"})
    assert status == 200 and reply["stopReason"] == "end_turn"


async def test_cancel_stops_a_slow_stream_with_stop_reason_cancelled(start_bridge, http):
    bridge = await ready(http, start_bridge(env={"DEMO_AGENT_CHUNK_DELAY": "2"}))
    status, idle = await post_json(http, f"{bridge.url}/v1/cancel")
    assert status == 200 and idle["cancelled"] is False
    started = asyncio.get_running_loop().time()
    async with http.post(f"{bridge.url}/v1/messages?stream=true", json={"text": "a long story"}) as response:
        frames = sse_frames(response)
        async for event, _ in frames:
            if event == "tool_call_update":
                break
        status, body = await post_json(http, f"{bridge.url}/v1/cancel")
        assert status == 200 and body["cancelled"] is True
        rest = [(event, data) async for event, data in frames]
    assert rest[-1][0] == "done"
    assert rest[-1][1]["stopReason"] == "cancelled"
    assert asyncio.get_running_loop().time() - started < 5, "cancel must not wait for the remaining chunks"
    status, history = await get_json(http, f"{bridge.url}/v1/history")
    assert history["items"][-1]["stopReason"] == "cancelled"


async def test_empty_and_malformed_messages_are_invalid_requests(start_bridge, http):
    bridge = await ready(http, start_bridge())
    for body in ({}, {"text": ""}, {"text": "   "}, {"text": 3}, {"prompt": []}, {"prompt": [{"type": "nope"}]},
                 {"text": "a", "prompt": [{"type": "text", "text": "b"}]}, ["text"]):
        status, reply = await post_json(http, f"{bridge.url}/v1/messages", body)
        assert status == 422, body
        assert reply["code"] == "invalid_request" and reply["session"] == SESSION and reply["message"]
    async with http.post(f"{bridge.url}/v1/messages", data=b"{not json") as response:
        assert response.status == 422
    status, info = await get_json(http, f"{bridge.url}/v1/info")
    assert info["messageCount"] == 0 and info["lastSeq"] == 0


async def test_a_body_over_one_mebibyte_is_too_large(start_bridge, http):
    bridge = await ready(http, start_bridge())
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "x" * (1024 * 1024)})
    assert status == 413
    assert reply["code"] == "message_too_large" and reply["session"] == SESSION
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "x" * (1024 * 1024 - 64)})
    assert status == 200, "a message just under the limit goes through"


async def test_a_repeated_message_id_is_answered_with_the_first_turn_never_a_new_one(start_bridge, http):
    bridge = await ready(http, start_bridge(env={"DEMO_AGENT_CHUNK_DELAY": "0.2"}))
    message = {"text": "deliver me once", "id": "prompt-0b7d3a9c"}
    status, accepted = await post_json(http, f"{bridge.url}/v1/messages?wait=false", message)
    assert status == 202
    assert accepted == {"session": SESSION, "id": "prompt-0b7d3a9c", "seq": 1, "accepted": True, "duplicate": False}

    status, again = await post_json(http, f"{bridge.url}/v1/messages?wait=false", message)
    assert status == 200 and again["duplicate"] is True and again["seq"] == 1, "a retry while the turn runs"
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", message)
    assert status == 200 and reply["text"] == "You said: deliver me once", "a sync retry waits for the same turn"

    frames = await stream_message(http, bridge, "deliver me once", message_id="prompt-0b7d3a9c")
    assert frames[0][1]["seq"] == 1 and frames[-1][1]["seq"] == reply["seq"], "a streamed retry replays the turn"
    status, history = await get_json(http, f"{bridge.url}/v1/history")
    user_messages = [item for item in history["items"] if item["event"] == "user_message"]
    assert len(user_messages) == 1
    assert user_messages[0]["update"]["messageId"] == "prompt-0b7d3a9c"

    status, other = await post_json(http, f"{bridge.url}/v1/messages", {"text": "another", "id": "prompt-2"})
    assert status == 200 and other["seq"] > reply["seq"]
    status, bad = await post_json(http, f"{bridge.url}/v1/messages", {"text": "x", "id": 7})
    assert status == 422 and bad["code"] == "invalid_request"
