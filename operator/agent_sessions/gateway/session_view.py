"""What clients see of an AgentSession, from the object the API server returned (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.wire.session_ref import SessionRef


def status_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def phase_of(obj: Mapping[str, Any]) -> str | None:
    return status_of(obj).get("phase")


def endpoint_of(obj: Mapping[str, Any]) -> str | None:
    """The runtime URL (`status.provider.endpoint`), or None."""
    return (status_of(obj).get("provider") or {}).get("endpoint") or None


def is_serving(obj: Mapping[str, Any]) -> bool:
    """Running with a runtime endpoint: messages can be delivered now."""
    return phase_of(obj) == c.PHASE_RUNNING and endpoint_of(obj) is not None


def ready_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `Ready` condition as `{"status", "reason", "message"}`, or None before the operator set it."""
    for condition in status_of(obj).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == c.COND_READY:
            return {"status": condition.get("status"), "reason": condition.get("reason"),
                    "message": condition.get("message")}
    return None


def provider_of(obj: Mapping[str, Any]) -> str | None:
    """The provider running the session (`status.provider.type`), else the one its spec names."""
    placed = status_of(obj).get("provider") or {}
    return placed.get("type") or (obj.get("spec") or {}).get("provider") or None


def summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The session as the list and detail endpoints (and the status stream) describe it. The
    endpoint URL is an address inside the cluster: only whether there is one is shown."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, status_of(obj)
    health = status.get("health") or {}
    return {
        "session": SessionRef.of(obj).to_json(),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "phase": status.get("phase"),
        "ready": ready_of(obj),
        "provider": provider_of(obj),
        "title": status.get("title") or spec.get("title"),
        "health": health.get("state"),
        "hasEndpoint": endpoint_of(obj) is not None,
        "stoppedReason": status.get("stoppedReason"),
        "sessionInfo": status.get("sessionInfo"),
        "lastActivityTime": status.get("lastActivityTime"),
        "messageCount": status.get("messageCount"),
        "creationTimestamp": meta.get("creationTimestamp"),
    }
