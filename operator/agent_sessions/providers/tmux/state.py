"""What the provider reads from tmux and from the bridge: plain values for the pure `observe`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TmuxSessionState:
    """One tmux session as `list-sessions`/`display-message` report it (its first pane)."""

    name: str
    """The tmux session's name (`ags-<namespace>-<name>-<uid8>`)."""
    uid: str = ""
    """`@ags-uid`: the AgentSession it runs (empty: not made by this provider)."""
    namespace: str = ""
    session: str = ""
    """`@ags-name`: the AgentSession's name."""
    port: int | None = None
    """`@ags-port`: where the bridge listens on 127.0.0.1."""
    workspace: str = ""
    config_hash: str = ""
    dead: bool = False
    """The pane's process ended (`remain-on-exit` keeps the pane so its status can be read)."""
    exit_status: int | None = None
    exit_signal: int | None = None
    pid: int | None = None
    pane: str = ""
    """The id (`%N`) of the pane that runs the bridge (empty when it was closed)."""
    created: int | None = None
    """Unix time the tmux session was created."""

    @property
    def ours(self) -> bool:
        """Made by this provider (it carries the provider's marker)."""
        return bool(self.uid)


@dataclass(frozen=True)
class RuntimeProbe:
    """What the bridge's `/healthz` answered (`status` 200 healthy, 503 not yet or not any more)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
