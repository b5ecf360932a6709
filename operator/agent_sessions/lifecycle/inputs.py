"""The session as the lifecycle sees it: a flat, frozen digest of the object and its config.

The reconciler builds a `SessionInput` from the AgentSession (metadata, spec, annotations) and
the resolved configuration. Keeping the lifecycle's input this small makes `decide()` easy to
test with tables, and keeps it independent of how configuration is resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from agent_sessions.api import constants as c
from agent_sessions.config import BUILTIN_DEFAULTS, ResolvedConfig, parse_duration

_DEFAULTS: Final = BUILTIN_DEFAULTS["lifecycle"]
"""The built-in lifecycle defaults (`config.defaults`, their only home), for settings built by hand."""


@dataclass(frozen=True, kw_only=True)
class LifecycleSettings:
    """The parts of the resolved configuration the lifecycle needs. Durations in seconds.

    Built from a resolved configuration by `from_resolved`, which always holds every defaulted
    field; the field defaults here are the same built-in defaults, for tests and tools.
    """

    provider: str
    """`pod`, `http` or `tmux`."""
    restart_policy: str = _DEFAULTS["restartPolicy"]
    backoff_limit: int = _DEFAULTS["backoffLimit"]
    """Crash restarts allowed before the session is Failed."""
    start_timeout: float | None = parse_duration(_DEFAULTS["startTimeout"])
    idle_timeout: float | None = None
    max_duration: float | None = None
    wake_on_message: bool = _DEFAULTS["wakeOnMessage"]
    config_hash: str = ""
    """Hash of the resolved configuration; compared with `status.resolved.hash` (UpToDate)."""
    template_chain: tuple[tuple[str, int | None], ...] = ()
    """`(name, generation)` of each template applied, root first."""

    @classmethod
    def from_resolved(cls, resolved: ResolvedConfig) -> LifecycleSettings:
        """The settings of a valid resolved configuration. Built-in defaults are already applied
        to it (and cannot be removed by a `null`), so a defaulted field is read, never assumed."""
        lifecycle = resolved.config["lifecycle"]
        return cls(
            provider=resolved.config["provider"],
            restart_policy=lifecycle["restartPolicy"],
            backoff_limit=lifecycle["backoffLimit"],
            start_timeout=_seconds(lifecycle["startTimeout"]),
            idle_timeout=_seconds(lifecycle.get("idleTimeout")),  # no default: never stopped for idleness
            max_duration=_seconds(lifecycle.get("maxDuration")),  # no default: no maximum
            wake_on_message=lifecycle["wakeOnMessage"],
            config_hash=resolved.hash,
            template_chain=tuple(resolved.template_chain),
        )


@dataclass(frozen=True, kw_only=True)
class SessionInput:
    """One AgentSession, digested."""

    name: str
    namespace: str
    uid: str
    generation: int
    """`metadata.generation`: bumped by the API server on every spec change."""
    settings: LifecycleSettings | None
    """The resolved configuration; None when it is invalid (see `config_problems`)."""
    config_problems: tuple[str, ...] = ()
    """Precise messages explaining why the configuration is invalid."""
    deleting: bool = False
    """`metadata.deletionTimestamp` is set."""
    deletion_time: datetime | None = None
    """`metadata.deletionTimestamp`, when set and readable."""
    desired_state: str = c.STATE_RUNNING
    """`spec.state` (`Running` when unset)."""
    title: str | None = None
    """`spec.title`."""
    prompt: str | None = None
    """`spec.prompt`."""
    restart_request: str | None = None
    """Value of the `agentsession.dev/restart` annotation."""
    wake_requested: bool = False
    """A message arrived for a session stopped by its idle timeout."""
    abandon: bool = False
    """The `agentsession.dev/abandon` annotation is `"true"`: when deleting, leave the backing
    and remove the finalizer."""

    def deleting_for(self, now: datetime) -> float | None:
        """Seconds since the deletion was requested (None when not deleting, or unknown)."""
        if not self.deleting or self.deletion_time is None:
            return None
        return max(0.0, (now - self.deletion_time).total_seconds())


def _seconds(value: Any) -> float | None:
    return parse_duration(value) if isinstance(value, str) else None
