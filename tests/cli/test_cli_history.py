"""How `agent-sessions history` renders the bridge's frames."""

from agent_sessions.cli.session_commands import render_history


def test_history_renders_user_messages_replies_and_tool_calls():
    frames = [
        {"seq": 1, "event": "user_message", "update": {"sessionUpdate": "user_message", "content": [{"type": "text", "text": "hello"}]}},
        {"seq": 2, "event": "tool_call", "update": {"sessionUpdate": "tool_call", "toolCallId": "t1", "title": "Count words"}},
        {"seq": 3, "event": "agent_message_chunk", "update": {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "You said: "}}},
        {"seq": 4, "event": "agent_message_chunk", "update": {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "hello"}}},
        {"seq": 5, "event": "done", "stopReason": "end_turn"},
    ]
    assert render_history(frames) == ["user:  hello", "tool:  Count words", "agent: You said: hello"]


def test_history_of_an_unfinished_turn_still_shows_the_partial_reply():
    frames = [{"seq": 1, "event": "agent_message_chunk", "update": {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "partial"}}}]
    assert render_history(frames) == ["agent: partial"]
