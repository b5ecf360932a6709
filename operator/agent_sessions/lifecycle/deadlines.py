"""When a session must change on its own: start timeout, idle timeout, maximum duration.

Deadlines are computed from status timestamps and the resolved settings, never from a timer's
memory, so they survive operator restarts and a reconcile can always tell how long to wait
(`Decision.requeue_after`) without any state of its own.

All three count from `status.startTime`, which every start resets (first start, resume,
restart, re-creation): a resumed session gets a fresh idle and maximum-duration budget.

No setting can make them raise: a deadline that a `datetime` cannot hold (an absurd duration
that got past validation) is no deadline at all, rather than an `OverflowError` on every pass.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from agent_sessions.api import constants as c
from agent_sessions.api.session import AgentSessionStatus

from .inputs import LifecycleSettings
from .timestamps import parse_timestamp


def start_deadline(status: AgentSessionStatus, settings: LifecycleSettings | None) -> datetime | None:
    """The session fails if it is not Running after this moment (exclusive)."""
    start = parse_timestamp(status.start_time)
    if start is None or settings is None or settings.start_timeout is None:
        return None
    return _after(start, settings.start_timeout)


def idle_deadline(status: AgentSessionStatus, settings: LifecycleSettings | None) -> datetime | None:
    """The session stops for idleness at this moment: idle timeout after the last activity.

    Activity counts from the latest of `lastActivityTime`, `startTime` and the moment it became
    Ready, so a session resumed after an idle stop is not idle again at once — not even when its
    start took longer than the idle timeout (the message that woke it is sent once it is Ready).
    """
    if settings is None or settings.idle_timeout is None:
        return None
    ready_since = next((condition.last_transition_time for condition in status.conditions or ()
                        if condition.type == c.COND_READY and condition.status == "True"), None)
    moments = [m for m in (parse_timestamp(status.start_time), parse_timestamp(status.last_activity_time),
                           parse_timestamp(ready_since)) if m]
    if not moments:
        return None
    return _after(max(moments), settings.idle_timeout)


def max_duration_deadline(status: AgentSessionStatus, settings: LifecycleSettings | None) -> datetime | None:
    """The session stops at this moment, whatever its activity."""
    start = parse_timestamp(status.start_time)
    if start is None or settings is None or settings.max_duration is None:
        return None
    return _after(start, settings.max_duration)


def _after(moment: datetime, seconds: float) -> datetime | None:
    """`moment` plus `seconds`; None when no datetime is that far (or `seconds` is not finite)."""
    try:
        return moment + timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        return None


def seconds_until(deadline: datetime, now: datetime) -> float:
    """Seconds from `now` to `deadline`, never negative."""
    return max((deadline - now).total_seconds(), 0.0)
