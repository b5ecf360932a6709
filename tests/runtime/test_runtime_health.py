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
    assert body["reason"] == "AuthenticationRequired"
    assert body["error"] == {"code": -32000, "message": "Authentication required"}
    assert body["authMethods"] == methods
    assert "Authentication required" in body["message"] and "Log in" in body["message"]


def test_a_session_refused_for_another_reason_is_session_refused():
    body = h.session_refused({"code": -32603, "message": "Internal error"}, []).to_json()
    assert body["reason"] == "SessionRefused"
    assert body["message"] == "the agent refused to open a session: Internal error (-32603)"


def test_a_command_that_cannot_run_says_why_in_one_line():
    failure = h.agent_exec_failed("claude-code-not-installed", FileNotFoundError(2, "No such file or directory"))
    assert failure.to_json() == {"status": "unhealthy", "reason": "AgentExecFailed",
                                 "message": "cannot run 'claude-code-not-installed': No such file or directory"}


def test_agent_start_is_starting_then_started_or_failed_with_reason_and_message():
    assert h.AgentStart().to_json() == {"state": "starting"}
    assert h.AgentStart(h.START_STARTED).to_json() == {"state": "started"}
    failed = h.start_failed(h.agent_exec_failed("x", FileNotFoundError(2, "No such file or directory")))
    assert failed.to_json() == {"state": "failed", "reason": "AgentExecFailed",
                                "message": "cannot run 'x': No such file or directory"}
    exited = h.start_failed(h.agent_exited(2, ["boom"])).to_json()
    assert exited == {"state": "failed", "reason": "AgentExited", "exitCode": 2,
                      "message": "the agent exited (exit code 2) before its session was open"}


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
