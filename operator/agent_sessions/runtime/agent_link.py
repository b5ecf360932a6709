"""The bridge's view of an agent, whatever protocol it speaks (ACP, or plain stdio lines).

A link starts the agent, opens the conversation, runs one prompt at a time and reports every
`session/update` through an `emit` callback, in the order the agent sent them. The bridge does
the rest (seq, history, session info, HTTP), so both protocols produce the same frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .agent_process import AgentProcess
from .health import Health


class Emit(Protocol):
    def __call__(self, update: Mapping[str, Any], *, replayed: bool = False) -> None:
        """One session update from the agent; `replayed` while the agent replays a loaded session."""


@dataclass(frozen=True)
class OpenedSession:
    acp_session_id: str | None
    opened_with: str | None
    """`session/new`, `session/load`, or None for agents without sessions (stdio-lines)."""
    agent_info: Mapping[str, Any] | None = None
    agent_capabilities: Mapping[str, Any] = field(default_factory=dict)
    auth_methods: tuple[Mapping[str, Any], ...] = ()

    @property
    def can_load(self) -> bool:
        return bool(self.agent_capabilities.get("loadSession"))


@dataclass(frozen=True)
class TurnOutcome:
    stop_reason: str
    usage: Mapping[str, Any] | None = None


class AgentStartFailed(Exception):
    """The agent could not be started or would not open a session; `health` says why, and
    `handshake` is what `initialize` told about the agent, when it got that far."""

    def __init__(self, health: Health, handshake: OpenedSession | None = None) -> None:
        super().__init__(health.message or health.reason)
        self.health = health
        self.handshake = handshake


class TurnFailed(Exception):
    """A prompt that ended without a stop reason (agent error or exit)."""

    def __init__(self, code: str, message: str, *, error: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error = error


class AgentLink(Protocol):
    protocol: str
    process: AgentProcess

    async def open(self, previous_session_id: str | None) -> OpenedSession:
        """Start the agent and open (or load) its session; raises AgentStartFailed."""

    async def prompt(self, blocks: list[dict[str, Any]]) -> TurnOutcome:
        """Run one turn; updates go to `emit` while it runs; raises TurnFailed."""

    async def cancel(self) -> bool:
        """Ask the agent to stop the current turn; False when there was nobody to ask."""

    async def close(self) -> None:
        """Stop the agent (idempotent)."""
