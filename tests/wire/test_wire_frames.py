"""Frames on the wire (§7): one shape for SSE data and history items, tagged with their session;
replies assembled from chunks."""

from __future__ import annotations

import json

import pytest

from agent_sessions.wire.frames import (
    done_body,
    error_body,
    is_terminal,
    json_safe,
    lone_surrogate_at,
    message_id_of,
    reply_content,
    reply_text,
    safe_text,
    tag_frame,
    turn_frames,
    turn_usage,
    update_body,
    update_kind,
    user_message_update,
)
from agent_sessions.wire.session_ref import SessionRef

REF = SessionRef("team-a", "demo", "u-1")
SESSION = {"namespace": "ns", "name": "s", "uid": "u"}


def chunk(seq: int, block: dict) -> dict:
    return {"seq": seq, "event": "agent_message_chunk", "update": {"sessionUpdate": "agent_message_chunk", "content": block}}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


@pytest.mark.parametrize(
    ("update", "kind"),
    [
        ({"sessionUpdate": "tool_call"}, "tool_call"),
        ({"sessionUpdate": "usage_update", "used": 1}, "usage_update"),
        ({}, "unknown"),
        ({"sessionUpdate": ""}, "unknown"),
        ({"sessionUpdate": 7}, "unknown"),
    ],
)
def test_the_event_name_is_the_acp_session_update_kind(update, kind):
    assert update_kind(update) == kind
    assert update_body(update) == (kind, {"update": update})


def test_user_message_is_recorded_in_the_shape_of_an_acp_update():
    assert update_body(user_message_update([text("hi")])) == (
        "user_message",
        {"update": {"sessionUpdate": "user_message", "content": [text("hi")]}},
    )


def test_done_and_error_bodies():
    assert done_body("end_turn", {"totalTokens": 3}) == ("done", {"stopReason": "end_turn", "usage": {"totalTokens": 3}})
    assert done_body("cancelled", None) == ("done", {"stopReason": "cancelled", "usage": None})
    assert error_body("agent_exited", "gone") == ("error", {"code": "agent_exited", "message": "gone"})


def test_reply_content_joins_adjacent_text_chunks_and_keeps_other_blocks():
    image = {"type": "image", "data": "AAAA", "mimeType": "image/png"}
    frames = [
        {"seq": 1, "event": "user_message", "update": {"sessionUpdate": "user_message", "content": [text("q")]}},
        chunk(2, text("You ")),
        {"seq": 3, "event": "tool_call", "update": {"sessionUpdate": "tool_call"}},
        chunk(4, {"type": "text", "text": "said", "annotations": {"priority": 1}}),
        chunk(5, image),
        chunk(6, text(": hi")),
        {"seq": 7, "event": "agent_thought_chunk", "update": {"sessionUpdate": "agent_thought_chunk", "content": text("hmm")}},
    ]
    content = reply_content(frames)
    assert content == [text("You said"), image, text(": hi")]
    assert reply_text(content) == "You said: hi"


def test_reply_of_a_turn_without_chunks_is_empty():
    assert reply_content([]) == []
    assert reply_text([]) == ""


@pytest.mark.parametrize(
    ("prompt_usage", "frames", "expected"),
    [
        pytest.param({"totalTokens": 5}, [], {"totalTokens": 5}, id="prompt-response-usage-wins"),
        pytest.param(
            None,
            [
                {"event": "usage_update", "update": {"sessionUpdate": "usage_update", "used": 1, "size": 10}},
                {"event": "usage_update", "update": {"sessionUpdate": "usage_update", "used": 2, "size": 10}},
            ],
            {"used": 2, "size": 10},
            id="else-the-last-usage-update",
        ),
        pytest.param(None, [chunk(1, text("x"))], None, id="else-none"),
    ],
)
def test_turn_usage(prompt_usage, frames, expected):
    assert turn_usage(prompt_usage, frames) == expected


def test_a_client_message_id_travels_on_the_user_message():
    update = user_message_update([text("hi")], "m-1")
    assert update == {"sessionUpdate": "user_message", "content": [text("hi")], "messageId": "m-1"}
    assert message_id_of({"event": "user_message", "update": update}) == "m-1"
    assert message_id_of({"event": "user_message", "update": user_message_update([text("hi")])}) is None
    assert message_id_of({"event": "agent_message_chunk", "update": {"messageId": "m-1"}}) is None


def test_turn_frames_run_from_the_user_message_to_the_end_of_its_turn():
    user = {"seq": 1, "event": "user_message", "update": {}}
    frames = [user, chunk(2, text("a")), {"seq": 3, "event": "done"}, {"seq": 4, "event": "user_message"}]
    assert [f["seq"] for f in turn_frames(frames)] == [1, 2, 3]
    unfinished = [user, chunk(2, text("a")), {"seq": 3, "event": "user_message"}]
    assert [f["seq"] for f in turn_frames(unfinished)] == [1, 2]


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


# -- whatever an agent sends, a frame is valid JSON in valid UTF-8 ----------------------------------


@pytest.mark.parametrize(("text", "index"), [
    ("plain", None), ("", None), ("smile \U0001F600", None), ("ctl \x00\x1b\u2028\x85", None),
    ("\ud800", 0), ("ab\udfff", 2), ("\U0001F600 \udc00", 2),
])
def test_lone_surrogate_at(text, index):
    assert lone_surrogate_at(text) == index


def test_safe_text_replaces_lone_surrogates_only():
    assert safe_text("a\ud800b\udc00") == "a\ufffdb\ufffd"
    same = "ctl \x00\x1b \u2028 \U0001F600"
    assert safe_text(same) is same, "text that encodes is returned as it is"


def test_json_safe_makes_any_json_value_encodable_as_strict_json():
    update = {
        "sessionUpdate": "agent_message_chunk",
        "content": {"type": "text", "text": "x\ud800"},
        "_meta": {"k\udfff": [float("nan"), float("inf"), 1.5, True, None, 3, ("t\ud801",)]},
    }
    safe = json_safe(update)
    assert safe == {
        "sessionUpdate": "agent_message_chunk",
        "content": {"type": "text", "text": "x\ufffd"},
        "_meta": {"k\ufffd": [None, None, 1.5, True, None, 3, ["t\ufffd"]]},
    }
    json.dumps(safe, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert json_safe({"a": [1, "b"]}) == {"a": [1, "b"]}
