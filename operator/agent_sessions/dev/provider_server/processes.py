"""A session of the reference server as local processes: the runtime bridge and its agent.

Exactly what a pod runs, minus the pod: `python -m agent_sessions.runtime --host 127.0.0.1
--port <free port> --workspace <dir> -- <agent command>`. The bridge serves the session's
endpoint (§7), so the `endpoint` the platform reports is the bridge's own URL and the operator
and the gateway talk to it as they would to a pod's.

* The agent command is the PUT body's `agent.command` + `agent.args`, else the demo agent.
  `agent-sessions …` runs as `python -m agent_sessions.cli.main …` when the console script is
  not on PATH. `agent.env` literal values are added to the server's own environment (this is a
  development server: the agent runs as the server's user, with its tools).
* The bridge leads its own process group; stopping sends SIGTERM to the group (the bridge stops
  its agent) and SIGKILL after a grace period. The workspace directory stays.
* stdout and stderr of both go to one log file per session, appended across stops and starts:
  what `GET /v1/sessions/{id}/logs` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import agent_sessions

DEFAULT_AGENT = ("-m", "agent_sessions.runtime.demo_agent")
"""The agent when the PUT body names none (run with the server's Python)."""
STOP_GRACE_SECONDS = 5.0
HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port nobody listens on right now (the bridge binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def agent_command(agent: Mapping[str, Any], python: str = sys.executable) -> list[str]:
    """The agent's command line from the PUT body's `agent` block."""
    command = [str(part) for part in agent.get("command") or ()]
    args = [str(part) for part in agent.get("args") or ()]
    if not command:
        return [python, *DEFAULT_AGENT, *args]
    if command[0] == "agent-sessions" and shutil.which("agent-sessions") is None:
        command = [python, "-m", "agent_sessions.cli.main", *command[1:]]
    return [*command, *args]


def bridge_command(
    *, port: int, workspace: Path, identity: Mapping[str, Any], agent: Mapping[str, Any], python: str = sys.executable
) -> list[str]:
    """The runtime bridge's command line, wrapping the agent's."""
    command = [python, "-m", "agent_sessions.runtime", "--host", HOST, "--port", str(port),
               "--workspace", str(workspace), "--protocol", str(agent.get("protocol") or "acp")]
    for flag, key in (("--session-namespace", "namespace"), ("--session-name", "name"), ("--session-uid", "uid")):
        if identity.get(key):
            command += [flag, str(identity[key])]
    return [*command, "--", *agent_command(agent, python)]


def agent_environment(agent: Mapping[str, Any], identity: Mapping[str, Any]) -> dict[str, str]:
    """The server's environment, the session's identity and the literal `agent.env` values."""
    source_root = str(Path(agent_sessions.__file__).resolve().parents[1])
    python_path = os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": python_path}
    for variable, key in (("AGENT_SESSION_NAMESPACE", "namespace"), ("AGENT_SESSION_NAME", "name"),
                          ("AGENT_SESSION_UID", "uid")):
        if identity.get(key):
            env[variable] = str(identity[key])
    for entry in agent.get("env") or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str) and isinstance(entry.get("value"), str):
            env[entry["name"]] = entry["value"]
    return env


class SessionProcess:
    """The bridge (and through it the agent) of one session, while it runs."""

    def __init__(self, *, workspace: Path, log_path: Path, identity: Mapping[str, Any],
                 agent: Mapping[str, Any], python: str = sys.executable) -> None:
        self.workspace = workspace
        self.log_path = log_path
        self.identity = dict(identity)
        self.agent = dict(agent)
        self.python = python
        self.port: int | None = None
        self.exit_code: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._waiter: asyncio.Task[None] | None = None

    @property
    def endpoint(self) -> str | None:
        return f"http://{HOST}:{self.port}" if self.port is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self.exit_code is None

    async def start(self) -> None:
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        command = bridge_command(port=self.port, workspace=self.workspace, identity=self.identity,
                                 agent=self.agent, python=self.python)
        with open(self.log_path, "ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                cwd=self.workspace, env=agent_environment(self.agent, self.identity), start_new_session=True,
            )
        self._waiter = asyncio.get_running_loop().create_task(self._wait(), name=f"session process {self.port}")

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to the group, SIGKILL after `grace`; returns once the bridge has exited."""
        process = self._process
        if process is None:
            return
        if self.exit_code is None:
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self._wait_exit()), grace)
            except asyncio.TimeoutError:
                self._signal(signal.SIGKILL)
                await self._wait_exit()
        self._signal(signal.SIGKILL)  # whatever is left of the group goes with it
        if self._waiter is not None:
            await asyncio.gather(self._waiter, return_exceptions=True)

    async def _wait(self) -> None:
        assert self._process is not None
        self.exit_code = await self._process.wait()

    async def _wait_exit(self) -> None:
        if self._waiter is not None:
            await asyncio.shield(self._waiter)

    def _signal(self, signum: int) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)
