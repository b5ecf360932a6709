"""`--protocol stdio-lines`: a plain CLI agent, one line in, lines out until quiet."""

from __future__ import annotations

import sys

from .conftest import SESSION, get_json, post_json, ready, stream_message

UPPERCASER = "import sys\nfor line in sys.stdin:\n    print(line.upper(), end='', flush=True)\n"
TWO_LINES = "import sys\nfor line in sys.stdin:\n    print('got', line.strip(), flush=True)\n    print('bye', flush=True)\n"


def lines_bridge(start_bridge, tmp_path, script: str):
    path = tmp_path / "agent.py"
    path.write_text(script)
    return start_bridge(agent=(sys.executable, str(path)), args=("--protocol", "stdio-lines", "--quiet-ms", "200"))


async def test_plain_cli_agent_answers_one_line_per_message(start_bridge, http, tmp_path):
    bridge = await ready(http, lines_bridge(start_bridge, tmp_path, UPPERCASER))
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "hello\nworld"})
    assert status == 200, reply
    assert reply["session"] == SESSION
    assert reply["stopReason"] == "end_turn"
    assert reply["text"] == "HELLO WORLD\n", "the message is written as one line"
    status, info = await get_json(http, f"{bridge.url}/v1/info")
    assert info["capabilities"]["protocol"] == "stdio-lines"
    assert info["acpSessionId"] is None and info["messageCount"] == 2


async def test_plain_cli_agent_lines_stream_as_message_chunks(start_bridge, http, tmp_path):
    bridge = await ready(http, lines_bridge(start_bridge, tmp_path, TWO_LINES))
    frames = await stream_message(http, bridge, "ping")
    assert [event for event, _ in frames] == ["user_message", "agent_message_chunk", "agent_message_chunk", "done"]
    assert [data["update"]["content"]["text"] for event, data in frames[1:3]] == ["got ping\n", "bye\n"]
    assert frames[-1][1]["stopReason"] == "end_turn"


async def test_plain_cli_agent_accepts_text_only(start_bridge, http, tmp_path):
    bridge = await ready(http, lines_bridge(start_bridge, tmp_path, UPPERCASER))
    image = {"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"}
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"prompt": [image]})
    assert status == 422 and reply["code"] == "invalid_request"
