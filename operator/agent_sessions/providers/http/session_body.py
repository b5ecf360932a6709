"""The body of `PUT /v1/sessions/{id}`: what a platform needs to run a session. Pure.

The platform gets the resolved configuration blocks it can act on — `agent`, `workspace`,
`lifecycle` — plus who the session is (`session`: namespace, name, uid, generation), the hash of
the configuration (`configHash`, so a platform can tell which config a session started with),
`meta` (the session's initial `_meta`, when the configuration carries one) and `labels`. The
`http` block stays here: it is how the operator reaches the platform, and naming the Secret
would tell the platform nothing it may use. The body is deterministic for a given session and
configuration, so repeated PUTs are byte-for-byte equal.

The agent's environment goes as literal values: references to Secrets and ConfigMaps
(`env[].valueFrom`, `envFrom`) are read by the provider first (`resolve_env`), because the
platform cannot read this cluster's objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_sessions.api import constants as c

from ..base import SessionRef
from .constants import LABEL_NAMESPACE

PLATFORM_BLOCKS = ("agent", "workspace", "lifecycle")
"""Configuration blocks sent to the platform."""


def session_body(session: SessionRef, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The PUT body for `session` (camelCase, JSON-ready). `env`, when given, is the agent's
    environment with its references read: it replaces `agent.env` and `agent.envFrom`."""
    config = session.config
    body: dict[str, Any] = {
        "session": {
            "namespace": session.namespace,
            "name": session.name,
            "uid": session.uid,
            **({"generation": session.generation} if session.generation is not None else {}),
        },
    }
    if session.config_hash:
        body["configHash"] = session.config_hash
    for block in PLATFORM_BLOCKS:
        value = config.get(block)
        if isinstance(value, Mapping) and value:
            body[block] = _plain(value)
    if env is not None:
        agent = {key: value for key, value in (body.get("agent") or {}).items() if key not in ("env", "envFrom")}
        body["agent"] = {**agent, "env": [{"name": name, "value": value} for name, value in env.items()]}
    meta = config.get("meta")
    body["meta"] = _plain(meta) if isinstance(meta, Mapping) else {}
    body["labels"] = {
        c.LABEL_SESSION: session.name,
        c.LABEL_SESSION_UID: session.uid,
        LABEL_NAMESPACE: session.namespace,
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
    }
    return body


def _plain(value: Any) -> Any:
    """A JSON-ready copy, without None values (an explicit null means "unset" in the config)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
