"""Whether a message can be delivered to a session now, must wake it, or must be refused (pure).

Wake-on-message (§4): a session the operator stopped for idleness (`status.stoppedReason`
`IdleTimeout` or `MaxDuration`; `spec.state` still says Running) resumes when a message arrives,
if its resolved `lifecycle.wakeOnMessage` is true (the default). The gateway asks for it by
setting the `agentsession.dev/wake` annotation to a fresh RFC 3339 timestamp — metadata, not
spec, so GitOps sees no drift — and the operator, on seeing a value it has not acted on
(`status.wakeRequest`), starts the session again. A session stopped by its user is never woken.

A wake another request (maybe on another replica) asked for a moment ago is joined, not asked for
again: the annotation is recent and the operator has not recorded acting on it yet, or the session
is already on its way back up (Pending/Creating).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.config import ConfigInvalid, resolve_config

from .session_view import endpoint_of, phase_of, status_of

WAKEABLE_REASONS = frozenset({c.STOPPED_IDLE_TIMEOUT, c.STOPPED_MAX_DURATION})
_STARTING = frozenset({c.PHASE_PENDING, c.PHASE_CREATING})
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


class Route(enum.Enum):
    DELIVER = "deliver"
    """Running with an endpoint: send now."""
    WAKE = "wake"
    """Stopped for idleness, wakeable: set the wake annotation, then wait."""
    AWAIT_WAKE = "await_wake"
    """A recent wake is under way: wait for it, without asking again."""
    NOT_RUNNING = "not_running"
    """409 `session_not_running`."""


def wake_timestamp(ns_since_epoch: int) -> str:
    """RFC 3339 in UTC with nanoseconds, e.g. `2025-01-02T03:04:05.123456789Z` (unique enough that
    two wakes never carry the same value)."""
    seconds, nanos = divmod(ns_since_epoch, 1_000_000_000)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{nanos:09d}Z"


def parse_wake_timestamp(text: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 value (any fraction up to nanoseconds), else None."""
    if not isinstance(text, str):
        return None
    match = _RFC3339.match(text.strip())
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(f"{whole}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return None
    return moment.timestamp() + (int(fraction.ljust(9, "0")) / 1e9 if fraction else 0.0)


def wake_annotation(obj: Mapping[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(c.ANNOTATION_WAKE)


def wake_pending(obj: Mapping[str, Any], now: float, window: float) -> bool:
    """A wake was asked for less than `window` seconds ago and the operator has not acted on it."""
    value = wake_annotation(obj)
    asked = parse_wake_timestamp(value)
    if asked is None or now - asked > window:
        return False
    return status_of(obj).get("wakeRequest") != value


def wake_recent(obj: Mapping[str, Any], now: float, window: float) -> bool:
    """A wake was asked for less than `window` seconds ago (acted on or not)."""
    asked = parse_wake_timestamp(wake_annotation(obj))
    return asked is not None and now - asked <= window


def route(obj: Mapping[str, Any], *, wake_on_message: bool, now: float, window: float) -> Route:
    """What to do with a message for `obj` (see the module docstring). `now` in epoch seconds."""
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
        return Route.AWAIT_WAKE if wake_pending(obj, now, window) else Route.WAKE
    if (phase in _STARTING or (phase == c.PHASE_RUNNING)) and wake_recent(obj, now, window):
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
