"""stdio-lines (§7): one line in, output lines until the agent is quiet."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_sessions.runtime.agent_link import TurnFailed
from agent_sessions.runtime.health import StderrTail
from agent_sessions.runtime.stdio_lines_link import StdioLinesLink, as_one_line, output_update, reply_deadline


@pytest.mark.parametrize(
    ("last_output_at", "expected"),
    [
        pytest.param(None, 10.0 + 30.0, id="nothing-yet-waits-for-the-first-output"),
        pytest.param(12.0, 12.5, id="quiet-counts-from-the-last-line"),
        pytest.param(9.0, 10.5, id="output-before-the-prompt-counts-from-the-prompt"),
    ],
)
def test_reply_deadline(last_output_at, expected):
    assert reply_deadline(sent_at=10.0, last_output_at=last_output_at, quiet=0.5, first_output_timeout=30.0) == expected


@pytest.mark.parametrize(
    ("text", "line"),
    [("hello", "hello"), ("a\nb", "a b"), ("a\r\nb\n", "a b"), ("", "")],
)
def test_a_message_is_written_as_one_line(text, line):
    assert as_one_line(text) == line


def test_an_output_line_is_an_agent_message_chunk():
    assert output_update(b"HELLO\n") == {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "HELLO\n"}}


class _Stdin:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    async def drain(self) -> None:
        pass


class FakeProcess:
    """Stands in for AgentProcess: a stdout the test feeds, a stdin the test reads."""

    command = ("fake-cli",)

    def __init__(self) -> None:
        self.stdout = asyncio.StreamReader()
        self.stdin = _Stdin()
        self.exited = asyncio.Event()
        self.exit_code: int | None = None
        self.stderr_tail = StderrTail()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stdout.feed_eof()

    def exit(self, code: int) -> None:
        self.exit_code = code
        self.exited.set()


@pytest.fixture
async def link():
    emitted: list[dict[str, Any]] = []
    process = FakeProcess()
    link = StdioLinesLink(process, emit=lambda update, replayed=False: emitted.append(update), quiet=0.1, first_output_timeout=0.3)
    link.emitted = emitted  # type: ignore[attr-defined]
    await link.open(None)
    yield link
    await link.close()


async def test_output_lines_end_the_turn_once_the_agent_is_quiet(link):
    turn = asyncio.create_task(link.prompt([{"type": "text", "text": "hi\nthere"}]))
    await asyncio.sleep(0)
    assert link.process.stdin.written == b"hi there\n"
    link.process.stdout.feed_data(b"HI\n")
    link.process.stdout.feed_data(b"THERE\n")
    outcome = await asyncio.wait_for(turn, timeout=5)
    assert outcome.stop_reason == "end_turn"
    assert [u["content"]["text"] for u in link.emitted] == ["HI\n", "THERE\n"]


async def test_a_line_within_the_quiet_window_belongs_to_the_same_turn():
    # A quiet window no loaded machine overruns between two lines: the second follows the moment
    # the first was read, so only the link's own logic can split them.
    emitted: list[dict[str, Any]] = []
    link = StdioLinesLink(FakeProcess(), emit=lambda update, replayed=False: emitted.append(update), quiet=1.0)
    await link.open(None)
    try:
        turn = asyncio.create_task(link.prompt([{"type": "text", "text": "q"}]))
        link.process.stdout.feed_data(b"one\n")
        async with asyncio.timeout(5):
            while not emitted:
                await asyncio.sleep(0)
        assert not turn.done()
        link.process.stdout.feed_data(b"two\n")
        await asyncio.wait_for(turn, timeout=5)
        assert [u["content"]["text"] for u in emitted] == ["one\n", "two\n"]
    finally:
        await link.close()


async def test_a_silent_agent_ends_the_turn_empty_after_the_first_output_timeout(link):
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = await asyncio.wait_for(link.prompt([{"type": "text", "text": "q"}]), timeout=5)
    assert outcome.stop_reason == "end_turn"
    assert loop.time() - started >= 0.3
    assert link.emitted == []


async def test_cancel_ends_the_turn_as_cancelled(link):
    turn = asyncio.create_task(link.prompt([{"type": "text", "text": "q"}]))
    await asyncio.sleep(0)
    assert await link.cancel()
    assert (await asyncio.wait_for(turn, timeout=5)).stop_reason == "cancelled"


async def test_an_agent_exit_fails_the_turn(link):
    turn = asyncio.create_task(link.prompt([{"type": "text", "text": "q"}]))
    await asyncio.sleep(0)
    link.process.exit(2)
    with pytest.raises(TurnFailed) as caught:
        await asyncio.wait_for(turn, timeout=5)
    assert caught.value.code == "agent_exited" and "2" in caught.value.message
