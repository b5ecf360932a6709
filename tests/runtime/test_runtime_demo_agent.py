"""The demo agent's pure parts: how it titles a session and chunks its reply."""

from __future__ import annotations

import pytest

from agent_sessions.runtime.demo_agent import DemoAgent, DemoSession, split_reply, title_from


@pytest.mark.parametrize(
    "reply",
    ["You said: x", "You said: hello", "You said: " + "word " * 50, "You said: " + "a" * 300],
)
def test_a_reply_is_streamed_in_at_least_three_chunks_that_add_up(reply):
    chunks = split_reply(reply)
    assert len(chunks) >= 3
    assert all(chunks)
    assert "".join(chunks) == reply


@pytest.mark.parametrize(
    ("prompt", "title"),
    [
        ("Fix the login bug", "Fix the login bug"),
        ("  many   spaces\nand lines ", "many spaces and lines"),
        ("x" * 60, "x" * 39 + "…"),
    ],
)
def test_the_title_is_the_first_prompt_cut_to_forty_characters(prompt, title):
    assert title_from(prompt) == title
    assert len(title_from(prompt)) <= 40


def test_sessions_are_remembered_in_the_working_directory(tmp_path):
    session = DemoSession("abc123", tmp_path, title="T", turn=4, tokens=9)
    session.save()
    loaded = DemoSession.load("abc123", tmp_path)
    assert (loaded.title, loaded.turn, loaded.tokens) == ("T", 4, 9)
    assert DemoSession.load("unknown", tmp_path) is None
    assert DemoSession.load("../escape", tmp_path) is None


def test_environment_switches():
    agent = DemoAgent.from_env({"DEMO_AGENT_CHUNK_DELAY": "0.5", "DEMO_AGENT_REQUIRE_AUTH": "1", "DEMO_AGENT_CRASH_ON": "boom"})
    assert (agent._chunk_delay, agent._require_auth, agent._crash_on) == (0.5, True, "boom")
    default = DemoAgent.from_env({})
    assert (default._chunk_delay, default._require_auth, default._crash_on) == (0.05, False, None)
