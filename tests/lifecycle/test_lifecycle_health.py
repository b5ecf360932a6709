"""Health folding, deadlines and timestamps: the small pure pieces `decide()` is built from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from agent_sessions.api.session import AgentSessionStatus, Condition, HealthStatus
from agent_sessions.lifecycle import (
    HealthProbe,
    LifecycleSettings,
    format_timestamp,
    idle_deadline,
    max_duration_deadline,
    next_health,
    parse_timestamp,
    resting_health,
    start_deadline,
)
from agent_sessions.lifecycle.timestamps import require_aware

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=30)
STAMP0 = "2025-03-01T09:00:00Z"
STAMP1 = "2025-03-01T09:00:30Z"


def health(state: str, failures: int = 0, message: str | None = None, at: str = STAMP0) -> HealthStatus:
    return HealthStatus(state=state, last_probe_time=at, consecutive_failures=failures, message=message)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("previous", "probe", "expected"),
    [
        pytest.param(None, None, None, id="no-probe-no-health"),
        pytest.param(health("Healthy"), None, health("Healthy"), id="no-probe-keeps-previous"),
        pytest.param(None, HealthProbe("Healthy"), health("Healthy", at=STAMP1), id="first-probe-stamps-now"),
        pytest.param(health("Healthy"), HealthProbe("Healthy"), health("Healthy"), id="same-result-changes-nothing"),
        pytest.param(health("Healthy"), HealthProbe("Unhealthy", "503"), health("Unhealthy", 1, "503", STAMP1),
                     id="first-failure-counts-one"),
        pytest.param(health("Unhealthy", 1, "503"), HealthProbe("Unhealthy", "503"), health("Unhealthy", 1, "503"),
                     id="repeated-identical-failure-is-not-a-new-probe"),
        pytest.param(health("Unhealthy", 1, "503"), HealthProbe("Unhealthy", "timeout"),
                     health("Unhealthy", 2, "timeout", STAMP1), id="a-different-failure-counts-again"),
        pytest.param(health("Unhealthy", 2, "503"), HealthProbe("Unhealthy", "503", failures=5),
                     health("Unhealthy", 5, "503"), id="provider-count-wins-without-moving-probe-time"),
        pytest.param(health("Unhealthy", 3, "503"), HealthProbe("Healthy"), health("Healthy", 0, None, STAMP1),
                     id="healthy-resets-the-count"),
        pytest.param(health("Healthy"), HealthProbe("Bogus"), health("Unknown", 0, None, STAMP1),
                     id="unrecognised-state-is-unknown"),
    ],
)
def test_next_health(previous, probe, expected):
    assert next_health(previous, probe, T1) == expected


def test_health_messages_are_bounded():
    result = next_health(None, HealthProbe("Unhealthy", "x" * 5000), T0)
    assert result is not None and len(result.message or "") == 4096


@pytest.mark.parametrize(
    ("previous", "expected"),
    [
        pytest.param(None, None, id="nothing-to-rest"),
        pytest.param(health("Healthy"), HealthStatus(state="Unknown", last_probe_time=STAMP0), id="healthy-becomes-unknown"),
        pytest.param(health("Unhealthy", 2, "503"), HealthStatus(state="Unknown", last_probe_time=STAMP0),
                     id="unhealthy-becomes-unknown-and-forgets-failures"),
        pytest.param(HealthStatus(state="Unknown", last_probe_time=STAMP0), HealthStatus(state="Unknown", last_probe_time=STAMP0),
                     id="resting-is-stable"),
    ],
)
def test_resting_health_of_a_session_that_does_not_run(previous, expected):
    assert resting_health(previous) == expected


SETTINGS = LifecycleSettings(provider="pod", start_timeout=600, idle_timeout=1800, max_duration=7200)


@pytest.mark.parametrize(
    ("status", "settings", "expected"),
    [
        pytest.param(AgentSessionStatus(start_time=STAMP0), SETTINGS, T0 + timedelta(seconds=600), id="from-start-time"),
        pytest.param(AgentSessionStatus(), SETTINGS, None, id="not-started"),
        pytest.param(AgentSessionStatus(start_time=STAMP0), LifecycleSettings(provider="pod", start_timeout=None), None,
                     id="no-timeout"),
        pytest.param(AgentSessionStatus(start_time=STAMP0), None, None, id="no-settings"),
    ],
)
def test_start_deadline(status, settings, expected):
    assert start_deadline(status, settings) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(AgentSessionStatus(start_time=STAMP0), T0 + timedelta(seconds=1800), id="from-start-without-activity"),
        pytest.param(AgentSessionStatus(start_time=STAMP0, last_activity_time="2025-03-01T09:10:00Z"),
                     T0 + timedelta(minutes=10, seconds=1800), id="from-last-activity"),
        pytest.param(AgentSessionStatus(start_time=STAMP0, last_activity_time="2025-03-01T08:00:00Z"),
                     T0 + timedelta(seconds=1800), id="activity-before-a-resume-does-not-count"),
        pytest.param(AgentSessionStatus(start_time=STAMP0, last_activity_time="2025-03-01T09:10:00.250Z"),
                     T0 + timedelta(minutes=10, seconds=1800.25), id="fractional-activity-time-from-the-gateway"),
        pytest.param(AgentSessionStatus(start_time=STAMP0, last_activity_time="2025-03-01T08:00:00Z", conditions=[
            Condition(type="Ready", status="True", reason="Running", last_transition_time=STAMP1)]),
                     T1 + timedelta(seconds=1800), id="a-start-longer-than-the-timeout-counts-from-ready"),
        pytest.param(AgentSessionStatus(start_time=STAMP0, conditions=[
            Condition(type="Ready", status="False", reason="Creating", last_transition_time=STAMP1)]),
                     T0 + timedelta(seconds=1800), id="not-ready-counts-from-start"),
        pytest.param(AgentSessionStatus(), None, id="not-started"),
    ],
)
def test_idle_deadline(status, expected):
    assert idle_deadline(status, SETTINGS) == expected


def test_max_duration_deadline_counts_from_the_last_start():
    assert max_duration_deadline(AgentSessionStatus(start_time=STAMP0), SETTINGS) == T0 + timedelta(hours=2)
    assert max_duration_deadline(AgentSessionStatus(start_time=STAMP0), LifecycleSettings(provider="pod")) is None


def test_timestamps_are_utc_whole_seconds_with_z():
    moment = datetime(2025, 3, 1, 10, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(moment) == STAMP0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(STAMP0, T0, id="z-suffix"),
        pytest.param("2025-03-01T10:00:00+01:00", T0, id="offset"),
        pytest.param("2025-03-01T09:00:00", T0, id="naive-read-as-utc"),
        pytest.param("yesterday", None, id="garbage-is-ignored"),
        pytest.param(None, None, id="missing"),
    ],
)
def test_parse_timestamp(text, expected):
    assert parse_timestamp(text) == expected


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        require_aware(datetime(2025, 3, 1, 9, 0, 0))
