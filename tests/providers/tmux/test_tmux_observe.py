"""Reading a tmux session and its bridge's /healthz as an Observation: one row per state."""

from __future__ import annotations

import pytest

from agent_sessions.api import constants as c
from agent_sessions.lifecycle import BackingState
from agent_sessions.providers.tmux import RuntimeProbe, TmuxSessionState, observe_tmux

ALIVE = TmuxSessionState(name="ags-default-demo-1a2b3c4d", uid="u", port=41000, pid=123, pane="%0")


def dead(status: int | None = None, signal: int | None = None, pane: str = "%0") -> TmuxSessionState:
    return TmuxSessionState(name=ALIVE.name, uid="u", port=41000, dead=True, exit_status=status,
                            exit_signal=signal, pane=pane)


def test_no_tmux_session_is_absent():
    assert observe_tmux(None).state == BackingState.ABSENT


@pytest.mark.parametrize(
    ("state", "probe", "expected"),
    [
        (ALIVE, RuntimeProbe(200, {"status": "ok"}), (BackingState.RUNNING, True, None)),
        (ALIVE, None, (BackingState.RUNNING, False, "RuntimeNotAnswering")),
        (ALIVE, RuntimeProbe(503, {"reason": "Starting", "message": "the agent is starting"}),
         (BackingState.RUNNING, False, "Starting")),
        (ALIVE, RuntimeProbe(503, {}), (BackingState.RUNNING, False, c.REASON_NOT_READY)),
        (dead(0), None, (BackingState.SUCCEEDED, False, c.REASON_COMPLETED)),
        (dead(3), None, (BackingState.FAILED, False, "RuntimeExited")),
        (dead(None, 9), None, (BackingState.FAILED, False, "RuntimeExited")),
        (dead(None), None, (BackingState.RUNNING, False, "RuntimeExiting")),  # status not collected yet
        (dead(None, pane=""), None, (BackingState.FAILED, False, "RuntimeExited")),  # pane closed by hand
    ],
)
def test_states(state, probe, expected):
    observation = observe_tmux(state, probe)
    assert (observation.state, observation.ready, observation.reason) == expected
    assert observation.id == state.name


def test_a_running_session_has_its_loopback_endpoint_and_a_healthy_probe_when_ready():
    observation = observe_tmux(ALIVE, RuntimeProbe(200))
    assert observation.endpoint == "http://127.0.0.1:41000"
    assert observation.health is not None and observation.health.state == c.HEALTH_HEALTHY


def test_a_session_without_a_recorded_port_has_no_endpoint():
    observation = observe_tmux(TmuxSessionState(name="ags-x-1", uid="u", pid=1, pane="%0"))
    assert observation.endpoint is None and not observation.ready


@pytest.mark.parametrize(("state", "code", "how"), [(dead(3), 3, "exit code 3"), (dead(None, 15), 143, "signal 15")])
def test_exit_codes_and_the_end_of_the_output_are_reported(state, code, how):
    observation = observe_tmux(state, output="Traceback\nOSError: address already in use\n")
    assert observation.exit_code == code
    assert how in observation.message and "address already in use" in observation.message


def test_the_bridge_message_is_redacted():
    probe = RuntimeProbe(503, {"reason": "SessionRefused", "message": "refused: api_key=sk-abcdefghijklmnopqrstu"})
    assert "sk-abcdefghijklmnopqrstu" not in observe_tmux(ALIVE, probe).message


def test_a_dead_pane_whose_status_never_comes_is_failed_with_an_unknown_status():
    observation = observe_tmux(dead(None), exit_status_overdue=True)
    assert (observation.state, observation.exit_code) == (BackingState.FAILED, None)
    assert "exit status unknown" in observation.message
