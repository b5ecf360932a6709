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
        "labels": dict(meta.get("labels") or {}),
    }


CONDITION_FIELDS = ("type", "status", "reason", "message", "lastTransitionTime")
HEALTH_FIELDS = ("state", "lastProbeTime", "consecutiveFailures", "message")
SESSION_INFO_FIELDS = ("title", "updatedAt", "meta")
"""As `status.sessionInfo` holds them: the agent's `_meta` is `meta` there (and in the summary)."""
ENDPOINT_SHOWN = "(the session's endpoint)"


def detail(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a session page shows beyond the summary (`GET …/sessions/{name}`, and the answers of
    stop/start/restart): the state asked for, conditions, health, log tail, session info,
    capabilities. Built from named fields only (nothing else of the status is copied), and the
    runtime endpoint is never shown: should a message quote it (a health probe's error), it
    reads `(the session's endpoint)`. Nothing here comes from a Secret: the status the operator
    writes holds none (it redacts secret values from what agents and pods say)."""
    spec, status = obj.get("spec") or {}, status_of(obj)
    hide = _endpoint_hider(endpoint_of(obj))
    conditions = [{key: hide(condition.get(key)) for key in CONDITION_FIELDS}
                  for condition in status.get("conditions") or () if isinstance(condition, Mapping)]
    health = status.get("health")
    info = status.get("sessionInfo")
    capabilities = status.get("capabilities")
    return {
        "state": spec.get("state") or c.STATE_RUNNING,
        "conditions": conditions,
        "health": {key: hide(health.get(key)) for key in HEALTH_FIELDS if key in health}
        if isinstance(health, Mapping) else None,
        "logTail": hide((status.get("logs") or {}).get("tail")),
        "sessionInfo": {key: info[key] for key in SESSION_INFO_FIELDS if key in info}
        if isinstance(info, Mapping) else None,
        "capabilities": dict(capabilities) if isinstance(capabilities, Mapping) else None,
        "startTime": status.get("startTime"),
        "restartCount": status.get("restartCount"),
        "stoppedReason": status.get("stoppedReason"),
    }


def _endpoint_hider(endpoint: str | None) -> Any:
    """A function that replaces `endpoint` (and its `host:port`) in a text by `ENDPOINT_SHOWN`."""
    if not endpoint:
        return lambda value: value
    authority = endpoint.split("://", 1)[-1].split("/", 1)[0]
    needles = [needle for needle in dict.fromkeys((endpoint.rstrip("/"), authority)) if needle]

    def hide(value: Any) -> Any:
        if isinstance(value, str):
            for needle in needles:
                value = value.replace(needle, ENDPOINT_SHOWN)
        return value

    return hide
