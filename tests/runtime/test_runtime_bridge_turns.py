"""No input and no failure wedges a session: every turn ends with `done` or `error` and frees the
session, whatever the history writer or the agent link does; health says when the runtime is
the problem. The bridge is driven directly, with a link the test controls."""

from __future__ import annotations

import asyncio
import errno
import json
from dataclasses import replace
from typing import Any

import pytest

from agent_sessions.runtime import bridge as bridge_module
from agent_sessions.runtime import health as h
from agent_sessions.runtime.agent_link import TurnOutcome
from agent_sessions.runtime.bridge import AgentUnavailable, RuntimeBridge, SessionBusy, Turn
from agent_sessions.runtime.history import HistoryStore
from agent_sessions.runtime.options import RuntimeOptions

TIER = "unit"
HI = [{"type": "text", "text": "hi"}]


class _Process:
    def __init__(self) -> None:
        self.stderr_tail = h.StderrTail()


class ScriptedLink:
    """A link whose prompts end when the test says so."""

    protocol = "acp"

    def __init__(self) -> None:
        self.process = _Process()
        self.prompts: list[asyncio.Future[TurnOutcome]] = []
        self.prompted = asyncio.Event()
        self.cancels = 0
        self.cancel_answer: bool | BaseException = True
        self.prompt_error: BaseException | None = None
        self.stubborn = False  # swallow cancellation until released
        self.released = asyncio.Event()

    async def prompt(self, blocks: list[dict[str, Any]]) -> TurnOutcome:
        if self.prompt_error is not None:
            raise self.prompt_error
        future: asyncio.Future[TurnOutcome] = asyncio.get_running_loop().create_future()
        self.prompts.append(future)
        self.prompted.set()
        while True:
            try:
                return await asyncio.shield(future) if self.stubborn else await future
            except asyncio.CancelledError:
                if not self.stubborn:
                    raise
                await self.released.wait()
                raise

    def reply(self, stop_reason: str = "end_turn") -> None:
        self.prompts[-1].set_result(TurnOutcome(stop_reason))

    async def cancel(self) -> bool:
        self.cancels += 1
        if isinstance(self.cancel_answer, BaseException):
            raise self.cancel_answer
        return self.cancel_answer

    async def close(self) -> None:
        pass


@pytest.fixture
async def setup(tmp_path):
    options = RuntimeOptions(command=("agent",), workspace=tmp_path, cancel_grace=0.2)
    bridge = RuntimeBridge(options)
    link = ScriptedLink()
    bridge._history = HistoryStore.open(tmp_path / "history.jsonl")
    bridge._link = link  # type: ignore[assignment]
    bridge.health = h.healthy()
    yield bridge, link
    await bridge.close()


async def finished(turn: Turn) -> dict[str, Any]:
    await asyncio.wait_for(turn.finished.wait(), timeout=5)
    assert turn.result is not None
    return turn.result


async def a_normal_turn_works(bridge: RuntimeBridge, link: ScriptedLink) -> None:
    link.prompted.clear()
    turn = bridge.begin_turn(HI)
    await asyncio.wait_for(link.prompted.wait(), timeout=5)
    link.reply()
    assert (await finished(turn))["event"] == "done"
    await asyncio.sleep(0)
    assert bridge.state == "idle"


def fail_writes(bridge: RuntimeBridge, monkeypatch) -> None:
    def write(data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    assert bridge._history is not None
    monkeypatch.setattr(bridge._history, "_write_bytes", write)


async def test_a_message_that_cannot_be_recorded_ends_its_turn_with_an_error_and_frees_the_session(setup, monkeypatch):
    bridge, link = setup
    fail_writes(bridge, monkeypatch)
    turn = bridge.begin_turn(HI)
    result = await finished(turn)
    assert result["event"] == "error" and result["code"] == "history_unwritable"
    assert "No space left on device" in result["message"]
    assert link.prompts == [], "the agent is not prompted with a message the runtime could not keep"
    await asyncio.sleep(0)
    assert bridge.state == "idle"
    health = bridge.health_json()
    assert (health["status"], health["reason"]) == ("unhealthy", "HistoryUnwritable")
    assert "No space left on device" in health["message"]
    assert bridge.info()["health"] == health

    monkeypatch.undo()
    await a_normal_turn_works(bridge, link)
    assert bridge.runtime_health.ok and bridge.health_json()["status"] == "ok"


async def test_a_frame_that_cannot_be_written_mid_turn_ends_the_turn_and_asks_the_agent_to_stop(setup, monkeypatch):
    bridge, link = setup
    turn = bridge.begin_turn(HI)
    await asyncio.wait_for(link.prompted.wait(), timeout=5)
    fail_writes(bridge, monkeypatch)
    bridge._on_update({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "x"}})
    result = await finished(turn)
    assert result["code"] == "history_unwritable"
    assert link.cancels == 1 and link.prompts[0].cancelled()
    assert [frame["event"] for frame in turn.frames] == ["user_message", "agent_message_chunk", "error"]
    monkeypatch.undo()
    await a_normal_turn_works(bridge, link)


async def test_a_link_that_raises_ends_the_turn_with_internal_error(setup):
    bridge, link = setup
    link.prompt_error = RuntimeError("the link broke")
    result = await finished(bridge.begin_turn(HI))
    assert (result["event"], result["code"]) == ("error", "internal_error")
    link.prompt_error = None
    await a_normal_turn_works(bridge, link)


