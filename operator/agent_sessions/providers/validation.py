"""Checks every provider makes of a resolved configuration the same way (each provider adds its own).

Pure: the reconciler calls a provider's `validate` on every pass. Each problem names the wire path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.wire.credentials import ENV_TOKEN_FILE
from agent_sessions.wire.session_ref import SESSION_ENV


def block(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A config block, `{}` when absent (or not a mapping: the schema check reported that)."""
    value = config.get(name)
    return value if isinstance(value, Mapping) else {}


def protocol_problems(agent: Mapping[str, Any]) -> list[str]:
    """`spec.agent.protocol` names a protocol the runtime bridge speaks."""
    protocol = agent.get("protocol")
    if protocol is not None and protocol not in (c.PROTOCOL_ACP, c.PROTOCOL_STDIO_LINES):
        return [f"spec.agent.protocol: unknown protocol {protocol!r} (acp or stdio-lines)"]
    return []


def reserved_env_problem(name: Any) -> str | None:
    """The problem with a session setting `name`, if the provider sets it (to identify the session,
    or to hand the runtime bridge its token)."""
    if name in SESSION_ENV:
        return f"spec.agent.env[{name}]: reserved: the operator sets it to identify the session"
    if name == ENV_TOKEN_FILE:
        return f"spec.agent.env[{name}]: reserved: the operator sets it to hand the session's runtime its token"
    return None
