"""What a session's runtime says about itself at `GET /v1/info` (§7).

The operator folds it into status (session info, activity, message count, and the bridge's view of
the agent's health — a crashed agent or a refused session is visible here even though the bridge
itself is up); the gateway relays it, re-tagged with the Kubernetes identity, and starts tailing a
session at its `lastSeq`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .session_ref import SessionRef


@dataclass(frozen=True)
class RuntimeInfo:
    """What `GET /v1/info` said."""

    session_info: dict[str, Any] = field(default_factory=dict)
    last_activity_time: str | None = None
    message_count: int | None = None
    last_seq: int | None = None
    health: dict[str, Any] = field(default_factory=dict)
    state: str = "idle"
    """`idle`, `busy` (a turn is running: the session is active right now), `starting`, `unhealthy`."""
    agent_start: dict[str, Any] = field(default_factory=dict)
    """`agentStart`: `state` `starting`/`started`/`failed`, and for a failed start `reason`,
    `message` and, after an exit, `exitCode` (empty from runtimes that do not report it)."""
    output_mark: str | None = None
    """Changes whenever the bridge writes to its log (`runtime.output`); None from runtimes that
    do not report it (their logs are read on every refresh)."""
    body: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The answer as the runtime gave it (identity, agent, capabilities, … included)."""

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> RuntimeInfo:
        info = body.get("sessionInfo") or {}
        last_seq = body.get("lastSeq")
        return cls(
            session_info={k: v for k, v in info.items() if v is not None},
            last_activity_time=body.get("lastActivityTime"),
            message_count=body.get("messageCount"),
            last_seq=last_seq if isinstance(last_seq, int) and not isinstance(last_seq, bool) else None,
            health=body.get("health") or {},
            state=body.get("state") or "idle",
            agent_start=dict(start) if isinstance(start := body.get("agentStart"), Mapping) else {},
            output_mark=mark if isinstance(mark := body.get("outputMark"), str) else None,
            body=dict(body),
        )

    def tagged(self, session: SessionRef) -> dict[str, Any]:
        """The answer with `session` replaced by the Kubernetes identity (what the gateway relays)."""
        return {**self.body, "session": session.to_json()}

    @property
    def healthy(self) -> bool:
        return self.health.get("status", "ok") == "ok"

    @property
    def start_failed(self) -> bool:
        """The agent will not open its session in this runtime (it does not retry a start)."""
        return self.agent_start.get("state") == "failed"

    def health_message(self) -> str:
        """Why the agent is unhealthy, in one line: what the runtime says, exit code, the agent's
        error, last stderr lines."""
        parts: list[str] = []
        if self.health.get("reason"):
            parts.append(str(self.health["reason"]))
        if self.health.get("message"):
            parts.append(str(self.health["message"]))
        if self.health.get("exitCode") is not None and not self.health.get("message"):  # the message has it
            parts.append(f"exit code {self.health['exitCode']}")
        error = self.health.get("error") or {}
        if error:
            parts.append(f"agent error {error.get('code')}: {error.get('message')}")
        methods = self.health.get("authMethods") or []
        if methods:
            names = ", ".join(str(m.get("name") or m.get("id")) for m in methods if isinstance(m, dict))
            parts.append(f"auth methods: {names}")
        stderr = self.health.get("stderr") or []
        if stderr:
            parts.append("stderr: " + " | ".join(str(line) for line in stderr[-5:]))
        return "; ".join(parts) or "the agent is unhealthy"
