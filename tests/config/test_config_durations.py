"""Go-style duration parsing for lifecycle timeouts."""

from __future__ import annotations

import pytest

from agent_sessions.config import parse_duration


@pytest.mark.parametrize(
    "text, seconds",
    [
        pytest.param("30m", 1800.0, id="minutes"),
        pytest.param("1h30m", 5400.0, id="hours_and_minutes"),
        pytest.param("2h45m10s", 9910.0, id="three_units"),
        pytest.param("1.5h", 5400.0, id="fraction"),
        pytest.param("90s", 90.0, id="seconds"),
        pytest.param("300ms", 0.3, id="milliseconds"),
        pytest.param("10us", 10e-6, id="microseconds_ascii"),
        pytest.param("10µs", 10e-6, id="microseconds_micro_sign"),
        pytest.param("10μs", 10e-6, id="microseconds_greek_mu"),
        pytest.param("100ns", 100e-9, id="nanoseconds"),
        pytest.param("0", 0.0, id="bare_zero"),
        pytest.param("-1.5h", -5400.0, id="negative"),
        pytest.param("+5s", 5.0, id="explicit_plus"),
        pytest.param(".5s", 0.5, id="leading_dot"),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text, message",
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("-", "empty", id="sign_only"),
        pytest.param("10", "missing unit after '10'", id="missing_unit"),
        pytest.param("1h30", "missing unit after '30'", id="missing_last_unit"),
        pytest.param("10d", "unknown unit 'd'", id="days_are_not_go"),
        pytest.param("1h 30m", "unknown unit 'h '", id="space"),
        pytest.param("soon", "expected a number at 'soon'", id="words"),
        pytest.param("1..5s", "missing unit after '1.'", id="two_dots"),
        pytest.param(30, "must be a string", id="not_a_string"),
    ],
)
def test_parse_duration_rejects(text, message):
    with pytest.raises(ValueError, match="invalid duration") as raised:
        parse_duration(text)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("8761h", id="one_hour_over"),
        pytest.param("525601m", id="minutes_over"),
        pytest.param("9" * 19 + "h", id="overflows_int64_nanoseconds"),
        pytest.param("9" * 5000 + "h", id="overflows_a_float"),
        pytest.param("-8761h", id="negative_over"),
        pytest.param("8760h1ns", id="a_nanosecond_over"),
    ],
)
def test_parse_duration_refuses_more_than_the_maximum_with_the_maximum_named(text):
    with pytest.raises(ValueError) as raised:
        parse_duration(text)
    assert "longer than the maximum of 8760h (365 days)" in str(raised.value)
    assert len(str(raised.value)) < 200  # a 5000-digit value is not repeated in full


def test_parse_duration_accepts_exactly_the_maximum():
    assert parse_duration("8760h") == 8760 * 3600
    assert parse_duration("525600m") == 8760 * 3600


def test_parse_duration_maximum_can_be_lifted_but_never_returns_infinity():
    assert parse_duration("100000h", maximum=None) == 100000 * 3600
    with pytest.raises(ValueError, match="longer than"):
        parse_duration("9" * 400 + "h", maximum=None)


def test_a_huge_duration_in_a_session_is_a_config_problem_not_an_exception():
    from agent_sessions.config import ConfigInvalid, resolve_config

    session = {"metadata": {"name": "s", "namespace": "default"},
               "spec": {"agent": {"image": "a"}, "lifecycle": {"maxDuration": "9" * 100 + "h"}}}
    with pytest.raises(ConfigInvalid) as raised:
        resolve_config(session, {})
    [problem] = raised.value.problems
    assert problem.field == "spec.lifecycle.maxDuration"
    assert "longer than the maximum of 8760h (365 days)" in problem.message
