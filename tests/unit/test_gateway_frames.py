"""Frames tagged with their session; Server-Sent Events written and read."""

from __future__ import annotations

import json

import pytest

from agent_sessions.gateway.frames import SSEParser, is_terminal, sse_encode, tag_frame
from agent_sessions.gateway.session_ref import SessionRef

REF = SessionRef("team-a", "demo", "u-1")


def test_tag_replaces_whatever_session_the_runtime_claimed():
    frame = {"session": {"namespace": "x", "name": "y", "uid": "z"}, "seq": 3, "event": "agent_message_chunk",
             "update": {"sessionUpdate": "agent_message_chunk"}}
    tagged = tag_frame(frame, REF)
    assert tagged["session"] == {"namespace": "team-a", "name": "demo", "uid": "u-1"}
    assert list(tagged)[:3] == ["session", "seq", "event"]
    assert tagged["update"] == frame["update"]


def test_tag_fills_seq_and_event_from_the_sse_lines_when_data_lacks_them():
    tagged = tag_frame({"update": {}}, REF, event="tool_call", seq=12)
    assert (tagged["seq"], tagged["event"]) == (12, "tool_call")
    assert tag_frame({"seq": 4, "event": "done"}, REF, event="ignored", seq=99)["seq"] == 4


def test_terminal_frames():
    assert is_terminal({"event": "done"}) and is_terminal({"event": "error"})
    assert not is_terminal({"event": "agent_message_chunk"})


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
