"""The agent as a child process: started with the session's environment, stderr kept and shown.

The SDK's `spawn_agent_process` trims the environment to a handful of variables (an MCP
convention); an agent in a session needs the pod's whole environment (API keys from Secrets,
proxy settings, `HOME`), so the bridge starts the process itself and hands its pipes to the
SDK's client connection.

The agent's stderr is copied line by line to the bridge's own stderr (so `kubectl logs` shows
it) and its last lines are kept for `/healthz`. The bridge's stdout is never used by the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from .health import StderrTail
from .output import wrote_lines

logger = logging.getLogger(__name__)

#: Pipe buffer of the agent's stdout: ACP messages with images can be large (the SDK uses 50 MiB).
STREAM_LIMIT = 50 * 1024 * 1024


class AgentProcess:
    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        stderr_sink: BinaryIO | None = None,
        on_exit: Callable[[int | None], None] | None = None,
    ) -> None:
        self.command = tuple(command)
        self.cwd = cwd
        self.env = dict(env)
        self.stderr_tail = StderrTail()
        self._stderr_sink = stderr_sink if stderr_sink is not None else sys.stderr.buffer
        self._on_exit = on_exit
        self._process: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._exit_task: asyncio.Task[None] | None = None
        self.exited = asyncio.Event()
        self.exit_code: int | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self._process is not None and self._process.stdin is not None
        return self._process.stdin

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self._process is not None and self._process.stdout is not None
        return self._process.stdout

    async def start(self) -> None:
        """Start the agent; raises OSError when the command cannot be run."""
        self._process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(self.cwd),
            env=self.env,
            limit=STREAM_LIMIT,
        )
        logger.info("agent started: pid %s, command %s", self._process.pid, self.command[0])
        self._stderr_task = asyncio.create_task(self._pump_stderr(), name="runtime.agent.stderr")
        self._exit_task = asyncio.create_task(self._watch_exit(), name="runtime.agent.exit")

    async def _pump_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        stream = self._process.stderr
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the limit: take what is there
                line = await stream.read(STREAM_LIMIT)
            if not line:
                return
            self.stderr_tail.add(line)
            with contextlib.suppress(OSError, ValueError):
                self._stderr_sink.write(line if line.endswith(b"\n") else line + b"\n")
                self._stderr_sink.flush()
            wrote_lines()

    async def _watch_exit(self) -> None:
        assert self._process is not None
        code = await self._process.wait()
        # The last stderr lines are the useful ones: let the pump drain them (bounded: a
        # grandchild may hold the pipe open).
        if self._stderr_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), timeout=1.0)
        self.exit_code = code
        self.exited.set()
        logger.log(logging.INFO if code == 0 else logging.WARNING, "agent exited with code %s", code)
        if self._on_exit is not None:
            self._on_exit(code)

    async def stop(self, timeout: float = 3.0) -> None:
        """Close stdin (an agent's cue to finish), then terminate, then kill. Idempotent."""
        process = self._process
        if process is None:
            return
        if process.returncode is None and process.stdin is not None:
            with contextlib.suppress(Exception):
                process.stdin.close()
        for signal_step in (None, process.terminate, process.kill):
            if signal_step is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    signal_step()
            try:
                await asyncio.wait_for(asyncio.shield(self.exited.wait()), timeout=timeout)
                break
            except asyncio.TimeoutError:
                continue
        for task in (self._exit_task, self._stderr_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
