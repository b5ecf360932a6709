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
