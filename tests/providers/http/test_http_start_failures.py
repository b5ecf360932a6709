"""The http provider too: on the reference platform, a session whose agent cannot be run is
Ready=False with the runtime's reason and message within seconds (the operator reads `agentStart`
from the session's runtime endpoint), not at the start timeout."""

from __future__ import annotations

import time

from agent_sessions.api import constants as c

from .conftest import condition, http_session, wait_session

FAIL_FAST_SECONDS = 10.0


def test_a_missing_agent_binary_on_a_platform_is_ready_false_with_the_exec_error_within_ten_seconds(
        api, platform, token_secret, start_operator):
    start_operator()
    started = time.monotonic()
    api.create(c.SESSION_PLURAL, http_session("missing", platform.url,
                                              agent={"command": ["claude-code-not-installed"]},
                                              lifecycle={"restartPolicy": c.RESTART_NEVER}))

    def failed(obj: dict | None) -> bool:
        cond = condition(obj, c.COND_READY) or {}
        return cond.get("reason") == "AgentExecFailed" and "No such file or directory" in cond.get("message", "")

    obj = wait_session(api, "missing", failed)
    elapsed = time.monotonic() - started
    print(f"\ntime to Ready=False/AgentExecFailed on an http platform: {elapsed:.2f}s")
    assert elapsed <= FAIL_FAST_SECONDS, f"took {elapsed:.1f}s"
    assert obj["status"]["phase"] == c.PHASE_FAILED
