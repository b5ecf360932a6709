"""Asking for a session's state to change: `stop`, `start` and `restart`, as a user does.

One definition, used by `agent-sessions stop|start|restart` and by the gateway's
`POST …/sessions/{name}/stop|start|restart`, so that both ask the very same thing of the
operator. Each is one merge patch of the AgentSession made with the *user's* credentials (never
the operator's: `spec` belongs to the user, DESIGN STYLE 6): `spec.state`, or an annotation the
operator answers in status (`restartRequest`, `wakeRequest`). The decision of which patch is pure
(`plan_state_change`); `request_state_change` sends it.

Why `start` is not always `spec.state: Running`: a session the operator stopped for idleness or
its maximum duration has `spec.state` Running already, so setting it changes nothing; only a wake
(the wake annotation) resumes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, Literal

from kubernetes_asyncio import client

from agent_sessions.api import constants as c
from agent_sessions.k8s.status import MERGE_PATCH

Action = Literal["stop", "start", "restart"]
ACTIONS: Final[tuple[Action, ...]] = ("stop", "start", "restart")


def now() -> str:
    """The time as the restart and wake annotations carry it (a new value is a new request)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stopped_for_idleness(status: Mapping[str, Any]) -> bool:
    """Stopped by the operator for idleness or duration, not by `spec.state`: a wake resumes it."""
    return status.get("phase") == c.PHASE_STOPPED and status.get("stoppedReason") in (
        c.STOPPED_IDLE_TIMEOUT, c.STOPPED_MAX_DURATION,
    )


@dataclass(frozen=True)
class StateChange:
    """What one action asks of one session."""

    action: Action
    patch: dict[str, Any]
    """The merge patch of the AgentSession."""
    said: str
    """What was asked, for people: `spec.state set to Stopped`, `restart requested`, …"""
    phase: str
    """The phase the session goes to once the operator acted on it."""
    request: tuple[str, str] | None = None
    """(status field, value) the operator sets when it took the request (`restartRequest`,
    `wakeRequest`); None for a change of `spec.state`."""


def _state(obj: Mapping[str, Any]) -> Any:
    return (obj.get("spec") or {}).get("state")


def plan_state_change(action: Action, before: Mapping[str, Any], request_time: str) -> StateChange:
    """The patch `action` needs on the session `before` (as last read); `request_time` (`now()`)
    is the value of a restart or wake annotation."""
    if action == "restart":
        # Recorded on a Stopped session, not acted on until it runs again.
        stopped = _state(before) == c.STATE_STOPPED
        return StateChange(action, {"metadata": {"annotations": {c.ANNOTATION_RESTART: request_time}}},
                           "restart requested", c.PHASE_STOPPED if stopped else c.PHASE_RUNNING,
                           ("restartRequest", request_time))
    status = before.get("status") or {}
    if action == "start" and _state(before) != c.STATE_STOPPED and stopped_for_idleness(status):
        return StateChange(action, {"metadata": {"annotations": {c.ANNOTATION_WAKE: request_time}}},
                           f"wake requested (stopped for {status.get('stoppedReason')})", c.PHASE_RUNNING,
                           ("wakeRequest", request_time))
    if action not in ACTIONS:
        raise ValueError(f"unknown state action {action!r}")
    state = c.STATE_STOPPED if action == "stop" else c.STATE_RUNNING
    return StateChange(action, {"spec": {"state": state}}, f"spec.state set to {state}",
                       c.PHASE_STOPPED if action == "stop" else c.PHASE_RUNNING)


async def request_state_change(api: client.ApiClient, namespace: str, name: str, action: Action,
                               before: Mapping[str, Any], *, request_timeout: Any = None
                               ) -> tuple[dict[str, Any], StateChange]:
    """Patch the session as `plan_state_change` says, with `api`'s credentials (the user's); the
    session as patched and the change. Failures are the client's `ApiException`s."""
    change = plan_state_change(action, before, now())
    obj = await client.CustomObjectsApi(api).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL, name, change.patch,
        _content_type=MERGE_PATCH, _request_timeout=request_timeout,
    )
    if action == "restart":  # what the session leads to is what it says now
        change = dataclasses.replace(change, phase=c.PHASE_STOPPED if _state(obj) == c.STATE_STOPPED
                                     else c.PHASE_RUNNING)
    return obj, change
