"""What `/healthz` says about the agent: bodies a platform engineer can act on."""

from __future__ import annotations

from agent_sessions.runtime import health as h


def test_healthy_body():
    assert h.healthy().to_json() == {"status": "ok"}
    assert h.healthy().ok


def test_exited_agent_reports_exit_code_and_stderr():
    body = h.agent_exited(3, ["boom", "trace"]).to_json()
    assert body == {
        "status": "unhealthy",
        "reason": "AgentExited",
        "message": "the agent exited (exit code 3)",
        "exitCode": 3,
        "stderr": ["boom", "trace"],
    }


def test_killed_agent_names_the_signal_and_a_clean_exit_still_has_exit_code_zero():
    assert "signal 9" in h.agent_exited(-9, []).to_json()["message"]
    assert h.agent_exited(0, []).to_json()["exitCode"] == 0


def test_refused_session_reports_the_json_rpc_error_and_auth_methods():
    methods = [{"id": "login", "name": "Log in"}]
    body = h.session_refused({"code": -32000, "message": "Authentication required"}, methods).to_json()
    assert body["status"] == "unhealthy"
    assert body["reason"] == "SessionRefused"
    assert body["error"] == {"code": -32000, "message": "Authentication required"}
    assert body["authMethods"] == methods
    assert "Authentication required" in body["message"]


def test_starting_is_unhealthy_with_a_reason():
    assert h.STARTING.to_json() == {"status": "unhealthy", "reason": "Starting", "message": "the agent is starting"}


def test_stderr_tail_keeps_the_last_twenty_lines_bounded_in_length():
    tail = h.StderrTail()
    for index in range(30):
        tail.add(f"line {index}\n".encode())
    tail.add(b"x" * 5000 + b"\n")
    tail.add(b"\xff\xfe not utf-8\r\n")
    lines = tail.lines()
    assert len(lines) == 20
    assert lines[0] == "line 12"
    assert len(lines[-2]) == h.MAX_STDERR_LINE + 1
    assert lines[-1].endswith("not utf-8")
