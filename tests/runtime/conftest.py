"""Real runtime bridges (`python -m agent_sessions.runtime`) around real agents, on free ports.

Each bridge runs in its own process group, so the agent it started is killed with it whatever
happens to the test. Readiness is polled with a deadline, never slept for.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

DEADLINE = 20.0
DEMO_AGENT = (sys.executable, "-m", "agent_sessions.runtime.demo_agent")
SESSION = {"namespace": "team-a", "name": "demo", "uid": "0b7d3a9c-0000-4000-8000-000000000001"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Bridge:
    """One running `agent-sessions runtime` process."""

    process: subprocess.Popen[bytes]
    url: str
    workspace: Path
    log: Path
    stopped: bool = field(default=False)

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (bridge and agent) and reap the bridge."""
        if self.stopped:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Whatever the bridge left behind in its group (the agent) goes too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.stopped = True


@pytest.fixture
def start_bridge(tmp_path: Path) -> Iterator[Callable[..., Bridge]]:
    started: list[Bridge] = []

    def start(
        *,
        workspace: Path | None = None,
        agent: tuple[str, ...] = DEMO_AGENT,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> Bridge:
        workspace = workspace or tmp_path / "workspace"
        workspace.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = tmp_path / f"bridge-{len(started)}.log"
        command = [
            sys.executable, "-m", "agent_sessions.runtime",
            "--host", "127.0.0.1", "--port", str(port), "--workspace", str(workspace),
            "--session-namespace", SESSION["namespace"], "--session-name", SESSION["name"],
            "--session-uid", SESSION["uid"], "--log-level", "DEBUG",
            *args, "--", *agent,
        ]
        with log.open("wb") as sink:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        bridge = Bridge(process=process, url=f"http://127.0.0.1:{port}", workspace=workspace, log=log)
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.kill()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def wait_health(
    http: aiohttp.ClientSession,
    bridge: Bridge,
    until: Callable[[int, dict[str, Any]], bool] = lambda status, body: status == 200,
    deadline: float = DEADLINE,
) -> dict[str, Any]:
    """Poll /healthz until `until(status, body)`; fail with the bridge's log on timeout."""
    end = time.monotonic() + deadline
    last: tuple[int, Any] | None = None
    while time.monotonic() < end:
        assert bridge.alive(), f"the bridge exited ({bridge.process.returncode}):\n{bridge.logs()}"
        try:
            async with http.get(f"{bridge.url}/healthz") as response:
                last = (response.status, await response.json())
        except aiohttp.ClientConnectionError:
            last = None
        else:
            if until(*last):
                return last[1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"/healthz never got there; last answer {last}\n{bridge.logs()}")


async def ready(http: aiohttp.ClientSession, bridge: Bridge) -> Bridge:
    await wait_health(http, bridge)
    return bridge


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def post_json(http: aiohttp.ClientSession, url: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    async with http.post(url, json=body, **kwargs) as response:
        return response.status, await response.json()


async def sse_frames(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) of each SSE message until the stream ends."""
    event, data = None, []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if event is not None:
                yield event, json.loads("\n".join(data))
            event, data = None, []
        elif line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            data.append(line[len("data: "):])


async def stream_message(
    http: aiohttp.ClientSession, bridge: Bridge, text: str, message_id: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    body = {"text": text} if message_id is None else {"text": text, "id": message_id}
    async with http.post(f"{bridge.url}/v1/messages?stream=true", json=body) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        return [frame async for frame in sse_frames(response)]
