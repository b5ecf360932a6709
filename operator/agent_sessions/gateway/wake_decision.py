"""Whether a message can be delivered to a session now, must wake it, or must be refused (pure).

Wake-on-message (§4): a session the operator stopped for idleness (`status.stoppedReason`
`IdleTimeout` or `MaxDuration`; `spec.state` still says Running) resumes when a message arrives,
if its resolved `lifecycle.wakeOnMessage` is true (the default). The gateway asks for it with a
signed wake request Event (`wire.wake_request`: the gateway may not write AgentSessions), and the
operator, on a request newer than the one it recorded in `status.wakeRequest`, starts the session
again. A session stopped by its user is never woken. (The `agentsession.dev/wake` annotation,
which whoever may patch the session can set, still works: `agent-sessions start` uses it.)

A wake asked for a moment ago is joined, not asked for again: by this gateway process (`asked_at`)
or through the annotation, and the operator has not recorded acting on it yet; or the session is
already on its way back up (Pending/Creating) after a recent wake. Two gateway replicas may both
ask: the operator acts on the first and finds the second already done.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.config import ConfigInvalid, resolve_config
from agent_sessions.wire.wake_request import parse_wake_timestamp

from .session_view import endpoint_of, phase_of, status_of

WAKEABLE_REASONS = frozenset({c.STOPPED_IDLE_TIMEOUT, c.STOPPED_MAX_DURATION})
_STARTING = frozenset({c.PHASE_PENDING, c.PHASE_CREATING})


class Route(enum.Enum):
    DELIVER = "deliver"
    """Running with an endpoint: send now."""
    WAKE = "wake"
    """Stopped for idleness, wakeable: ask the operator to wake it (a signed Event), then wait."""
    AWAIT_WAKE = "await_wake"
    """A recent wake is under way: wait for it, without asking again."""
    NOT_RUNNING = "not_running"
    """409 `session_not_running`."""


def wake_annotation(obj: Mapping[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(c.ANNOTATION_WAKE)


def wake_pending(obj: Mapping[str, Any], now: float, window: float, asked_at: float | None = None) -> bool:
    """A wake was asked for less than `window` seconds ago (by this gateway at `asked_at`, or with
    the annotation) and the operator has not acted on it."""
    acted = parse_wake_timestamp(status_of(obj).get("wakeRequest"))
    if asked_at is not None and now - asked_at <= window and (acted is None or acted < asked_at):
        return True
    value = wake_annotation(obj)
    asked = parse_wake_timestamp(value)
    if asked is None or now - asked > window:
        return False
    return status_of(obj).get("wakeRequest") != value


def wake_recent(obj: Mapping[str, Any], now: float, window: float, asked_at: float | None = None) -> bool:
    """A wake was asked for, or acted on, less than `window` seconds ago."""
    moments = (asked_at, parse_wake_timestamp(wake_annotation(obj)),
               parse_wake_timestamp(status_of(obj).get("wakeRequest")))
    return any(moment is not None and now - moment <= window for moment in moments)


def route(obj: Mapping[str, Any], *, wake_on_message: bool, now: float, window: float,
          asked_at: float | None = None) -> Route:
    """What to do with a message for `obj` (see the module docstring). `now` in epoch seconds;
    `asked_at`: when this gateway last asked for this session to be woken, if it did."""
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return Route.NOT_RUNNING
    phase = phase_of(obj)
    if phase == c.PHASE_RUNNING and endpoint_of(obj) is not None:
        return Route.DELIVER
    spec_state = (obj.get("spec") or {}).get("state") or c.STATE_RUNNING
    if spec_state != c.STATE_RUNNING or not wake_on_message:
        return Route.NOT_RUNNING
    reason = status_of(obj).get("stoppedReason")
    if phase in (c.PHASE_STOPPED, c.PHASE_STOPPING) and reason in WAKEABLE_REASONS:
        return Route.AWAIT_WAKE if wake_pending(obj, now, window, asked_at) else Route.WAKE
    if (phase in _STARTING or (phase == c.PHASE_RUNNING)) and wake_recent(obj, now, window, asked_at):
        # On its way back up after a recent wake (or Running without its endpoint yet).
        return Route.AWAIT_WAKE
    return Route.NOT_RUNNING


def wake_on_message(obj: Mapping[str, Any], templates: Mapping[str, dict[str, Any]] | None = None,
                    operator_defaults: Mapping[str, Any] | None = None) -> bool:
    """The session's resolved `lifecycle.wakeOnMessage`: the session's own value if set, else its
    template chain's and the operator defaults' (when given), else the built-in default (true)."""
    own = ((obj.get("spec") or {}).get("lifecycle") or {}).get("wakeOnMessage")
    if isinstance(own, bool):
        return own
    try:
        resolved = resolve_config(obj, templates or {}, operator_defaults or None)
    except ConfigInvalid:
        return True  # an invalid session does not run anyway; the operator reports why
    value = (resolved.config.get("lifecycle") or {}).get("wakeOnMessage")
    return value if isinstance(value, bool) else True


def needs_templates(obj: Mapping[str, Any]) -> bool:
    """Whether resolving `wakeOnMessage` needs the namespace's templates."""
    spec = obj.get("spec") or {}
    own = (spec.get("lifecycle") or {}).get("wakeOnMessage")
    return not isinstance(own, bool) and bool((spec.get("templateRef") or {}).get("name"))
