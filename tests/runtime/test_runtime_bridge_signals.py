"""The bridge process stops its agent whichever way it is asked to stop: SIGTERM (a pod's
deletion, the tmux provider's stop), SIGINT (Ctrl-C), SIGHUP (a killed tmux session, a closed
terminal). Before, SIGHUP ended the bridge at once and its agent was left running."""

from __future__ import annotations

import signal
import subprocess

import pytest
from support.processes import alive, parents
from support.waits import wait_until

from .conftest import wait_health


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["term", "int", "hup"])
async def test_the_bridge_stops_its_agent_and_exits_cleanly_on_each_stop_signal(sig, start_bridge, http):
    bridge = start_bridge()
    await wait_health(http, bridge)
    agent = wait_until(lambda: {pid for pid, parent in parents().items() if parent == bridge.process.pid}, timeout=20, what="the agent process")
    bridge.process.send_signal(sig)  # the bridge alone, not its process group
    try:
        code = bridge.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the bridge did not stop on {sig.name}:\n{bridge.logs()}")
    assert code == 0, bridge.logs()
    assert "runtime stopping" in bridge.logs()
    wait_until(lambda: not any(alive(pid) for pid in agent), timeout=10, what="the agent gone with its bridge")
