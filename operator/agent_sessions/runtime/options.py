"""What one runtime bridge is told at start: the session it serves, the agent it runs, where."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent_sessions.api import constants as c
from agent_sessions.wire.session_ref import ENV_SESSION_NAME, ENV_SESSION_NAMESPACE, ENV_SESSION_UID, SessionRef


AgentProtocol = Literal["acp", "stdio-lines"]
PROTOCOLS: tuple[str, ...] = (c.PROTOCOL_ACP, c.PROTOCOL_STDIO_LINES)
PermissionPolicy = Literal["allow", "reject"]


@dataclass(frozen=True)
class SessionIdentity(SessionRef):
    """The AgentSession this bridge serves; carried on every reply and every streamed frame. The
    wire's identity, except that a bridge started by hand may not know it (null on the wire)."""

    namespace: str | None = None  # type: ignore[assignment]
    name: str | None = None  # type: ignore[assignment]

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        namespace: str | None = None,
        name: str | None = None,
        uid: str | None = None,
    ) -> SessionIdentity:
        """Flags win over the pod's environment; what neither gives stays None (null on the wire)."""
        return cls(
            namespace=namespace or env.get(ENV_SESSION_NAMESPACE) or None,
            name=name or env.get(ENV_SESSION_NAME) or None,
            uid=uid or env.get(ENV_SESSION_UID) or None,
        )


@dataclass(frozen=True)
class RuntimeOptions:
    """Everything `agent-sessions runtime` was given."""

    command: tuple[str, ...]
    """The agent's command line (what follows `--`)."""
    workspace: Path = field(default_factory=Path.cwd)
    """The agent's working directory; the bridge keeps its state in `<workspace>/.agent-session/`."""
    host: str = "0.0.0.0"
    port: int = 8080
    protocol: AgentProtocol = "acp"
    session: SessionIdentity = field(default_factory=SessionIdentity)
    quiet_ms: int = 500
    """stdio-lines: a reply ends when the agent has written nothing for this long."""
    first_output_timeout: float = 30.0
    """stdio-lines: how long to wait for the first line of a reply before ending it empty."""
    start_timeout: float = 60.0
    """acp: how long `initialize` and opening the session may take before the agent is unhealthy."""
    cancel_grace: float = 10.0
    """How long the agent has to end a turn after cancel before the runtime ends it
    (`cancel_timeout`), so that cancel always frees the session."""
    permissions: PermissionPolicy = "allow"
    """acp: how the headless bridge answers the agent's `session/request_permission`."""
    env: Mapping[str, str] | None = None
    """The agent's environment; None inherits the bridge's own (the pod's env and secrets)."""
    token: str | None = field(default=None, repr=False)
    """The bearer token every endpoint but `/healthz` requires (`--token-file`); None: open."""

    def agent_env(self) -> dict[str, str]:
        return dict(os.environ if self.env is None else self.env)
