"""An agent that cannot start (its runtime says so in `agentStart`) fails or restarts at once, per the
restart policy, with Ready saying why — not at the start timeout."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from agent_sessions.api import constants as c
from agent_sessions.lifecycle import (
    POLL_SECONDS,
    BackingState,
    HealthProbe,
    LifecycleSettings,
    Observation,
    SessionInput,
    Stop,
    decide,
    get_condition,
)
from agent_sessions.lifecycle.decision_state import STARTING_POLL_SECONDS, STARTING_WINDOW_SECONDS

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
SETTINGS = LifecycleSettings(provider=c.PROVIDER_POD, config_hash="h", template_chain=())
ON_FAILURE = SessionInput(name="demo", namespace="team-a", uid="uid-1", generation=1, settings=SETTINGS)
NEVER = replace(ON_FAILURE, settings=replace(SETTINGS, restart_policy=c.RESTART_NEVER))
EXEC_FAILED = Observation(
    BackingState.FAILED, id="ags-demo", reason="AgentExecFailed", start_failed=True,
    message="cannot run 'claude-code-not-installed': No such file or directory",
    health=HealthProbe(c.HEALTH_UNHEALTHY, "AgentExecFailed; cannot run 'claude-code-not-installed'"),
)
STARTING = Observation(BackingState.RUNNING, id="ags-demo", endpoint="http://10.0.0.7:8080",
                       message="the runtime is not ready yet")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def creating(session: SessionInput):
    return decide(session, None, Observation(BackingState.ABSENT), None, at(0)).status


def ready(status):
    return get_condition(status.conditions, c.COND_READY)


def test_a_failed_start_under_restart_policy_never_fails_the_session_at_once_saying_why():
    decision = decide(NEVER, creating(NEVER), EXEC_FAILED, None, at(3))
    assert decision.status.phase == c.PHASE_FAILED
    cond = ready(decision.status)
    assert (cond.status, cond.reason) == ("False", "AgentExecFailed")
    assert cond.message == ("the agent could not start (AgentExecFailed): "
                            "cannot run 'claude-code-not-installed': No such file or directory")
    assert decision.status.health.state == c.HEALTH_UNHEALTHY
    assert not any(isinstance(a, Stop) for a in decision.actions), "the backing is kept: its logs explain"


def test_a_failed_start_under_on_failure_restarts_with_ready_saying_why_until_the_backoff_limit():
    decision = decide(ON_FAILURE, creating(ON_FAILURE), EXEC_FAILED, None, at(3))
    status = decision.status
    assert status.phase == c.PHASE_CREATING and status.crash_count == 1
    assert any(isinstance(a, Stop) for a in decision.actions), "the failed backing is replaced"
    assert ready(status).reason == "AgentExecFailed"
    assert "No such file or directory" in ready(status).message and "restarting (crash 1 of at most 3)" in \
        ready(status).message

    # While the replacement starts, Ready keeps saying why the session restarts.
    waiting = decide(ON_FAILURE, status, Observation(BackingState.PENDING, id="ags-demo", reason="ContainerCreating"),
                     None, at(4)).status
    assert ready(waiting).reason == "AgentExecFailed" and ready(waiting).message == ready(status).message

    for crash in (2, 3, 4):
        status = decide(ON_FAILURE, status, EXEC_FAILED, None, at(4 + crash)).status
    assert status.phase == c.PHASE_FAILED
    assert ready(status).reason == c.REASON_BACKOFF_LIMIT_EXCEEDED
    assert "cannot run 'claude-code-not-installed'" in ready(status).message


def test_the_restarted_session_that_serves_is_ready_again():
    restarting = decide(ON_FAILURE, creating(ON_FAILURE), EXEC_FAILED, None, at(3)).status
    served = Observation(BackingState.RUNNING, ready=True, id="ags-demo", endpoint="http://10.0.0.8:8080")
    status = decide(ON_FAILURE, restarting, served, None, at(6)).status
    assert status.phase == c.PHASE_RUNNING and ready(status).status == "True"


def test_a_backing_that_runs_but_does_not_serve_is_looked_at_every_second_early_in_its_start():
    status = creating(ON_FAILURE)
    assert decide(ON_FAILURE, status, STARTING, None, at(2)).requeue_after == STARTING_POLL_SECONDS
    late = decide(ON_FAILURE, status, STARTING, None, at(STARTING_WINDOW_SECONDS + 1)).requeue_after
    assert late == POLL_SECONDS
    pulling = Observation(BackingState.PENDING, id="ags-demo", reason="ContainerCreating")
    assert decide(ON_FAILURE, status, pulling, None, at(2)).requeue_after == POLL_SECONDS, \
        "a pod not running yet announces its start with an event"
    platform_pending = Observation(BackingState.PENDING, id="uid-1", endpoint="http://127.0.0.1:41000")
    assert decide(ON_FAILURE, status, platform_pending, None, at(2)).requeue_after == STARTING_POLL_SECONDS, \
        "a platform's session pending with a runtime endpoint: its runtime may say the agent cannot start"


def test_an_exit_zero_during_start_up_is_a_failed_start_not_a_completion():
    exited = Observation(BackingState.FAILED, id="ags-demo", reason="AgentExited", exit_code=0, start_failed=True,
                         message="the agent exited (exit code 0) before its session was open")
    status = decide(NEVER, creating(NEVER), exited, None, at(3)).status
    assert status.phase == c.PHASE_FAILED and ready(status).reason == "AgentExited"
