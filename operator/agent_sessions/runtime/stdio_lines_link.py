"""`protocol: stdio-lines`: plain CLI agents, one line in, output lines until quiet (§7).

Each message's text is written to the agent's stdin as one line (its own newlines become
spaces). Every line the agent writes to stdout becomes an `agent_message_chunk`, whenever it
comes; a turn ends (`end_turn`) once the agent has been quiet for `quiet` seconds after its
last line — or, if it has written nothing at all, after `first_output_timeout`, so a slow
thinker is not cut off before it starts while a silent one cannot hold the session forever.

There is no way to interrupt a plain CLI, so cancel only ends the turn (`cancelled`); lines
the agent writes later are still recorded, outside any turn. A partial line (a prompt without a
newline) is emitted when its newline, or the end of the output, arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from agent_sessions.wire.message_request import prompt_text

from . import health
from .agent_link import AgentStartFailed, Emit, OpenedSession, TurnFailed, TurnOutcome
from .agent_process import AgentProcess

logger = logging.getLogger(__name__)


def reply_deadline(*, sent_at: float, last_output_at: float | None, quiet: float, first_output_timeout: float) -> float:
    """When a stdio-lines turn ends if nothing more is written (loop-clock seconds)."""
    if last_output_at is None:
        return sent_at + first_output_timeout
    return max(last_output_at, sent_at) + quiet


def as_one_line(text: str) -> str:
    return " ".join(part for part in text.splitlines()) if "\n" in text or "\r" in text else text


def output_update(line: bytes) -> dict[str, Any]:
    text = line.decode("utf-8", errors="replace")
    return {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}}


class StdioLinesLink:
    protocol = "stdio-lines"

    def __init__(
        self, process: AgentProcess, *, emit: Emit, quiet: float = 0.5, first_output_timeout: float = 30.0
    ) -> None:
        self.process = process
        self._emit = emit
        self._quiet = quiet
        self._first_output_timeout = first_output_timeout
        self._reader: asyncio.Task[None] | None = None
        self._output = asyncio.Event()
        self._cancelled = asyncio.Event()
        self._last_output_at: float | None = None

    async def open(self, previous_session_id: str | None) -> OpenedSession:
        try:
            await self.process.start()
        except OSError as exc:
            raise AgentStartFailed(health.agent_exec_failed(self.process.command[0], exc)) from None
        self._reader = asyncio.create_task(self._read_output(), name="runtime.stdio-lines.stdout")
        return OpenedSession(acp_session_id=None, opened_with=None)

    async def _read_output(self) -> None:
        stream = self.process.stdout
        loop = asyncio.get_running_loop()
        while True:
            try:
                line = await stream.readline()
            except ValueError:
                line = await stream.read(64 * 1024)
            if not line:
                return
            self._last_output_at = loop.time()
            self._output.set()
            self._emit(output_update(line))

    async def prompt(self, blocks: list[dict[str, Any]]) -> TurnOutcome:
        loop = asyncio.get_running_loop()
        line = as_one_line(prompt_text(blocks)) + "\n"
        self._cancelled.clear()
        self._last_output_at = None
        try:
            self.process.stdin.write(line.encode())
            await self.process.stdin.drain()
        except (ConnectionError, RuntimeError, AssertionError):
            raise TurnFailed("agent_exited", "the agent is not reading its input (it exited)") from None
        sent_at = loop.time()
        while True:
            if self._cancelled.is_set():
                return TurnOutcome("cancelled")
            if self.process.exited.is_set():
                message = f"the agent exited during the turn (exit code {self.process.exit_code})"
                raise TurnFailed("agent_exited", message)
            deadline = reply_deadline(
                sent_at=sent_at,
                last_output_at=self._last_output_at,
                quiet=self._quiet,
                first_output_timeout=self._first_output_timeout,
            )
            remaining = deadline - loop.time()
            if remaining <= 0:
                return TurnOutcome("end_turn")
            self._output.clear()
            await _first_of(self._output.wait(), self._cancelled.wait(), self.process.exited.wait(), timeout=remaining)

    async def cancel(self) -> bool:
        self._cancelled.set()
        return True

    async def close(self) -> None:
        await self.process.stop()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


async def _first_of(*waits: Any, timeout: float) -> None:
    """Wait until any of `waits` finishes or `timeout` passes; leaves no task behind."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
