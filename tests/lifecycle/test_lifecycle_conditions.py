"""Conditions: transition times move only on flips, order is stable, compute_… tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent_sessions.api import constants as c
from agent_sessions.api.session import Condition, HealthStatus
from agent_sessions.lifecycle import (
    ConditionValue,
    compute_config_valid_condition,
    compute_healthy_condition,
    compute_provider_available_condition,
    compute_ready_condition,
    compute_up_to_date_condition,
    get_condition,
    set_condition,
)
from agent_sessions.lifecycle.conditions import valid_reason

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def ready(status: str = "False", reason: str = "Pending", message: str = "", generation: int = 1) -> list[Condition]:
    return set_condition([], c.COND_READY, status, reason, message, generation, T0)  # type: ignore[arg-type]


def test_a_new_condition_gets_now_as_its_transition_time():
    conditions = ready()
    assert conditions[0].last_transition_time == "2025-03-01T09:00:00Z"
    assert conditions[0].observed_generation == 1


def test_same_status_keeps_the_transition_time_and_updates_reason_message_and_generation_in_place():
    conditions = set_condition(ready(), c.COND_READY, "False", "Creating", "starting", 2, T1)
    (cond,) = conditions
    assert cond.last_transition_time == "2025-03-01T09:00:00Z"
    assert (cond.reason, cond.message, cond.observed_generation) == ("Creating", "starting", 2)


def test_a_status_flip_moves_the_transition_time():
    conditions = set_condition(ready(), c.COND_READY, "True", "Running", "", 1, T1)
    assert conditions[0].last_transition_time == "2025-03-01T09:05:00Z"


def test_flipping_back_moves_the_transition_time_again():
    conditions = set_condition(ready(), c.COND_READY, "True", "Running", "", 1, T1)
    conditions = set_condition(conditions, c.COND_READY, "False", "Stopped", "", 1, T1 + timedelta(minutes=1))
    assert conditions[0].last_transition_time == "2025-03-01T09:06:00Z"


def test_reasserting_an_identical_condition_returns_an_equal_list():
    conditions = ready(message="waiting")
    again = set_condition(conditions, c.COND_READY, "False", "Pending", "waiting", 1, T1)
    assert again == conditions


def test_set_condition_does_not_modify_its_input():
    conditions = ready()
    snapshot = [cond.model_copy(deep=True) for cond in conditions]
    set_condition(conditions, c.COND_READY, "True", "Running", "", 3, T1)
    set_condition(conditions, c.COND_HEALTHY, "True", "ProbeSucceeded", "", 3, T1)
    assert conditions == snapshot


def test_conditions_keep_a_stable_order_whatever_order_they_are_set_in():
    conditions: list[Condition] = []
    for type_ in (c.COND_UP_TO_DATE, "Custom", c.COND_HEALTHY, c.COND_READY, c.COND_PROVIDER_AVAILABLE, c.COND_CONFIG_VALID):
        conditions = set_condition(conditions, type_, "True", "Because", "", 1, T0)
    assert [cond.type for cond in conditions] == [*c.CONDITION_TYPES, "Custom"]


def test_unknown_condition_types_keep_their_relative_order_after_the_known_ones():
    conditions = set_condition([], "Zeta", "True", "Z", "", 1, T0)
    conditions = set_condition(conditions, "Alpha", "True", "A", "", 1, T0)
    conditions = set_condition(conditions, c.COND_READY, "True", "Running", "", 1, T0)
    conditions = set_condition(conditions, "Zeta", "False", "Z", "", 1, T1)
    assert [cond.type for cond in conditions] == [c.COND_READY, "Alpha", "Zeta"]


def test_overlong_messages_are_truncated_to_what_the_api_accepts():
    conditions = ready(message="x" * 40000)
    assert len(conditions[0].message) == 32768


def test_get_condition_finds_by_type_or_returns_none():
    conditions = ready()
    assert get_condition(conditions, c.COND_READY) is conditions[0]
    assert get_condition(conditions, c.COND_HEALTHY) is None
    assert get_condition(None, c.COND_READY) is None


@pytest.mark.parametrize(
    ("phase", "ready_", "reason", "expected"),
    [
        pytest.param(c.PHASE_RUNNING, True, None, ("True", c.REASON_RUNNING), id="running-and-ready-is-ready"),
        pytest.param(c.PHASE_RUNNING, False, None, ("False", c.REASON_NOT_READY), id="running-not-ready"),
        pytest.param(c.PHASE_RUNNING, False, "CrashLoopBackOff", ("False", "CrashLoopBackOff"), id="running-with-waiting-reason"),
        pytest.param(c.PHASE_PENDING, False, None, ("False", c.REASON_PENDING), id="pending"),
        pytest.param(c.PHASE_CREATING, True, None, ("False", c.REASON_CREATING), id="creating-is-never-ready"),
        pytest.param(c.PHASE_STOPPING, False, None, ("False", c.REASON_STOPPING), id="stopping"),
        pytest.param(c.PHASE_STOPPED, False, None, ("False", c.REASON_STOPPED), id="stopped"),
        pytest.param(c.PHASE_COMPLETED, False, None, ("False", c.REASON_COMPLETED), id="completed"),
        pytest.param(c.PHASE_FAILED, False, c.REASON_START_TIMEOUT, ("False", c.REASON_START_TIMEOUT), id="failed-with-cause"),
        pytest.param(c.PHASE_FAILED, False, "not a reason!", ("False", c.REASON_FAILED), id="failed-with-invalid-reason-falls-back"),
        pytest.param(c.PHASE_TERMINATING, False, None, ("False", c.REASON_TERMINATING), id="terminating"),
    ],
)
def test_ready_condition_summarises_the_phase(phase, ready_, reason, expected):
    value = compute_ready_condition(phase, ready=ready_, reason=reason)
    assert value.type == c.COND_READY
    assert (value.status, value.reason) == expected
    assert value.message


@pytest.mark.parametrize(
    ("valid", "problems", "expected"),
    [
        pytest.param(True, (), ConditionValue(c.COND_CONFIG_VALID, "True", c.REASON_VALID, "the configuration is valid"), id="valid"),
        pytest.param(
            False,
            ("template 'base' not found", "agent.image is locked by template 'team'"),
            ConditionValue(
                c.COND_CONFIG_VALID, "False", c.REASON_INVALID_CONFIGURATION,
                "template 'base' not found; agent.image is locked by template 'team'",
            ),
            id="invalid-joins-the-problems",
        ),
        pytest.param(
            False, (),
            ConditionValue(c.COND_CONFIG_VALID, "False", c.REASON_INVALID_CONFIGURATION, "the configuration is invalid"),
            id="invalid-without-problems-still-says-why",
        ),
    ],
)
def test_config_valid_condition(valid, problems, expected):
    assert compute_config_valid_condition(valid, problems) == expected


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        pytest.param(None, "True", c.REASON_PROVIDER_REACHABLE, id="reachable"),
        pytest.param("connection refused", "False", c.REASON_PROVIDER_UNAVAILABLE, id="unreachable"),
    ],
)
def test_provider_available_condition(error, status, reason):
    value = compute_provider_available_condition(error)
    assert (value.status, value.reason) == (status, reason)
    if error:
        assert value.message == error


@pytest.mark.parametrize(
    ("health", "status", "reason"),
    [
        pytest.param(None, "Unknown", c.REASON_NOT_PROBED, id="never-probed"),
        pytest.param(HealthStatus(state="Unknown"), "Unknown", c.REASON_NOT_PROBED, id="unknown"),
        pytest.param(HealthStatus(state="Healthy"), "True", c.REASON_PROBE_SUCCEEDED, id="healthy"),
        pytest.param(HealthStatus(state="Unhealthy", message="timeout"), "False", c.REASON_PROBE_FAILED, id="unhealthy"),
    ],
)
def test_healthy_condition_mirrors_status_health(health, status, reason):
    value = compute_healthy_condition(health)
    assert (value.type, value.status, value.reason) == (c.COND_HEALTHY, status, reason)


def test_unhealthy_condition_carries_the_probe_message():
    assert compute_healthy_condition(HealthStatus(state="Unhealthy", message="GET /healthz: 503")).message == "GET /healthz: 503"


@pytest.mark.parametrize(
    ("current", "started", "expected"),
    [
        pytest.param("h1", "h1", ("True", c.REASON_CONFIG_CURRENT), id="same-hash-is-up-to-date"),
        pytest.param("h2", "h1", ("False", c.REASON_TEMPLATE_CHANGED), id="changed-hash-is-not"),
        pytest.param("h1", None, None, id="never-started-has-nothing-to-compare"),
        pytest.param("", "h1", None, id="no-current-hash"),
    ],
)
def test_up_to_date_condition(current, started, expected):
    value = compute_up_to_date_condition(current, started)
    assert (None if value is None else (value.status, value.reason)) == expected


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        pytest.param("ImagePullBackOff", "ImagePullBackOff", id="camel-case-kept"),
        pytest.param("Reason_With:Colon,Comma", "Reason_With:Colon,Comma", id="allowed-punctuation-kept"),
        pytest.param("has spaces", "Fallback", id="spaces-rejected"),
        pytest.param("1Digit", "Fallback", id="leading-digit-rejected"),
        pytest.param("", "Fallback", id="empty-rejected"),
        pytest.param(None, "Fallback", id="none-rejected"),
        pytest.param("Crashed\n", "Fallback", id="final-newline-rejected"),
        pytest.param("Crash\x1b[2J", "Fallback", id="escape-sequence-rejected"),
    ],
)
def test_foreign_reasons_are_only_used_when_the_api_server_would_accept_them(reason, expected):
    assert valid_reason(reason, "Fallback") == expected
