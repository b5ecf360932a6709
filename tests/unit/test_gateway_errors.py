"""The gateway's error shape and what a runtime's failures mean to its clients."""

from __future__ import annotations

import pytest

from agent_sessions.gateway.errors import STATUS, GatewayError, runtime_error

SESSION = {"namespace": "team-a", "name": "demo", "uid": "u-1"}


@pytest.mark.parametrize(("code", "status"), [
    ("session_not_found", 404), ("session_not_running", 409), ("invalid_request", 422), ("message_too_large", 413),
    ("unauthorized", 401), ("forbidden", 403), ("provider_unavailable", 503), ("rate_limited", 429),
    ("session_busy", 409),
])
def test_every_documented_code_has_its_status(code, status):
    assert STATUS[code] == status
    assert GatewayError(code, "m").status == status


def test_error_body_is_code_message_session():
    error = GatewayError("forbidden", "no", session=SESSION)
    assert error.body() == {"code": "forbidden", "message": "no", "session": SESSION}
    assert GatewayError("unauthorized", "who?").body() == {"code": "unauthorized", "message": "who?", "session": None}


def test_retry_after_is_whole_seconds_and_at_least_one():
    assert GatewayError("rate_limited", "slow down", retry_after=0.2).headers() == {"Retry-After": "1"}
    assert GatewayError("rate_limited", "slow down", retry_after=7.6).headers() == {"Retry-After": "8"}
    assert GatewayError("forbidden", "no").headers() == {}


@pytest.mark.parametrize(("status", "body", "code", "http"), [
    (409, {"code": "session_busy", "message": "a turn is running"}, "session_busy", 409),
    (422, {"code": "invalid_request", "message": "bad block"}, "invalid_request", 422),
    (413, {"code": "message_too_large", "message": "big"}, "message_too_large", 413),
    (404, {"code": "not_found", "message": "no such endpoint"}, "provider_unavailable", 503),
    (503, {"code": "agent_unavailable", "message": "starting"}, "provider_unavailable", 503),
    (502, {"code": "agent_error", "message": "boom", "seq": 9}, "provider_unavailable", 503),
    (500, None, "provider_unavailable", 503),
    (500, "<html>oops</html>", "provider_unavailable", 503),
])
def test_runtime_answers_are_relayed_or_mean_unavailable(status, body, code, http):
    error = runtime_error(status, body, SESSION)
    assert (error.code, error.status, error.session) == (code, http, SESSION)


def test_runtime_failure_keeps_the_upstream_status_and_code_for_debugging():
    error = runtime_error(502, {"code": "agent_error", "message": "boom"}, SESSION)
    assert error.body()["upstream"] == {"status": 502, "code": "agent_error"}
    assert "agent_error: boom" in error.message


def test_relayed_runtime_error_names_the_kubernetes_session_not_the_runtimes():
    error = runtime_error(409, {"code": "session_busy", "message": "busy", "session": {"name": "other"}}, SESSION)
    assert error.body()["session"] == SESSION
