"""The gateway's error shape and what a runtime's failures mean to its clients."""

from __future__ import annotations

import pytest

from agent_sessions.gateway.errors import STATUS, GatewayError, invalid_message, runtime_error, runtime_failure
from agent_sessions.wire.message_request import too_large
from agent_sessions.wire.runtime_client import RuntimeCallFailed
from agent_sessions.wire.session_ref import SessionRef

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


def test_a_failed_runtime_call_is_relayed_or_provider_unavailable_naming_the_session():
    ref = SessionRef("team-a", "demo", "u-1")
    busy = runtime_failure(RuntimeCallFailed(ref, "to the message", status=409,
                                             body={"code": "session_busy", "message": "a turn is running"}))
    assert (busy.code, busy.status, busy.session) == ("session_busy", 409, SESSION)
    gone = runtime_failure(RuntimeCallFailed(ref, "ConnectionRefusedError"))
    assert (gone.code, gone.status, gone.session) == ("provider_unavailable", 503, SESSION)
    assert "ConnectionRefusedError" in gone.message


def test_a_refused_message_keeps_its_code_and_status():
    error = invalid_message(too_large(200, limit=100))
    assert (error.code, error.status) == ("message_too_large", 413)