async def test_cancel_ends_a_turn_the_agent_does_not_end_after_the_grace(setup):
    bridge, link = setup
    turn = bridge.begin_turn(HI)
    await asyncio.wait_for(link.prompted.wait(), timeout=5)
    with pytest.raises(SessionBusy):
        bridge.begin_turn(HI)
    assert await bridge.cancel() is True
    result = await finished(turn)
    assert result["code"] == "cancel_timeout"
    assert result["message"] == "the agent did not end the turn within 0.2s of cancel; the runtime ended it"
    await a_normal_turn_works(bridge, link)


async def test_a_turn_the_agent_ends_after_cancel_is_not_ended_twice(setup):
    bridge, link = setup
    turn = bridge.begin_turn(HI)
    await asyncio.wait_for(link.prompted.wait(), timeout=5)
    assert await bridge.cancel() is True
    link.reply("cancelled")
    assert (await finished(turn))["stopReason"] == "cancelled"
    await asyncio.sleep(0.4)
    assert [frame["event"] for frame in turn.frames] == ["user_message", "done"]


@pytest.mark.parametrize("answer", [False, ConnectionError("pipe closed")], ids=["refused", "raised"])
async def test_cancel_that_cannot_reach_the_agent_ends_the_turn_at_once(setup, answer):
    bridge, link = setup
    bridge.options = replace(bridge.options, cancel_grace=60)  # "at once" is not "after the grace"
    link.cancel_answer = answer
    turn = bridge.begin_turn(HI)
    await asyncio.wait_for(link.prompted.wait(), timeout=5)
    assert await bridge.cancel() is True
    result = await finished(turn)
    assert result["code"] == "cancel_failed"
    assert result["message"].startswith("the agent could not be asked to stop (")


async def test_an_agent_that_exits_mid_turn_ends_it_even_if_the_link_never_notices(setup, monkeypatch):
    bridge, link = setup
    monkeypatch.setattr(bridge_module, "AGENT_EXIT_GRACE", 0.1)
    turn = bridge.begin_turn(HI)
    await asyncio.wait_for(link.prompted.wait(), timeout=5)
    bridge._on_agent_exit(9)
    result = await finished(turn)
    assert (result["code"], result["message"]) == ("agent_exited", "the agent exited (exit code 9) during the turn")
    await asyncio.sleep(0)
    with pytest.raises(AgentUnavailable):  # not SessionBusy: the session is free, its agent is gone
        bridge.begin_turn(HI)
    assert bridge.health_json()["reason"] == "AgentExited"


async def test_a_link_that_does_not_let_go_of_a_prompt_is_reported_and_the_session_is_freed(setup, monkeypatch):
    bridge, link = setup
    monkeypatch.setattr(bridge_module, "PROMPT_STOP_TIMEOUT", 0.1)
    link.stubborn = True
    turn = bridge.begin_turn(HI)
    await asyncio.wait_for(link.prompted.wait(), timeout=5)
    await bridge.cancel()
    assert (await finished(turn))["code"] == "cancel_timeout"
    await asyncio.sleep(0)
    assert bridge.state == "idle"
    health = bridge.health_json()
    assert (health["status"], health["reason"]) == ("unhealthy", "TurnMachineryFailed")
    link.released.set()
    for _ in range(50):
        if bridge.runtime_health.ok:
            break
        await asyncio.sleep(0.01)
    assert bridge.runtime_health.ok, "health recovers once the link lets go"


async def test_a_turn_task_that_dies_without_ending_its_turn_is_caught(setup, monkeypatch):
    bridge, link = setup

    async def broken(turn: Turn, blocks: Any) -> None:
        raise RuntimeError("bug in the turn machinery")

    monkeypatch.setattr(bridge, "_run_turn", broken)
    turn = bridge.begin_turn(HI)
    result = await finished(turn)
    assert (result["event"], result["code"]) == ("error", "internal_error")
    assert bridge.state == "idle"
    health = bridge.health_json()
    assert health["reason"] == "TurnMachineryFailed" and "bug in the turn machinery" in health["message"]
    monkeypatch.undo()
    await a_normal_turn_works(bridge, link)
    assert bridge.runtime_health.ok, "a turn that ends normally clears it"


async def test_agent_output_with_invalid_unicode_is_recorded_and_served_safely(setup, tmp_path):
    bridge, link = setup
    turn = bridge.begin_turn(HI)
    await asyncio.wait_for(link.prompted.wait(), timeout=5)
    bridge._on_update({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "a\ud800\x1b\u2028"}})
    bridge._on_update({"sessionUpdate": "session_info_update", "title": "t\udc00", "_meta": {"k\udfff": float("nan")}})
    bridge._on_update({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "b"}})
    link.reply()
    assert (await finished(turn))["event"] == "done"
    events = [frame["event"] for frame in turn.frames]
    assert events == ["user_message", "agent_message_chunk", "session_info_update", "agent_message_chunk", "done"]
    assert turn.frames[1]["update"]["content"]["text"] == "a\ufffd\x1b\u2028"
    assert bridge.session_info.title == "t\ufffd"
    json.dumps(bridge.info(), ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert bridge.runtime_health.ok
    reloaded = HistoryStore.open(tmp_path / "history.jsonl")
    assert [frame["event"] for frame in reloaded] == events
