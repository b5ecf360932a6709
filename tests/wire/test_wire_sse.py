"""Server-Sent Events on the wire: written (one encoder for the runtime and the gateway), read
incrementally, kept alive while a turn is silent."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent_sessions.wire.frames import tag_frame
from agent_sessions.wire.keepalive import with_keepalive
from agent_sessions.wire.session_ref import SessionRef
from agent_sessions.wire.sse import SSEParser, sse_encode

REF = SessionRef("team-a", "demo", "u-1")
SESSION = {"namespace": "ns", "name": "s", "uid": "u"}


def chunk(seq: int, block: dict) -> dict:
    return {"seq": seq, "event": "agent_message_chunk", "update": {"sessionUpdate": "agent_message_chunk", "content": block}}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def test_sse_message_carries_the_session_and_the_same_object_as_history():
    frame = {"seq": 4, "event": "tool_call", "time": "2026-01-01T00:00:00Z", "update": {"sessionUpdate": "tool_call"}}
    message = sse_encode(tag_frame(frame, SESSION)).decode()
    assert message.endswith("\n\n")
    lines = message.strip("\n").split("\n")
    assert lines[0] == "id: 4"
    assert lines[1] == "event: tool_call"
    assert json.loads(lines[2].removeprefix("data: ")) == tag_frame(frame, SESSION)
    assert tag_frame(frame, SESSION)["session"] == SESSION


def test_sse_data_stays_on_one_line_whatever_the_text():
    frame = chunk(1, text("line one\nline two\r\n"))
    message = sse_encode(tag_frame(frame, SESSION)).decode()
    assert message.count("\n") == 4  # id, event, data, blank line


def test_sse_encoding_has_id_event_and_one_data_line():
    text = sse_encode(tag_frame({"seq": 7, "event": "done", "stopReason": "end_turn", "note": "a\nb"}, REF)).decode()
    lines = text.split("\n")
    assert lines[:2] == ["id: 7", "event: done"]
    assert json.loads(lines[2].removeprefix("data: "))["note"] == "a\nb"
    assert text.endswith("\n\n") and text.count("\n") == 4


def test_frame_without_seq_gets_no_id():
    assert sse_encode({"session": None, "seq": None, "event": "error"}).startswith(b"event: error\n")


@pytest.mark.parametrize("split", [1, 2, 3, 5, 7, 64])
def test_parser_is_indifferent_to_how_the_bytes_are_chunked(split):
    stream = ("id: 1\nevent: a\ndata: {\"x\": \"é\"}\n\n: keep-alive\n\n"
              "id: 2\r\nevent: b\r\ndata: line1\r\ndata: line2\r\n\r\n"
              "data: plain\r\rid: 3\nevent: c\ndata:nospace\n\n").encode()
    parser = SSEParser()
    messages = []
    for start in range(0, len(stream), split):
        messages += parser.feed(stream[start:start + split])
    assert [(m.id, m.event, m.data) for m in messages] == [
        ("1", "a", '{"x": "é"}'), ("2", "b", "line1\nline2"), ("2", "message", "plain"), ("3", "c", "nospace")]
    assert messages[0].json() == {"x": "é"}


def test_parser_waits_for_the_blank_line():
    parser = SSEParser()
    assert parser.feed(b"event: a\ndata: 1\n") == []
    assert [m.data for m in parser.feed(b"\n")] == ["1"]


async def test_keepalive_interleaves_nones_without_losing_items():
    gate = asyncio.Event()

    async def slow():
        yield 1
        await gate.wait()
        yield 2

    seen = []
    async for item in with_keepalive(slow(), 0.01):
        seen.append(item)
        if seen.count(None) == 2:
            gate.set()
        if item == 2:
            break
    assert seen[0] == 1 and seen[-1] == 2 and seen.count(None) >= 2
