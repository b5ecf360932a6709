"""The tmux provider too: a session whose agent cannot be run is Ready=False with the runtime's reason
and message within seconds (the operator reads `agentStart` from the bridge in the tmux window), and
`status.logs.tail` shows the bridge's output."""

from __future__ import annotations

import time

from agent_sessions.api import constants as c
from support.waits import condition

from .conftest import agent_session, wait_session

FAIL_FAST_SECONDS = 10.0


def test_a_missing_agent_binary_in_tmux_is_ready_false_with_the_exec_error_within_ten_seconds(
        api, tmux, start_operator):
    start_operator()
    started = time.monotonic()
    api.create(c.SESSION_PLURAL, agent_session("missing", agent={"command": ["claude-code-not-installed"]},
                                               lifecycle={"restartPolicy": c.RESTART_NEVER}))

    def failed(obj: dict | None) -> bool:
        cond = condition(obj, c.COND_READY) or {}
        return cond.get("reason") == "AgentExecFailed" and "No such file or directory" in cond.get("message", "")

    obj = wait_session(api, "default", "missing", failed)
    elapsed = time.monotonic() - started
    print(f"\ntime to Ready=False/AgentExecFailed with tmux: {elapsed:.2f}s")
    assert elapsed <= FAIL_FAST_SECONDS, f"took {elapsed:.1f}s"
    assert obj["status"]["phase"] == c.PHASE_FAILED and obj["status"]["provider"]["type"] == c.PROVIDER_TMUX
    wait_session(api, "default", "missing", lambda o: "claude-code-not-installed" in
                 (((o or {}).get("status") or {}).get("logs") or {}).get("tail", ""))
