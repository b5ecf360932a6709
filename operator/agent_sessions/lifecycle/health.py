"""Folding a provider's health probe into `status.health`.

Health is written on change only (§8). A probe that says what the last one said changes
nothing — not even `lastProbeTime` — so a converged session, healthy or not, costs no status
write. `lastProbeTime` therefore reads as "when the health last changed", which is also the
moment worth knowing.
"""

from __future__ import annotations

from datetime import datetime

from agent_sessions.api import constants as c
from agent_sessions.api.session import HealthStatus

from .observation import HealthProbe
from .timestamps import format_timestamp

MAX_HEALTH_MESSAGE_LENGTH = 4096


def next_health(previous: HealthStatus | None, probe: HealthProbe | None, now: datetime) -> HealthStatus | None:
    """`status.health` after `probe`; `previous` itself when the probe tells nothing new.

    `consecutiveFailures` is the provider's own count when it gives one (`probe.failures`);
    otherwise it counts distinct Unhealthy results in a row (a repeated reconcile is not a new
    probe), and Healthy resets it.
    """
    if probe is None:
        return previous
    state = probe.state if probe.state in (c.HEALTH_HEALTHY, c.HEALTH_UNHEALTHY) else c.HEALTH_UNKNOWN
    message = probe.message[:MAX_HEALTH_MESSAGE_LENGTH] or None
    before_state = previous.state if previous else None
    before_failures = previous.consecutive_failures if previous else 0
    changed = previous is None or before_state != state or previous.message != message

    if state == c.HEALTH_HEALTHY:
        failures = 0
    elif probe.failures is not None:
        failures = max(probe.failures, 0)
    elif state == c.HEALTH_UNHEALTHY and changed:
        failures = before_failures + 1 if before_state == c.HEALTH_UNHEALTHY else 1
    else:
        failures = before_failures

    if not changed and failures == before_failures:
        return previous
    return HealthStatus(
        state=state,
        last_probe_time=format_timestamp(now) if changed else previous.last_probe_time,  # type: ignore[union-attr]
        consecutive_failures=failures,
        message=message,
    )


def resting_health(previous: HealthStatus | None) -> HealthStatus | None:
    """Health of a session that does not run: Unknown (nothing to probe), last probe time kept.

    Without it a stopped session would go on showing the `Healthy` of its last run.
    """
    if previous is None:
        return None
    if previous.state == c.HEALTH_UNKNOWN and not previous.message and not previous.consecutive_failures:
        return previous
    return HealthStatus(state=c.HEALTH_UNKNOWN, last_probe_time=previous.last_probe_time, consecutive_failures=0)
