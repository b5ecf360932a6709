"""Health: a crashed agent and an agent that refuses the session leave the bridge up and explaining."""

from __future__ import annotations

import sys

from .conftest import SESSION, get_json, post_json, ready, wait_health


async def test_agent_crash_makes_healthz_unhealthy_with_exit_code_and_stderr(start_bridge, http):
    bridge = await ready(http, start_bridge(env={"DEMO_AGENT_CRASH_ON": "self-destruct"}))
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "please self-destruct"})
    assert status == 502
    assert reply["code"] == "agent_exited" and reply["session"] == SESSION
    health = await wait_health(http, bridge, lambda status, body: status == 503)
    assert health["status"] == "unhealthy"
    assert health["reason"] == "AgentExited"
    assert health["exitCode"] == 3
    assert any("crashing on purpose" in line for line in health["stderr"])
    assert len(health["stderr"]) <= 20
    assert bridge.alive(), "the bridge keeps serving after its agent died"
    status, info = await get_json(http, f"{bridge.url}/v1/info")
    assert info["state"] == "unhealthy" and info["health"]["exitCode"] == 3
    status, history = await get_json(http, f"{bridge.url}/v1/history")
    assert [item["event"] for item in history["items"]] == ["user_message", "error"]
    status, refused = await post_json(http, f"{bridge.url}/v1/messages", {"text": "hello?"})
    assert status == 503 and refused["code"] == "agent_unavailable"
    assert "crashing on purpose" in bridge.logs(), "the agent's stderr is forwarded to the bridge's"


async def test_agent_requiring_auth_is_reported_and_the_bridge_stays_up(start_bridge, http):
    bridge = start_bridge(env={"DEMO_AGENT_REQUIRE_AUTH": "1"})
    health = await wait_health(http, bridge, lambda status, body: body.get("reason") == "AuthenticationRequired")
    assert health["status"] == "unhealthy"
    assert health["error"]["code"] == -32000
    assert health["error"]["message"] == "Authentication required"
    assert [method["id"] for method in health["authMethods"]] == ["demo-login"]
    status, info = await get_json(http, f"{bridge.url}/v1/info")
    assert status == 200
    assert info["state"] == "unhealthy" and info["health"] == health
    assert info["agent"]["name"] == "agent-sessions-demo", "initialize got through: the agent is known"
    assert info["acpSessionId"] is None and info["openedWith"] is None
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "hi"})
    assert status == 503 and reply["health"]["reason"] == "AuthenticationRequired"
    async with http.get(f"{bridge.url}/healthz") as response:
        assert response.status == 503
    assert bridge.alive(), "no crash loop: the bridge keeps serving the reason"


async def test_a_command_that_cannot_run_is_reported(start_bridge, http):
    bridge = start_bridge(agent=("/nonexistent/agent-binary",))
    health = await wait_health(http, bridge, lambda status, body: body.get("reason") == "AgentExecFailed")
    assert "/nonexistent/agent-binary" in health["message"]
    assert bridge.alive()


async def test_a_plain_program_spoken_to_in_acp_fails_initialize_after_the_start_timeout(start_bridge, http):
    silent = (sys.executable, "-c", "import sys; sys.stdin.read()")
    bridge = start_bridge(agent=silent, args=("--start-timeout", "0.5"))
    health = await wait_health(http, bridge, lambda status, body: body.get("reason") == "InitializeFailed")
    assert "stdio-lines" in health["message"]


# --- agentStart: a start that failed, said at once, with why ------------------------------------

EXITS_AT_ONCE = (sys.executable, "-c", "import sys; print('no API key configured', file=sys.stderr); sys.exit(2)")


async def test_a_command_that_cannot_run_is_a_failed_start_in_healthz_and_info(start_bridge, http):
    bridge = start_bridge(agent=("claude-code-not-installed",))
    health = await wait_health(http, bridge, lambda status, body: body["agentStart"]["state"] != "starting")
    assert health["agentStart"] == {"state": "failed", "reason": "AgentExecFailed",
                                    "message": "cannot run 'claude-code-not-installed': No such file or directory"}
    status, info = await get_json(http, f"{bridge.url}/v1/info")
    assert status == 200 and info["agentStart"] == health["agentStart"] and info["state"] == "unhealthy"
    assert bridge.alive(), "the bridge keeps serving the reason"


async def test_an_agent_that_exits_during_initialize_is_a_failed_start_with_its_exit_code(start_bridge, http):
    bridge = start_bridge(agent=EXITS_AT_ONCE)
    health = await wait_health(http, bridge, lambda status, body: body["agentStart"]["state"] != "starting")
    assert health["agentStart"] == {"state": "failed", "reason": "AgentExited", "exitCode": 2,
                                    "message": "the agent exited (exit code 2) before its session was open"}
    assert health["reason"] == "AgentExited" and "no API key configured" in health["stderr"]


async def test_an_agent_that_exits_zero_during_initialize_is_a_failed_start_too(start_bridge, http):
    bridge = start_bridge(agent=(sys.executable, "-c", "pass"))
    health = await wait_health(http, bridge, lambda status, body: body["agentStart"]["state"] != "starting")
    assert health["agentStart"]["state"] == "failed" and health["agentStart"]["exitCode"] == 0


async def test_an_agent_requiring_authentication_is_a_failed_start(start_bridge, http):
    bridge = start_bridge(env={"DEMO_AGENT_REQUIRE_AUTH": "1"})
    health = await wait_health(http, bridge, lambda status, body: body["agentStart"]["state"] != "starting")
    assert health["agentStart"]["state"] == "failed"
    assert health["agentStart"]["reason"] == "AuthenticationRequired"
    assert "Authentication required" in health["agentStart"]["message"]


async def test_a_started_agent_says_started_and_a_later_crash_is_no_start_failure(start_bridge, http):
    bridge = await ready(http, start_bridge(env={"DEMO_AGENT_CRASH_ON": "self-destruct"}))
    status, info = await get_json(http, f"{bridge.url}/v1/info")
    assert info["agentStart"] == {"state": "started"}
    await post_json(http, f"{bridge.url}/v1/messages", {"text": "please self-destruct"})
    health = await wait_health(http, bridge, lambda status, body: body.get("reason") == "AgentExited")
    assert health["agentStart"] == {"state": "started"}
