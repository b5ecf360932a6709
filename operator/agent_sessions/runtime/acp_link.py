"""Talking ACP to the agent over its stdio, with the SDK's client side (`acp.connect_to_agent`).

Updates are taken from the raw JSON-RPC stream (an SDK *observer*), not from the parsed
`session_update` callback, for two reasons:

* faithfulness — the parsed models cannot tell an omitted field from `null`, and that is the
  whole meaning of `session_info_update` (§7: omitted = unchanged, `null` = cleared); frames
  carry the update exactly as the agent sent it;
* order — the SDK runs each notification handler as its own task, while observers run inline
  in the receive loop, so every update of a turn is recorded before the prompt's response is
  seen, in the order the agent wrote them.

The client side advertises no file system and no terminal: the agent works in its own
workspace. The bridge is headless, so `session/request_permission` is answered by a policy
(`--permissions allow|reject`), never left waiting for a human who is not there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from acp import PROTOCOL_VERSION, RequestError, connect_to_agent
from acp.connection import StreamDirection, StreamEvent
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileSystemCapabilities,
    Implementation,
    PermissionOption,
    RequestPermissionResponse,
    ToolCallUpdate,
)

from agent_sessions import __version__

from . import health
from .agent_link import AgentStartFailed, Emit, OpenedSession, TurnFailed, TurnOutcome
from .agent_process import AgentProcess
from .options import PermissionPolicy

logger = logging.getLogger(__name__)

T = TypeVar("T")

SESSION_UPDATE = "session/update"
CLIENT_INFO = Implementation(name="agent-sessions-runtime", version=__version__)


def error_json(exc: RequestError) -> dict[str, Any]:
    """A JSON-RPC error as it travelled (code, message, and data when there was some)."""
    body: dict[str, Any] = {"code": exc.code, "message": str(exc)}
    if exc.data is not None:
        body["data"] = exc.data
    return body


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


class _HeadlessClient:
    """The client half of ACP that the agent may call back: only permission requests."""

    def __init__(self, policy: PermissionPolicy) -> None:
        self._wanted = ("allow_once", "allow_always") if policy == "allow" else ("reject_once", "reject_always")

    async def request_permission(
        self, session_id: str, tool_call: ToolCallUpdate, options: list[PermissionOption], **kwargs: Any
    ) -> RequestPermissionResponse:
        for kind in self._wanted:
            for option in options:
                if option.kind == kind:
                    logger.debug("permission: answering %s for tool call %s", kind, tool_call.tool_call_id)
                    outcome = AllowedOutcome(outcome="selected", option_id=option.option_id)
                    return RequestPermissionResponse(outcome=outcome)
        return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        """Recorded by the raw observer (see the module docstring); nothing to do here."""


class AcpLink:
    protocol = "acp"

    def __init__(
        self,
        process: AgentProcess,
        *,
        workspace: Path,
        emit: Emit,
        permissions: PermissionPolicy = "allow",
        start_timeout: float = 60.0,
    ) -> None:
        self.process = process
        self._workspace = workspace
        self._emit = emit
        self._permissions = permissions
        self._start_timeout = start_timeout
        self._conn: Any = None
        self._session_id: str | None = None
        self._replaying = False

    def _observe(self, event: StreamEvent) -> None:
        if event.direction is not StreamDirection.INCOMING:
            return
        message = event.message
        if message.get("method") != SESSION_UPDATE or "id" in message:
            return
        params = message.get("params")
        update = params.get("update") if isinstance(params, Mapping) else None
        if isinstance(update, Mapping):
            self._emit(update, replayed=self._replaying)

    async def _exit_code(self) -> int | None:
        """The agent's exit code, once its exit has been noticed (bounded wait)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.process.exited.wait(), timeout=2.0)
        return self.process.exit_code

    async def _during_start(self, step: str, call: Awaitable[T]) -> T:
        """One start-up request: bounded in time; an exit or a hang becomes AgentStartFailed."""
        try:
            return await asyncio.wait_for(call, timeout=self._start_timeout)
        except asyncio.TimeoutError:
            raise AgentStartFailed(
                health.initialize_failed(
                    f"the agent did not answer {step} within {self._start_timeout:g}s "
                    "(is it an ACP agent? plain CLI agents need --protocol stdio-lines)",
                    stderr=self.process.stderr_tail.lines(),
                )
            ) from None
        except ConnectionError:
            code = await self._exit_code()
            raise AgentStartFailed(health.agent_exited(code, self.process.stderr_tail.lines())) from None

    async def open(self, previous_session_id: str | None) -> OpenedSession:
        try:
            await self.process.start()
        except OSError as exc:
            raise AgentStartFailed(health.agent_exec_failed(self.process.command[0], exc)) from None
        self._conn = connect_to_agent(
            _HeadlessClient(self._permissions), self.process.stdin, self.process.stdout, observers=[self._observe]
        )
        try:
            init = await self._during_start(
                "initialize",
                self._conn.initialize(
                    protocol_version=PROTOCOL_VERSION,
                    client_capabilities=ClientCapabilities(
                        fs=FileSystemCapabilities(read_text_file=False, write_text_file=False), terminal=False
                    ),
                    client_info=CLIENT_INFO,
                ),
            )
        except RequestError as exc:
            raise AgentStartFailed(
                health.initialize_failed(
                    f"the agent refused initialize: {exc}",
                    error=error_json(exc),
                    stderr=self.process.stderr_tail.lines(),
                )
            ) from None
        opened = OpenedSession(
            acp_session_id=None,
            opened_with=None,
            agent_info=_dump(init.agent_info) if init.agent_info else None,
            agent_capabilities=_dump(init.agent_capabilities) if init.agent_capabilities else {},
            auth_methods=tuple(_dump(method) for method in init.auth_methods or ()),
        )
        cwd = str(self._workspace.resolve())
        if previous_session_id and opened.can_load:
            self._replaying = True
            try:
                await self._during_start(
                    "session/load", self._conn.load_session(cwd=cwd, session_id=previous_session_id, mcp_servers=[])
                )
            except RequestError as exc:
                if exc.code == health.ACP_AUTH_REQUIRED:
                    raise self._refused(exc, opened) from None
                logger.warning("session/load of %s failed (%s); opening a new ACP session", previous_session_id, exc)
            else:
                self._session_id = previous_session_id
                return replace(opened, acp_session_id=previous_session_id, opened_with="session/load")
            finally:
                self._replaying = False
        try:
            created = await self._during_start("session/new", self._conn.new_session(cwd=cwd, mcp_servers=[]))
        except RequestError as exc:
            raise self._refused(exc, opened) from None
        self._session_id = created.session_id
        return replace(opened, acp_session_id=created.session_id, opened_with="session/new")

    def _refused(self, exc: RequestError, opened: OpenedSession) -> AgentStartFailed:
        refused = health.session_refused(error_json(exc), opened.auth_methods, stderr=self.process.stderr_tail.lines())
        return AgentStartFailed(refused, handshake=opened)

    async def prompt(self, blocks: list[dict[str, Any]]) -> TurnOutcome:
        assert self._conn is not None and self._session_id is not None, "prompt before the session was opened"
        try:
            response = await self._conn.prompt(session_id=self._session_id, prompt=blocks)
        except RequestError as exc:
            message = f"the agent failed the prompt: {exc} ({exc.code})"
            raise TurnFailed("agent_error", message, error=error_json(exc)) from None
        except ConnectionError:
            code = await self._exit_code()
            raise TurnFailed("agent_exited", f"the agent exited during the turn (exit code {code})") from None
        usage = _dump(response.usage) if response.usage is not None else None
        return TurnOutcome(stop_reason=response.stop_reason, usage=usage)

    async def cancel(self) -> bool:
        if self._conn is None or self._session_id is None:
            return False
        try:
            await self._conn.cancel(session_id=self._session_id)
        except ConnectionError:
            return False
        return True

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        await self.process.stop()

