"""The WebSocket protocol: what a client frame asks for, how server frames look."""

from __future__ import annotations

import json

import pytest

from agent_sessions.gateway.errors import GatewayError
from agent_sessions.gateway.ws_protocol import (
    Cancel,
    Ping,
    ProtocolError,
    Send,
    Subscribe,
    Unsubscribe,
    control_frame,
    error_frame,
    event_frame,
    parse_client_frame,
)

S = {"namespace": "team-a", "name": "demo"}


@pytest.mark.parametrize(("frame", "parsed"), [
    ({"type": "subscribe", **S}, Subscribe("team-a", "demo", None)),
    ({"type": "subscribe", **S, "after_seq": 0}, Subscribe("team-a", "demo", 0)),
    ({"type": "subscribe", **S, "after_seq": None}, Subscribe("team-a", "demo", None)),
    ({"type": "unsubscribe", **S}, Unsubscribe("team-a", "demo")),
    ({"type": "send", **S, "id": "r1", "text": "hi"}, Send("team-a", "demo", "r1", {"text": "hi"})),
    ({"type": "send", **S, "id": 3, "prompt": [{"type": "text", "text": "hi"}]},
     Send("team-a", "demo", 3, {"prompt": [{"type": "text", "text": "hi"}]})),
    ({"type": "send", **S, "text": "no id"}, Send("team-a", "demo", None, {"text": "no id"})),
    ({"type": "cancel", **S, "id": "c"}, Cancel("team-a", "demo", "c")),
    ({"type": "ping"}, Ping(None)),
    ({"type": "ping", "id": True}, Ping(None)),
])
def test_client_frames(frame, parsed):
    assert parse_client_frame(json.dumps(frame)) == parsed


@pytest.mark.parametrize(("text", "request_id"), [
    ("{nope", None),
    ("[]", None),
    (json.dumps({"type": "dance", "id": "x"}), "x"),
    (json.dumps({"type": "subscribe", "namespace": "team-a"}), None),
    (json.dumps({"type": "subscribe", **S, "after_seq": -1}), None),
    (json.dumps({"type": "subscribe", **S, "after_seq": "3"}), None),
    (json.dumps({"type": "subscribe", **S, "after_seq": True}), None),
    (json.dumps({"type": "send", **S, "id": "r"}), "r"),
    (json.dumps({"type": "send", **S, "id": "r", "text": "  "}), "r"),
    (json.dumps({"type": "send", **S, "id": 4, "text": "a", "prompt": []}), 4),
    (json.dumps({"type": "send", "namespace": 1, "name": "x", "id": 5, "text": "a"}), 5),
])
def test_bad_client_frames_are_invalid_requests_naming_the_request(text, request_id):
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame(text)
    assert (caught.value.code, caught.value.status, caught.value.request_id) == ("invalid_request", 422, request_id)


def test_session_frames_become_event_done_or_error_with_the_request_id():
    session = {"namespace": "team-a", "name": "demo", "uid": "u"}
    chunk = {"session": session, "seq": 2, "event": "agent_message_chunk", "update": {}}
    assert event_frame(chunk) == {"type": "event", **chunk}
    assert event_frame(chunk, "r1") == {"type": "event", "id": "r1", **chunk}
    assert event_frame({"session": session, "seq": 5, "event": "done"})["type"] == "done"
    assert event_frame({"session": session, "seq": 5, "event": "error", "code": "agent_error"})["type"] == "error"
    assert event_frame({"seq": 1, "event": "x", "type": "sneaky", "id": "forged"}) == {"type": "event", "seq": 1,
                                                                                         "event": "x"}


def test_error_and_control_frames():
    error = GatewayError("forbidden", "no")
    assert error_frame(error, "r", {"namespace": "a", "name": "b", "uid": None}) == {
        "type": "error", "id": "r", "session": {"namespace": "a", "name": "b", "uid": None}, "code": "forbidden",
        "message": "no"}
    assert error_frame(error)["session"] is None
    assert control_frame("subscribed", {"namespace": "a"}, after_seq=3) == {
        "type": "subscribed", "session": {"namespace": "a"}, "after_seq": 3}
