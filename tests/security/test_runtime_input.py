"""Runtime attacks (issue 10, item 5), replayed against real bridges and shown to fail.

Reproduced: `POST /v1/messages {"text":"\\ud800 lone"}` got 503 (`UnicodeEncodeError` in the
history writer), then every message got 409 `session_busy` forever, cancel did not free the
session and `/healthz` stayed healthy. Now:

* invalid Unicode anywhere in a message (text, any content block, `_meta`, the id; as a `\\u`
  escape or as UTF-8-encoded surrogate bytes) is refused with 422 naming the field and the
  character, before anything is recorded; the next message is answered;
* a history that cannot be written (the bridge's file size limit lowered under it: `EFBIG`, like
  a full disk) ends the turn with an `error` frame, `/healthz` and `/v1/info` say
  `HistoryUnwritable`, and once writing works again the next message is answered;
* an agent that dies mid-turn ends the turn with `agent_exited`: the session is not busy;
* an agent that ignores cancel has its turn ended by the runtime after the grace;
* an agent that sends lone surrogates, NaN, control characters and line separators breaks
  neither the stream, `/v1/info`, nor the history across a restart.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from runtime.conftest import (  # noqa: F401 (fixtures)
    SESSION,
    Bridge,
    get_json,
    http,
    post_json,
    ready,
    start_bridge,
    wait_health,
)

from agent_sessions.runtime.workspace import history_path
from agent_sessions.wire.sse import SSEParser

TIER = "embedded"  # starts bridges and agents

UNRULY_AGENT = (sys.executable, str(Path(__file__).parents[1] / "runtime" / "unruly_agent.py"))


async def post_raw(http: aiohttp.ClientSession, url: str, raw: bytes) -> tuple[int, Any]:
    async with http.post(url, data=raw, headers={"Content-Type": "application/json"}) as response:
        return response.status, await response.json()


async def stream(http: aiohttp.ClientSession, bridge: Bridge, text: str) -> list[dict[str, Any]]:
    """A message's SSE stream, decoded strictly (invalid UTF-8 would raise) with the wire's parser."""
    async with http.post(f"{bridge.url}/v1/messages?stream=true", json={"text": text}) as response:
        assert response.status == 200, await response.text()
        raw = await response.read()
    raw.decode("utf-8")
    messages = SSEParser().feed(raw)
    for message in messages:
        assert message.event == message.json()["event"]
    return [message.json() for message in messages]


async def history(http: aiohttp.ClientSession, bridge: Bridge) -> list[dict[str, Any]]:
    status, body = await get_json(http, f"{bridge.url}/v1/history")
    assert status == 200
    return body["items"]


async def until_turn_ends(http: aiohttp.ClientSession, bridge: Bridge, deadline: float = 20) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        items = await history(http, bridge)
        if items and items[-1]["event"] in ("done", "error"):
            return items[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the turn never ended:\n{bridge.logs()}")


@pytest.mark.parametrize(("raw", "field", "character"), [
    pytest.param(b'{"text":"\\ud800 lone"}', "text", "U+D800 at character 0", id="the-reported-message"),
    pytest.param(b'{"text":"raw \xed\xa0\x80 bytes"}', "text", "U+D800 at character 4", id="surrogate-as-utf8-bytes"),
    pytest.param(b'{"prompt":[{"type":"text","text":"ok"},{"type":"resource_link","name":"n","uri":"file:///\\udc00"}]}',
                 "prompt[1].uri", "U+DC00 at character 8", id="content-block"),
    pytest.param(b'{"prompt":[{"type":"text","text":"ok","_meta":{"\\udfff":1}}]}',
                 "prompt[0]._meta", "U+DFFF at character 0", id="meta-key"),
    pytest.param(b'{"text":"ok","id":"m-\\ud83d"}', "id", "U+D83D at character 2", id="message-id"),
])
async def test_invalid_unicode_is_refused_precisely_and_the_session_goes_on(start_bridge, http, raw, field, character):
    bridge = await ready(http, start_bridge())
    for url in (f"{bridge.url}/v1/messages", f"{bridge.url}/v1/messages?stream=true"):
        status, body = await post_raw(http, url, raw)
        assert status == 422, body
        assert body["code"] == "invalid_request" and body["field"] == field and body["session"] == SESSION
        assert f"is not valid Unicode: lone surrogate {character}" in body["message"]
    assert await history(http, bridge) == [], "nothing of a refused message is recorded"

    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "still there?"})
    assert status == 200, reply
    assert reply["text"] == "You said: still there?"
    status, health = await get_json(http, f"{bridge.url}/healthz")
    assert (status, health["status"], health["state"]) == (200, "ok", "idle")


async def test_a_body_that_is_not_utf8_is_refused_naming_the_byte(start_bridge, http):
    bridge = await ready(http, start_bridge())
    status, body = await post_raw(http, f"{bridge.url}/v1/messages", b'{"text":"caf\xe9"}')
    assert (status, body["code"]) == (422, "invalid_request")
    assert body["message"] == "the body is not valid UTF-8: byte 0xe9 at offset 12"


async def test_history_that_cannot_be_written_ends_the_turn_and_health_says_so_until_it_can(start_bridge, http):
    bridge = await ready(http, start_bridge())
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "first"})
    assert status == 200, reply
    soft, hard = resource.prlimit(bridge.process.pid, resource.RLIMIT_FSIZE)
    size = history_path(bridge.workspace).stat().st_size
    resource.prlimit(bridge.process.pid, resource.RLIMIT_FSIZE, (size, hard))  # no byte more: EFBIG
    try:
        status, failed = await post_json(http, f"{bridge.url}/v1/messages", {"text": "not recorded"})
        assert status == 503, failed
        assert failed["code"] == "history_unwritable" and "File too large" in failed["message"]

        frames = await stream(http, bridge, "streamed, not recorded")
        assert [frame["event"] for frame in frames] == ["user_message", "error"]
        assert frames[-1]["code"] == "history_unwritable"

        status, health = await get_json(http, f"{bridge.url}/healthz")
        assert status == 503
        assert (health["status"], health["reason"], health["state"]) == ("unhealthy", "HistoryUnwritable", "idle")
        assert "File too large" in health["message"] and str(history_path(bridge.workspace)) in health["message"]
        status, info = await get_json(http, f"{bridge.url}/v1/info")
        assert status == 200 and info["health"] == health and info["state"] == "idle"
    finally:
        resource.prlimit(bridge.process.pid, resource.RLIMIT_FSIZE, (soft, hard))

    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "recorded again"})
    assert status == 200, reply
    assert reply["text"] == "You said: recorded again"
    status, health = await get_json(http, f"{bridge.url}/healthz")
    assert status == 200 and health["status"] == "ok"
    bridge.kill()
    again = await ready(http, start_bridge(workspace=bridge.workspace))
    items = await history(http, again)
    texts = [item["update"]["content"][0]["text"] for item in items if item["event"] == "user_message"]
    assert texts == ["first", "recorded again"], "what could not be written is not in history, the rest is intact"


async def test_an_agent_that_dies_mid_turn_ends_the_turn_and_frees_the_session(start_bridge, http):
    bridge = await ready(http, start_bridge(agent=UNRULY_AGENT))
    frames = await stream(http, bridge, "die now")
    assert [frame["event"] for frame in frames] == ["user_message", "agent_message_chunk", "error"]
    assert frames[-1]["code"] == "agent_exited"
    status, info = await get_json(http, f"{bridge.url}/v1/info")
    assert info["state"] == "unhealthy" and info["health"]["reason"] == "AgentExited"
    assert info["health"]["exitCode"] == 7
    status, refused = await post_json(http, f"{bridge.url}/v1/messages", {"text": "hello?"})
    assert (status, refused["code"]) == (503, "agent_unavailable"), "not session_busy: no turn is left running"
    status, cancelled = await post_json(http, f"{bridge.url}/v1/cancel")
    assert status == 200 and cancelled["cancelled"] is False


async def test_cancel_frees_a_session_whose_agent_ignores_it(start_bridge, http):
    bridge = await ready(http, start_bridge(agent=UNRULY_AGENT, args=("--cancel-grace", "1")))
    status, accepted = await post_json(http, f"{bridge.url}/v1/messages?wait=false", {"text": "hang forever"})
    assert status == 202, accepted
    status, busy = await post_json(http, f"{bridge.url}/v1/messages", {"text": "me too"})
    assert (status, busy["code"]) == (409, "session_busy")
    status, cancelled = await post_json(http, f"{bridge.url}/v1/cancel")
    assert status == 200 and cancelled["cancelled"] is True
    ended = await until_turn_ends(http, bridge)
    assert ended["event"] == "error" and ended["code"] == "cancel_timeout"
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "hello"})
    assert status == 200 and reply["text"] == "ok", reply


async def test_agent_output_with_invalid_unicode_and_control_characters_breaks_nothing(start_bridge, http):
    bridge = await ready(http, start_bridge(agent=UNRULY_AGENT))
    frames = await stream(http, bridge, "garbage please")
    assert [frame["event"] for frame in frames] == [
        "user_message", "agent_message_chunk", "agent_message_chunk", "agent_message_chunk", "session_info_update", "done",
    ]
    texts = [frame["update"]["content"]["text"] for frame in frames if frame["event"] == "agent_message_chunk"]
    assert texts == [
        "lone \ufffd surrogate",
        "ctl \x00\x1b[31m\x07 ls\u2028ps\u2029nel\x85del\x7f end",
        "pair \U0001F600 ok",
    ]
    assert frames[3]["update"]["_meta"] == {"\ufffdkey": None}
    status, info = await get_json(http, f"{bridge.url}/v1/info")
    assert status == 200 and info["state"] == "idle"
    assert info["sessionInfo"]["title"].endswith("\ufffd title")
    status, health = await get_json(http, f"{bridge.url}/healthz")
    assert status == 200
    before = await history(http, bridge)

    bridge.kill()
    again = await ready(http, start_bridge(agent=UNRULY_AGENT, workspace=bridge.workspace))
    assert await history(http, again) == before, "every frame survives a reload, line separators and all"
    status, reply = await post_json(http, f"{again.url}/v1/messages", {"text": "hello"})
    assert status == 200 and reply["text"] == "ok", reply
