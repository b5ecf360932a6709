"""History: same frames as the stream, `after_seq`, and surviving a bridge restart."""

from __future__ import annotations

import json

from .conftest import get_json, post_json, ready, sse_frames, stream_message


async def test_history_holds_the_streamed_frames_with_user_messages_and_done(start_bridge, http):
    bridge = await ready(http, start_bridge())
    streamed = await stream_message(http, bridge, "first")
    status, history = await get_json(http, f"{bridge.url}/v1/history")
    assert status == 200
    assert history["items"] == [data for _, data in streamed], "history items are the SSE data, frame for frame"
    assert history["lastSeq"] == streamed[-1][1]["seq"]
    await post_json(http, f"{bridge.url}/v1/messages", {"text": "second"})
    status, history = await get_json(http, f"{bridge.url}/v1/history")
    events = [item["event"] for item in history["items"]]
    assert events.count("user_message") == 2 and events.count("done") == 2


async def test_after_seq_returns_only_later_frames(start_bridge, http):
    bridge = await ready(http, start_bridge())
    first = await post_json(http, f"{bridge.url}/v1/messages", {"text": "first"})
    await post_json(http, f"{bridge.url}/v1/messages", {"text": "second"})
    after = first[1]["seq"]
    status, history = await get_json(http, f"{bridge.url}/v1/history?after_seq={after}")
    assert status == 200
    seqs = [item["seq"] for item in history["items"]]
    assert seqs == list(range(after + 1, history["lastSeq"] + 1))
    assert history["items"][0]["event"] == "user_message"
    assert history["items"][0]["update"]["content"][0]["text"] == "second"
    status, limited = await get_json(http, f"{bridge.url}/v1/history?after_seq={after}&limit=2")
    assert [item["seq"] for item in limited["items"]] == seqs[:2]
    status, empty = await get_json(http, f"{bridge.url}/v1/history?after_seq={history['lastSeq']}")
    assert empty["items"] == [] and empty["lastSeq"] == history["lastSeq"]
    for bad in ("x", "-1"):
        status, body = await get_json(http, f"{bridge.url}/v1/history?after_seq={bad}")
        assert status == 422 and body["code"] == "invalid_request"


async def test_history_and_seq_survive_a_killed_bridge_and_the_session_is_loaded(start_bridge, http):
    first_bridge = await ready(http, start_bridge())
    await post_json(http, f"{first_bridge.url}/v1/messages", {"text": "remember me", "id": "first-message"})
    status, before = await get_json(http, f"{first_bridge.url}/v1/info")
    status, old_history = await get_json(http, f"{first_bridge.url}/v1/history")
    first_bridge.kill()  # SIGKILL: no chance to tidy up

    state = json.loads((first_bridge.workspace / ".agent-session" / "state.json").read_text())
    assert state["acpSessionId"] == before["acpSessionId"]

    second_bridge = await ready(http, start_bridge(workspace=first_bridge.workspace))
    status, after = await get_json(http, f"{second_bridge.url}/v1/info")
    assert after["openedWith"] == "session/load"
    assert after["acpSessionId"] == before["acpSessionId"]
    assert after["lastSeq"] == before["lastSeq"]
    assert after["messageCount"] == before["messageCount"]
    assert after["sessionInfo"] == before["sessionInfo"]
    assert after["lastActivityTime"] == before["lastActivityTime"]
    status, history = await get_json(http, f"{second_bridge.url}/v1/history")
    assert history["items"] == old_history["items"]

    status, retried = await post_json(http, f"{second_bridge.url}/v1/messages?wait=false",
                                      {"text": "remember me", "id": "first-message"})
    assert status == 200 and retried["duplicate"] is True, "message ids are remembered across restarts"
    status, reply = await post_json(http, f"{second_bridge.url}/v1/messages", {"text": "still there?"})
    assert status == 200
    status, later = await get_json(http, f"{second_bridge.url}/v1/history?after_seq={before['lastSeq']}")
    assert later["items"][0]["seq"] == before["lastSeq"] + 1, "seq continues where the old bridge stopped"
    assert reply["seq"] == later["lastSeq"]
    status, info = await get_json(http, f"{second_bridge.url}/v1/info")
    assert info["sessionInfo"]["meta"] == {"turn": 2}, "the loaded agent session continues its turns"
    assert info["sessionInfo"]["title"] == "remember me"


async def test_a_turn_cut_short_by_a_killed_bridge_is_closed_with_an_error_on_restart(start_bridge, http):
    first_bridge = await ready(http, start_bridge(env={"DEMO_AGENT_CHUNK_DELAY": "5"}))
    async with http.post(f"{first_bridge.url}/v1/messages?stream=true", json={"text": "never finished"}) as response:
        async for event, _ in sse_frames(response):
            if event == "tool_call":
                break
        first_bridge.kill()

    second_bridge = await ready(http, start_bridge(workspace=first_bridge.workspace))
    status, history = await get_json(http, f"{second_bridge.url}/v1/history")
    last = history["items"][-1]
    assert last["event"] == "error" and last["code"] == "runtime_restarted"
    assert last["seq"] == history["lastSeq"]
    status, info = await get_json(http, f"{second_bridge.url}/v1/info")
    assert info["messageCount"] == 1, "the interrupted turn counts its user message, not a reply"
    status, reply = await post_json(http, f"{second_bridge.url}/v1/messages", {"text": "again"})
    assert status == 200 and reply["seq"] > last["seq"]
