"""The session lifecycle (§4), one table row per transition, plus the converged-identity rule (§8).

Statuses are built by driving `decide()` itself through the lifecycle (created → Creating →
Running → …), so every "given" is a status the operator really produces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from agent_sessions.api import constants as c
from agent_sessions.api.session import AgentSessionStatus, CapabilitiesStatus, PromptStatus, SessionInfoStatus
from agent_sessions.lifecycle import (
    POLL_SECONDS,
    PROMPT_RETRY_SECONDS,
    PROVIDER_RETRY_SECONDS,
    BackingState,
    Decision,
    Delete,
    DeliverPrompt,
    Emit,
    Ensure,
    HealthProbe,
    LifecycleSettings,
    Observation,
    RemoveFinalizer,
    SessionInput,
    Stop,
    decide,
    get_condition,
    prompt_message_id,
)
from agent_sessions.lifecycle.decision_state import (
    ANNOUNCED_POLL_SECONDS,
    STARTING_POLL_SECONDS,
    STARTING_WINDOW_SECONDS,
)

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


SETTINGS = LifecycleSettings(
    provider=c.PROVIDER_POD,
    config_hash="hash-1",
    template_chain=(("base", 2), ("team", 5)),
)
SESSION = SessionInput(name="demo", namespace="team-a", uid="uid-1", generation=1, settings=SETTINGS)
PROBLEMS = ("template 'missing' not found", "agent.image is locked by template 'team'")


def session(settings: LifecycleSettings | None = SETTINGS, **changes) -> SessionInput:
    return replace(SESSION, settings=settings, **changes)


def settings(**changes) -> LifecycleSettings:
    return replace(SETTINGS, **changes)


INVALID = session(settings=None, config_problems=PROBLEMS)
NEVER = session(settings(restart_policy=c.RESTART_NEVER))
IDLE = session(settings(idle_timeout=60))
MAX = session(settings(max_duration=300))

ABSENT = Observation(BackingState.ABSENT)
PULLING = Observation(BackingState.PENDING, id="ags-demo", reason="ContainerCreating")
READY = Observation(
    BackingState.RUNNING, ready=True, id="ags-demo", endpoint="http://10.0.0.7:8080", health=HealthProbe("Healthy")
)
NOT_READY = Observation(BackingState.RUNNING, ready=False, id="ags-demo", reason="CrashLoopBackOff", message="back-off 10s")
STOPPED_BACKING = Observation(BackingState.STOPPED, id="ags-demo")
TERMINATING = Observation(BackingState.TERMINATING, id="ags-demo", message="the pod is being deleted")
EXITED_0 = Observation(BackingState.SUCCEEDED, id="ags-demo", exit_code=0)
EXITED_1 = Observation(BackingState.FAILED, id="ags-demo", exit_code=1, message="panic: boom")
IMAGE_PULL = Observation(
    BackingState.PENDING, id="ags-demo", reason="ImagePullBackOff", message="image not found", permanent=True
)
DOWN = "dial tcp 10.0.0.1:443: connection refused"


def step(status: AgentSessionStatus | None, obs: Observation | None, s: SessionInput = SESSION,
         t: float = 0, error: str | None = None) -> Decision:
    return decide(s, status, obs, error, at(t))


# --- statuses the operator really produces ---------------------------------------------------


def created(s: SessionInput = SESSION) -> AgentSessionStatus:
    return step(None, ABSENT, s).status


def running(s: SessionInput = SESSION, obs: Observation = READY) -> AgentSessionStatus:
    return step(created(s), obs, s, t=10).status


def delivered(s: SessionInput) -> AgentSessionStatus:
    status = running(s)
    status.prompt = PromptStatus(state="Delivered", time="2025-03-01T09:00:11Z")  # what the executor records
    return status


def stopped_by_user() -> AgentSessionStatus:
    stop = session(desired_state=c.STATE_STOPPED, generation=2)
    stopping = step(running(), READY, stop, t=20).status
    return step(stopping, ABSENT, stop, t=30).status


def stopped_by_idle(s: SessionInput = IDLE) -> AgentSessionStatus:
    stopping = step(running(s), READY, s, t=100).status
    return step(stopping, ABSENT, s, t=110).status


def stopped_by_max_duration() -> AgentSessionStatus:
    stopping = step(running(MAX), READY, MAX, t=400).status
    return step(stopping, ABSENT, MAX, t=410).status


def stopping_by_user() -> AgentSessionStatus:
    return step(running(), READY, session(desired_state=c.STATE_STOPPED, generation=2), t=20).status


def resuming() -> AgentSessionStatus:
    return step(stopped_by_user(), ABSENT, session(generation=3), t=40).status


def failed_start_timeout() -> AgentSessionStatus:
    return step(created(), PULLING, t=700).status


def failed_exited() -> AgentSessionStatus:
    return step(running(NEVER), EXITED_1, NEVER, t=20).status


def failed_config() -> AgentSessionStatus:
    return step(None, None, INVALID).status


def completed() -> AgentSessionStatus:
    return step(running(NEVER), EXITED_0, NEVER, t=20).status


def pending_provider_down() -> AgentSessionStatus:
    return step(None, None, error=DOWN).status


def with_(status: AgentSessionStatus, **changes) -> AgentSessionStatus:
    return status.model_copy(update=changes)


# --- the table --------------------------------------------------------------------------------


def names(decision: Decision) -> tuple[str, ...]:
    """Actions as short names: `Ensure`, `Stop`, …; Events as `Type:Reason`."""
    return tuple(
        f"{action.type}:{action.reason}" if isinstance(action, Emit) else type(action).__name__
        for action in decision.actions
    )


@dataclass
class Row:
    id: str
    given: Callable[[], AgentSessionStatus | None]
    observation: Observation | None
    phase: str
    actions: tuple[str, ...]
    session: SessionInput = SESSION
    error: str | None = None
    t: float = 50
    expect: dict = field(default_factory=dict)
    """Status attributes (dotted) and their expected values; `ready.reason` etc. for conditions."""


ROWS = [
    # — created → Pending (→ Creating in the same call when nothing stops it)
    Row("new session goes pending then creating and asks to ensure its backing",
        lambda: None, ABSENT, c.PHASE_CREATING, ("Ensure", "Normal:Created"), t=0,
        expect={"start_time": "2025-03-01T09:00:00Z", "ready.reason": c.REASON_CREATING}),
    Row("new session with provider down stays pending",
        lambda: None, None, c.PHASE_PENDING, ("Normal:Created", "Warning:ProviderUnavailable"), error=DOWN, t=0,
        expect={"providerAvailable.status": "False", "ready.reason": c.REASON_PROVIDER_UNAVAILABLE}),
    Row("new session asked to be stopped is stopped without starting",
        lambda: None, ABSENT, c.PHASE_STOPPED, ("Normal:Created", "Normal:Stopped"),
        session=session(desired_state=c.STATE_STOPPED), t=0, expect={"stopped_reason": c.STOPPED_USER}),
    # — Pending + config invalid → Failed
    Row("new session with invalid config fails with config valid false",
        lambda: None, None, c.PHASE_FAILED, ("Normal:Created", "Warning:ConfigInvalid"), session=INVALID, t=0,
        expect={"configValid.status": "False", "configValid.reason": c.REASON_INVALID_CONFIGURATION,
                "ready.reason": c.REASON_INVALID_CONFIGURATION}),
    # — Pending + config valid → Creating
    Row("pending session whose provider came back is created",
        pending_provider_down, ABSENT, c.PHASE_CREATING, ("Ensure",),
        expect={"providerAvailable.status": "True", "observed_generation": 1}),
    # — Pending/Creating + provider unreachable → unchanged
    Row("pending session with provider still down is unchanged",
        pending_provider_down, None, c.PHASE_PENDING, (), error=DOWN),
    Row("creating session with provider down is unchanged and warns once",
        created, None, c.PHASE_CREATING, ("Warning:ProviderUnavailable",), error=DOWN,
        expect={"providerAvailable.message": DOWN, "ready.reason": c.REASON_CREATING}),
    # — Creating + provider ready → Running
    Row("creating session whose backing is ready runs",
        created, READY, c.PHASE_RUNNING, ("Normal:Started",),
        expect={"ready.status": "True", "provider.endpoint": "http://10.0.0.7:8080", "provider.id": "ags-demo"}),
    Row("creating session with a prompt delivers it when it runs",
        lambda: created(session(prompt="hello")), READY, c.PHASE_RUNNING, ("DeliverPrompt", "Normal:Started"),
        session=session(prompt="hello"), expect={"prompt.state": "Pending"}),
    Row("creating session still pulling its image keeps waiting",
        created, PULLING, c.PHASE_CREATING, (),
        expect={"ready.reason": c.REASON_CREATING, "ready.message": "ContainerCreating"}),
    Row("creating session whose backing runs but is not ready keeps waiting",
        created, Observation(BackingState.RUNNING, id="ags-demo"), c.PHASE_CREATING, ()),
    Row("creating session with absent backing ensures again without counting a restart",
        created, ABSENT, c.PHASE_CREATING, ("Ensure",), expect={"restart_count": 0, "crash_count": 0}),
    Row("creating session whose backing is still stopped ensures again",
        resuming, STOPPED_BACKING, c.PHASE_CREATING, ("Ensure",), session=session(generation=3),
        expect={"ready.reason": c.REASON_RESUMING}),
    # — Creating + start timeout / image pull error / rejection → Failed
    Row("creating session past its start timeout fails and stops its backing",
        created, PULLING, c.PHASE_FAILED, ("Stop", "Warning:Failed"), t=601,
        expect={"ready.reason": c.REASON_START_TIMEOUT, "stop_time": "2025-03-01T09:10:01Z"}),
    Row("creating session exactly at its start timeout keeps waiting",
        created, PULLING, c.PHASE_CREATING, (), t=600),
    Row("creating session with a permanent image pull error fails at once",
        created, IMAGE_PULL, c.PHASE_FAILED, ("Stop", "Warning:Failed"),
        expect={"ready.reason": "ImagePullBackOff", "ready.message": "image not found"}),
    Row("creating session rejected by the platform fails with the platform's message",
        created, Observation(BackingState.ABSENT, permanent=True, reason="Rejected", message="model not allowed"),
        c.PHASE_FAILED, ("Stop", "Warning:Failed"), expect={"ready.reason": "Rejected"}),
    Row("creating session asked to stop stops",
        created, PULLING, c.PHASE_STOPPING, ("Stop",), session=session(desired_state=c.STATE_STOPPED, generation=2),
        expect={"stopped_reason": c.STOPPED_USER}),
    Row("creating session whose agent crashes is restarted under on failure",
        created, EXITED_1, c.PHASE_CREATING, ("Stop", "Warning:Restarted"),
        expect={"crash_count": 1, "restart_count": 1}),
    Row("creating session crash looping past its backoff limit fails",
        created, Observation(BackingState.RUNNING, id="ags-demo", reason="CrashLoopBackOff", restarts=4),
        c.PHASE_FAILED, ("Stop", "Warning:Failed"),
        expect={"crash_count": 4, "restart_count": 4, "ready.reason": c.REASON_BACKOFF_LIMIT_EXCEEDED}),
    # — Running + spec.state Stopped / idle timeout / max duration → Stopping
    Row("running session set to stopped starts stopping",
        running, READY, c.PHASE_STOPPING, ("Stop",), session=session(desired_state=c.STATE_STOPPED, generation=2),
        expect={"stopped_reason": c.STOPPED_USER, "ready.reason": c.REASON_STOPPING, "observed_generation": 2}),
    Row("running session idle past its idle timeout stops and says why",  # Ready since t=10
        lambda: running(IDLE), READY, c.PHASE_STOPPING, ("Stop", "Normal:IdleStopped"), session=IDLE, t=70,
        expect={"stopped_reason": c.STOPPED_IDLE_TIMEOUT}),
    Row("running session with recent activity is not idle",
        lambda: with_(running(IDLE), last_activity_time="2025-03-01T09:00:30Z"), READY, c.PHASE_RUNNING, (),
        session=IDLE, t=60),
    Row("running session past its max duration stops",
        lambda: running(MAX), READY, c.PHASE_STOPPING, ("Stop",), session=MAX, t=300,
        expect={"stopped_reason": c.STOPPED_MAX_DURATION}),
    Row("running session past its max duration stops even when active",
        lambda: with_(running(MAX), last_activity_time="2025-03-01T09:04:59Z"), READY, c.PHASE_STOPPING, ("Stop",),
        session=MAX, t=300, expect={"stopped_reason": c.STOPPED_MAX_DURATION}),
    # — Stopping → Stopped
    Row("stopping session whose backing is gone is stopped",
        stopping_by_user, ABSENT, c.PHASE_STOPPED, ("Normal:Stopped",), session=session(desired_state=c.STATE_STOPPED, generation=2),
        expect={"stop_time": "2025-03-01T09:00:50Z", "ready.reason": c.REASON_STOPPED, "provider.endpoint": None}),
    Row("stopping session whose backing is stopped is stopped",
        stopping_by_user, STOPPED_BACKING, c.PHASE_STOPPED, ("Normal:Stopped",),
        session=session(desired_state=c.STATE_STOPPED, generation=2)),
    Row("stopping session whose backing still runs repeats stop",
        stopping_by_user, READY, c.PHASE_STOPPING, ("Stop",), session=session(desired_state=c.STATE_STOPPED, generation=2)),
    # — Stopped → Creating (resume)
    Row("stopped session resumes when state set to running",
        stopped_by_user, ABSENT, c.PHASE_CREATING, ("Ensure",), session=session(generation=3),
        expect={"stopped_reason": None, "crash_count": 0, "ready.reason": c.REASON_RESUMING,
                "start_time": "2025-03-01T09:00:50Z"}),
    Row("stopped session stays stopped while state is stopped",
        stopped_by_user, ABSENT, c.PHASE_STOPPED, (), session=session(desired_state=c.STATE_STOPPED, generation=2)),
    Row("idle stopped session stays stopped although spec says running",
        stopped_by_idle, ABSENT, c.PHASE_STOPPED, (), session=IDLE, t=500,
        expect={"stopped_reason": c.STOPPED_IDLE_TIMEOUT}),
    Row("idle stopped session wakes on a message",
        stopped_by_idle, ABSENT, c.PHASE_CREATING, ("Ensure",), session=replace(IDLE, wake_requested=True), t=500,
        expect={"stopped_reason": None, "ready.reason": c.REASON_RESUMING}),
    Row("idle stopped session ignores messages when wake on message is off",
        lambda: stopped_by_idle(session(settings(idle_timeout=60, wake_on_message=False))), ABSENT, c.PHASE_STOPPED, (),
        session=session(settings(idle_timeout=60, wake_on_message=False), wake_requested=True), t=500),
    Row("idle stopped session resumes when its spec changes",
        stopped_by_idle, ABSENT, c.PHASE_CREATING, ("Ensure",), session=replace(IDLE, generation=2), t=500),
    Row("idle stopped session resumes on a restart request",
        stopped_by_idle, ABSENT, c.PHASE_CREATING, ("Ensure", "Normal:Restarted"),
        session=replace(IDLE, restart_request="2025-03-01"), t=500,
        expect={"restart_request": "2025-03-01", "restart_count": 1}),
    Row("max duration stopped session stays stopped",
        stopped_by_max_duration, ABSENT, c.PHASE_STOPPED, (), session=MAX, t=900),
    Row("max duration stopped session wakes on a message",
        stopped_by_max_duration, ABSENT, c.PHASE_CREATING, ("Ensure",), session=replace(MAX, wake_requested=True), t=900),
    Row("resumed session emits resumed when it runs again",
        resuming, READY, c.PHASE_RUNNING, ("Normal:Resumed",), session=session(generation=3)),
    # — Running + exit 0 with Never → Completed
    Row("running session whose agent exits zero with restart policy never completes",
        lambda: running(NEVER), EXITED_0, c.PHASE_COMPLETED, ("Normal:Completed",), session=NEVER,
        expect={"stop_time": "2025-03-01T09:00:50Z", "ready.reason": c.REASON_COMPLETED}),
    Row("running session whose agent exits zero with on failure completes too",
        running, EXITED_0, c.PHASE_COMPLETED, ("Normal:Completed",)),
    Row("running session whose agent exits non zero with restart policy never fails",
        lambda: running(NEVER), EXITED_1, c.PHASE_FAILED, ("Warning:Failed",), session=NEVER,
        expect={"ready.reason": c.REASON_AGENT_EXITED,
                "ready.message": "the agent exited with code 1: panic: boom"}),
    Row("running session evicted with restart policy never fails with the eviction as reason",
        lambda: running(NEVER), Observation(BackingState.FAILED, reason="Evicted", message="node pressure"),
        c.PHASE_FAILED, ("Warning:Failed",), session=NEVER, expect={"ready.reason": "Evicted"}),
    # — Running + crash → restart per policy / backoffLimit, else Failed
    Row("running session whose agent crashes is restarted under on failure",
        running, EXITED_1, c.PHASE_CREATING, ("Stop", "Warning:Restarted"),
        expect={"crash_count": 1, "restart_count": 1, "ready.reason": c.REASON_AGENT_EXITED,
                "ready.message": "the agent exited with code 1: panic: boom; restarting (crash 1 of at most 3)"}),
    Row("running session crashing at its backoff limit fails",
        lambda: with_(running(), crash_count=3, restart_count=3), EXITED_1, c.PHASE_FAILED, ("Stop", "Warning:Failed"),
        expect={"crash_count": 4, "restart_count": 3, "ready.reason": c.REASON_BACKOFF_LIMIT_EXCEEDED}),
    Row("running session with backoff limit zero fails on its first crash",
        lambda: running(session(settings(backoff_limit=0))), EXITED_1, c.PHASE_FAILED, ("Stop", "Warning:Failed"),
        session=session(settings(backoff_limit=0))),
    Row("running session restarted by its backing counts the crashes",
        running, replace(READY, restarts=2), c.PHASE_RUNNING, ("Warning:Restarted",),
        expect={"restart_count": 2, "crash_count": 2, "provider.restarts": 2}),
    Row("running session restarted by its backing past the backoff limit fails",
        running, replace(NOT_READY, restarts=4), c.PHASE_FAILED, ("Stop", "Warning:Failed"),
        expect={"crash_count": 4, "ready.reason": c.REASON_BACKOFF_LIMIT_EXCEEDED}),
    Row("running session that is not ready stays running with ready false",
        running, NOT_READY, c.PHASE_RUNNING, (),
        expect={"ready.status": "False", "ready.reason": "CrashLoopBackOff", "ready.message": "back-off 10s"}),
    # — Running + backing vanished → Creating
    Row("running session with vanished backing is recreated and counts a restart",
        running, ABSENT, c.PHASE_CREATING, ("Ensure", "Warning:Recreated"),
        expect={"restart_count": 1, "crash_count": 0, "start_time": "2025-03-01T09:00:50Z"}),
    Row("running session whose backing was stopped behind its back is recreated",
        running, STOPPED_BACKING, c.PHASE_CREATING, ("Ensure", "Warning:Recreated"), expect={"restart_count": 1}),
    Row("running session whose backing is being deleted behind its back waits for it to go before recreating",
        running, TERMINATING, c.PHASE_CREATING, ("Warning:Recreated",), expect={"restart_count": 1}),
    # — a backing that terminates (pod grace period) is waited for: never deleted again, never collided with
    Row("creating session waits for its previous backing to terminate without ensuring",
        lambda: step(running(), EXITED_1, t=20).status, TERMINATING, c.PHASE_CREATING, (), t=21),
    Row("creating session ensures its backing once the previous one is gone",
        lambda: step(running(), EXITED_1, t=20).status, ABSENT, c.PHASE_CREATING, ("Ensure",), t=22),
    Row("stopping session waits for its terminating backing without stopping it again",
        stopping_by_user, TERMINATING, c.PHASE_STOPPING, (), session=session(desired_state=c.STATE_STOPPED, generation=2),
        t=21),
    Row("failed session replacing a backing that still terminates ensures nothing yet",
        failed_exited, TERMINATING, c.PHASE_CREATING, (), session=replace(NEVER, generation=2)),
    Row("running session with vanished backing and broken config fails",
        running, ABSENT, c.PHASE_FAILED, ("Warning:ConfigInvalid", "Warning:Failed"),
        session=INVALID, expect={"ready.reason": c.REASON_INVALID_CONFIGURATION}),
    # — Failed + new generation or restart annotation → Pending (→ Creating)
    Row("failed session restarts when its spec changes",
        failed_start_timeout, ABSENT, c.PHASE_CREATING, ("Ensure",), session=session(generation=2), t=800,
        expect={"crash_count": 0, "observed_generation": 2}),
    Row("failed session replaces its kept backing when its spec changes",
        failed_exited, EXITED_1, c.PHASE_CREATING, ("Stop",), session=replace(NEVER, generation=2)),
    Row("failed session restarts when the restart annotation changes",
        failed_start_timeout, ABSENT, c.PHASE_CREATING, ("Ensure",), session=session(restart_request="1"), t=800,
        expect={"restart_request": "1"}),
    Row("failed session stays failed when nothing changed",
        failed_start_timeout, ABSENT, c.PHASE_FAILED, (), t=800),
    Row("failed session whose restart annotation was removed stays failed",
        lambda: with_(failed_start_timeout(), restart_request="1"), ABSENT, c.PHASE_FAILED, (), t=800,
        expect={"restart_request": "1"}),
    Row("config failed session starts once its config is fixed",
        failed_config, ABSENT, c.PHASE_CREATING, ("Ensure",),
        expect={"configValid.status": "True", "ready.reason": c.REASON_CREATING}),
    Row("config failed session with still broken config stays failed",
        failed_config, None, c.PHASE_FAILED, (), session=replace(INVALID, generation=2)),
    Row("config failed session reports the current problems",
        failed_config, None, c.PHASE_FAILED, (), session=replace(INVALID, config_problems=("cycle: a -> b -> a",)),
        expect={"configValid.message": "cycle: a -> b -> a", "ready.message": "cycle: a -> b -> a"}),
    # — restart requests on Running / Stopped / Completed
    Row("running session restarts on a restart request",
        running, READY, c.PHASE_CREATING, ("Stop", "Normal:Restarted"), session=session(restart_request="r1"),
        expect={"restart_request": "r1", "restart_count": 1}),
    Row("stopped session with state stopped records but ignores a restart request",
        stopped_by_user, ABSENT, c.PHASE_STOPPED, (),
        session=session(desired_state=c.STATE_STOPPED, generation=2, restart_request="r1"),
        expect={"restart_request": "r1"}),
    Row("completed session restarts on a restart request",
        completed, EXITED_0, c.PHASE_CREATING, ("Stop",), session=replace(NEVER, restart_request="r1")),
    Row("completed session stays completed when its spec changes",
        completed, EXITED_0, c.PHASE_COMPLETED, (), session=replace(NEVER, generation=2)),
    # — any + deleted → Terminating → provider delete → finalizer removed
    Row("deleted running session deletes its backing and waits",
        running, READY, c.PHASE_TERMINATING, ("Delete",), session=session(deleting=True),
        expect={"ready.reason": c.REASON_TERMINATING}),
    Row("deleted session whose backing is gone removes its finalizer",
        running, ABSENT, c.PHASE_TERMINATING, ("Delete", "RemoveFinalizer"), session=session(deleting=True)),
    Row("deleted session that never had a backing only removes its finalizer",
        failed_config, None, c.PHASE_TERMINATING, ("RemoveFinalizer",), session=replace(INVALID, deleting=True)),
    Row("deleted session with broken config still deletes what it ran",
        running, None, c.PHASE_TERMINATING, ("Delete",),
        session=replace(INVALID, deleting=True)),
    Row("deleted session with provider down stays terminating and says deletion is blocked",
        running, None, c.PHASE_TERMINATING, ("Warning:ProviderUnavailable", "Warning:DeletionBlocked"),
        session=session(deleting=True), error=DOWN,
        expect={"ready.reason": c.REASON_DELETION_BLOCKED, "providerAvailable.status": "False"}),
    Row("deleted session whose deletion is still blocked says so once",
        lambda: step(running(), None, session(deleting=True), error=DOWN, t=20).status, None, c.PHASE_TERMINATING,
        (), session=session(deleting=True), error=DOWN, expect={"ready.reason": c.REASON_DELETION_BLOCKED}),
    Row("blocked deletion goes on once the provider answers again",
        lambda: step(running(), None, session(deleting=True), error=DOWN, t=20).status, ABSENT, c.PHASE_TERMINATING,
        ("Delete", "RemoveFinalizer"), session=session(deleting=True), expect={"ready.reason": c.REASON_TERMINATING}),
    Row("abandoned session removes its finalizer without touching its backing",
        running, None, c.PHASE_TERMINATING, ("RemoveFinalizer", "Warning:Abandoned"),
        session=session(deleting=True, abandon=True)),
    Row("abandoned session whose deletion was blocked lets go",
        lambda: step(running(), None, session(deleting=True), error=DOWN, t=20).status, None, c.PHASE_TERMINATING,
        ("RemoveFinalizer", "Warning:Abandoned"), session=session(deleting=True, abandon=True)),
    Row("abandoned session within the quiet period lets go at once",
        running, None, c.PHASE_TERMINATING, ("RemoveFinalizer", "Warning:Abandoned"),
        session=session(deleting=True, abandon=True, deletion_time=at(49.5))),
    Row("abandon is ignored on a session that is not being deleted",
        running, READY, c.PHASE_RUNNING, (), session=session(abandon=True)),
    Row("deleted session with broken config and an unavailable provider is blocked, not stuck silently",
        running, None, c.PHASE_TERMINATING, ("Warning:ProviderUnavailable", "Warning:DeletionBlocked"),
        session=replace(INVALID, deleting=True), error="provider 'tmux' is not available in this operator",
        expect={"ready.reason": c.REASON_DELETION_BLOCKED}),
    Row("terminating session whose backing is finally gone removes its finalizer",
        lambda: step(running(), READY, session(deleting=True), t=20).status, ABSENT, c.PHASE_TERMINATING,
        ("Delete", "RemoveFinalizer"), session=session(deleting=True)),
    Row("deleted running session keeps its status during the quiet period while its backing goes",
        running, TERMINATING, c.PHASE_RUNNING, ("Delete",), session=session(deleting=True, deletion_time=at(19)),
        t=20, expect={"ready.status": "True"}),
    Row("deleted running session whose backing outlives the quiet period shows terminating",
        running, TERMINATING, c.PHASE_TERMINATING, ("Delete",), session=session(deleting=True, deletion_time=at(10)),
        t=20, expect={"ready.reason": c.REASON_TERMINATING}),
    Row("deleted running session whose backing went within the quiet period removes its finalizer",
        running, ABSENT, c.PHASE_RUNNING, ("Delete", "RemoveFinalizer"),
        session=session(deleting=True, deletion_time=at(19)), t=20),
    Row("deleted stopped session is terminated too",
        stopped_by_user, ABSENT, c.PHASE_TERMINATING, ("Delete", "RemoveFinalizer"),
        session=session(desired_state=c.STATE_STOPPED, generation=2, deleting=True)),
    # — template changes, provider errors, health, config breakage while running
    Row("template change while running marks it not up to date without restarting",
        running, READY, c.PHASE_RUNNING, (), session=session(settings(config_hash="hash-2")),
        expect={"upToDate.status": "False", "upToDate.reason": c.REASON_TEMPLATE_CHANGED, "resolved.hash": "hash-1"}),
    Row("running session with provider down is unchanged",
        running, None, c.PHASE_RUNNING, ("Warning:ProviderUnavailable",), error=DOWN,
        expect={"ready.status": "True", "providerAvailable.status": "False"}),
    Row("running session failing its health probe warns",
        running, replace(READY, health=HealthProbe("Unhealthy", "GET /healthz: 503")), c.PHASE_RUNNING,
        ("Warning:Unhealthy",),
        expect={"healthy.status": "False", "health.state": "Unhealthy", "health.consecutive_failures": 1,
                "health.last_probe_time": "2025-03-01T09:00:50Z"}),
    Row("running session whose config breaks keeps running and warns",
        running, READY, c.PHASE_RUNNING, ("Warning:ConfigInvalid",), session=INVALID,
        expect={"configValid.status": "False", "ready.status": "True"}),
]


CONDITIONS = {
    "ready": c.COND_READY,
    "configValid": c.COND_CONFIG_VALID,
    "providerAvailable": c.COND_PROVIDER_AVAILABLE,
    "healthy": c.COND_HEALTHY,
    "upToDate": c.COND_UP_TO_DATE,
}


def lookup(status: AgentSessionStatus, path: str):
    head, *rest = path.split(".")
    value = get_condition(status.conditions, CONDITIONS[head]) if head in CONDITIONS else getattr(status, head)
    for name in rest:
        value = getattr(value, name)
    return value


@pytest.mark.parametrize("row", ROWS, ids=[row.id.replace(" ", "_") for row in ROWS])
def test_lifecycle_table(row: Row):
    given = row.given()
    snapshot = given.model_copy(deep=True) if given is not None else None

    decision = decide(row.session, given, row.observation, row.error, at(row.t))

    assert decision.status.phase == row.phase
    assert names(decision) == row.actions
    for path, expected in row.expect.items():
        assert lookup(decision.status, path) == expected, path
    assert given == snapshot, "decide() must not modify the status it was given"


def test_the_table_covers_every_phase_as_a_starting_point():
    starting = {row.given().phase if row.given() is not None else None for row in ROWS}
    assert starting >= {None, *c.PHASES}


# --- details of single rows -----------------------------------------------------------------


def test_created_session_records_prompt_counters_and_restart_annotation_without_restarting():
    s = session(prompt="write a haiku", restart_request="already-there")
    status = step(None, ABSENT, s).status
    assert status.prompt == PromptStatus(state="Pending", time="2025-03-01T09:00:00Z")
    assert (status.restart_count, status.crash_count) == (0, 0)
    assert status.restart_request == "already-there"
    assert get_condition(status.conditions, c.COND_CONFIG_VALID).status == "True"


def test_created_session_without_prompt_has_no_prompt_status():
    assert created().prompt is None


def test_invalid_config_message_lists_every_problem():
    status = failed_config()
    expected = "template 'missing' not found; agent.image is locked by template 'team'"
    assert get_condition(status.conditions, c.COND_CONFIG_VALID).message == expected
    events = [a for a in step(None, None, INVALID).actions if isinstance(a, Emit) and a.reason == c.EVENT_CONFIG_INVALID]
    assert events == [Emit(c.EVENT_TYPE_WARNING, c.EVENT_CONFIG_INVALID, expected)]


def test_starting_records_provider_resolved_chain_and_up_to_date_and_leaves_capabilities_alone():
    capabilities = CapabilitiesStatus(streaming=True, history=True)
    status = with_(pending_provider_down(), capabilities=capabilities)
    result = step(status, ABSENT, t=5).status
    assert result.phase == c.PHASE_CREATING
    assert result.start_time == "2025-03-01T09:00:05Z"
    assert result.provider.type == c.PROVIDER_POD
    assert [(e.name, e.generation) for e in result.resolved.template_chain] == [("base", 2), ("team", 5)]
    assert result.resolved.hash == "hash-1"
    assert get_condition(result.conditions, c.COND_UP_TO_DATE).status == "True"
    assert result.capabilities == capabilities


def test_provider_error_does_not_consume_the_generation_so_the_intent_survives():
    status = stopped_by_idle()
    edited = replace(IDLE, generation=2)
    held = step(status, None, edited, t=500, error=DOWN)
    assert held.status.phase == c.PHASE_STOPPED
    assert held.status.observed_generation == 1
    assert held.requeue_after == PROVIDER_RETRY_SECONDS
    resumed = step(held.status, ABSENT, edited, t=510)
    assert resumed.status.phase == c.PHASE_CREATING
    assert resumed.status.observed_generation == 2


def test_provider_unavailable_is_emitted_only_when_the_condition_flips():
    first = step(created(), None, t=10, error=DOWN)
    second = step(first.status, None, t=20, error="timeout")
    assert names(first) == ("Warning:ProviderUnavailable",)
    assert names(second) == ()
    condition = get_condition(second.status.conditions, c.COND_PROVIDER_AVAILABLE)
    assert (condition.message, condition.last_transition_time) == ("timeout", "2025-03-01T09:00:10Z")


def test_provider_recovery_sets_provider_available_true_without_an_event():
    down = step(created(), None, t=10, error=DOWN).status
    back = step(down, PULLING, t=20)
    assert get_condition(back.status.conditions, c.COND_PROVIDER_AVAILABLE).status == "True"
    assert names(back) == ()


def test_start_timeout_message_says_what_it_was_waiting_for():
    decision = step(created(), PULLING, t=601)
    failed = [a for a in decision.actions if isinstance(a, Emit)][0]
    assert failed.message == "StartTimeout: the session did not become ready within 600s: ContainerCreating"


def test_creating_session_asks_to_be_requeued_by_the_start_deadline_at_the_latest():
    assert step(created(), PULLING, t=598).requeue_after == 2
    assert step(created(), PULLING, t=10).requeue_after == POLL_SECONDS


def test_a_backing_that_announces_its_changes_is_not_polled_quickly_while_the_provider_works():
    # The pod provider's store is fed by the operator's pod watch: its scheduling, pulling and
    # removal each trigger a reconcile, so a quick poll only repeats what is known (a third of a
    # 1,000-pod burst's reconciles were these polls).
    pulling = replace(PULLING, announced=True)
    assert step(created(), pulling, t=10).requeue_after == ANNOUNCED_POLL_SECONDS
    assert step(created(), pulling, t=590).requeue_after == 10  # the start deadline still comes first
    stop = session(desired_state=c.STATE_STOPPED, generation=2)
    stopping = step(running(), READY, stop, t=20).status
    still = replace(READY, announced=True)
    assert step(stopping, still, stop, t=30).requeue_after == ANNOUNCED_POLL_SECONDS
    assert step(stopping, READY, stop, t=30).requeue_after == POLL_SECONDS  # (http, tmux: nothing announces)
    # Running but not serving: only its runtime can tell that the agent failed to start.
    starting = Observation(BackingState.RUNNING, id="ags-demo", endpoint="http://10.0.0.7:8080", announced=True)
    assert step(created(), starting, t=2).requeue_after == STARTING_POLL_SECONDS
    assert step(created(), starting, t=STARTING_WINDOW_SECONDS + 5).requeue_after == POLL_SECONDS


def test_running_session_asks_to_be_requeued_at_its_nearest_deadline():
    s = session(settings(idle_timeout=600, max_duration=3600))
    status = with_(running(s), last_activity_time="2025-03-01T09:05:00Z")
    assert step(status, READY, s, t=400).requeue_after == 500  # idle at 09:15:00
    assert step(running(), READY, t=400).requeue_after is None  # no deadline: wait for events


def test_idle_timeout_after_resume_counts_from_when_it_is_ready_again():
    # A message woke it: it is sent once the session is Ready, so idleness counts from then, not
    # from the start of the resume (a start longer than the timeout would stop it at once).
    resumed = step(stopped_by_idle(), ABSENT, replace(IDLE, wake_requested=True), t=500).status
    running_again = step(resumed, READY, IDLE, t=510).status
    assert running_again.phase == c.PHASE_RUNNING
    assert step(running_again, READY, IDLE, t=560).status.phase == c.PHASE_RUNNING
    assert step(running_again, READY, IDLE, t=570).status.phase == c.PHASE_STOPPING


def test_idle_stop_event_says_how_long_it_was_idle():
    decision = step(running(IDLE), READY, IDLE, t=70)  # Ready since t=10
    assert Emit(c.EVENT_TYPE_NORMAL, c.EVENT_IDLE_STOPPED, "no activity for 60s; stopping the session") in decision.actions


def test_resume_clears_stopped_reason_and_crash_count_but_keeps_restart_count():
    status = with_(stopped_by_user(), crash_count=2, restart_count=5)
    result = step(status, ABSENT, session(generation=3), t=60).status
    assert (result.stopped_reason, result.crash_count, result.restart_count) == (None, 0, 5)


def test_failed_to_pending_to_creating_happens_in_one_deterministic_call():
    status = with_(failed_start_timeout(), crash_count=3)
    s = session(generation=2, restart_request="again")
    first = step(status, ABSENT, s, t=800)
    second = step(status, ABSENT, s, t=800)
    assert first == second
    assert first.status.phase == c.PHASE_CREATING
    assert (first.status.crash_count, first.status.restart_request) == (0, "again")


def test_template_change_is_picked_up_at_the_next_start():
    changed = session(settings(config_hash="hash-2", template_chain=(("base", 3),)), generation=2)
    not_current = step(running(), READY, changed, t=20).status
    assert get_condition(not_current.conditions, c.COND_UP_TO_DATE).status == "False"
    restarted = step(not_current, READY, replace(changed, restart_request="go"), t=30).status
    assert restarted.resolved.hash == "hash-2"
    assert [(e.name, e.generation) for e in restarted.resolved.template_chain] == [("base", 3)]
    assert get_condition(restarted.conditions, c.COND_UP_TO_DATE).status == "True"


def test_health_probe_time_moves_only_when_health_changes():
    status = running()
    assert status.health.last_probe_time == "2025-03-01T09:00:10Z"
    same = step(status, READY, t=100).status
    assert same.health == status.health
    sick = step(same, replace(READY, health=HealthProbe("Unhealthy", "503")), t=200).status
    assert (sick.health.last_probe_time, sick.health.consecutive_failures) == ("2025-03-01T09:03:20Z", 1)
    sicker = step(sick, replace(READY, health=HealthProbe("Unhealthy", "timeout")), t=300)
    assert sicker.status.health.consecutive_failures == 2
    assert names(sicker) == ()  # already unhealthy: no second Unhealthy event


def test_stopped_session_shows_unknown_health_instead_of_its_last_run():
    status = stopped_by_user()
    assert status.health.state == c.HEALTH_UNKNOWN
    assert get_condition(status.conditions, c.COND_HEALTHY).status == "Unknown"


@pytest.mark.parametrize(
    ("spec_title", "agent_title", "expected"),
    [
        pytest.param("My title", "Agent title", "My title", id="spec-title-wins"),
        pytest.param(None, "Agent title", "Agent title", id="agent-title-otherwise"),
        pytest.param(None, None, None, id="no-title"),
    ],
)
def test_effective_title(spec_title, agent_title, expected):
    info = SessionInfoStatus(title=agent_title, meta={"k": 1}) if agent_title else None
    status = with_(running(), session_info=info)
    result = step(status, READY, session(title=spec_title), t=20).status
    assert result.title == expected
    assert result.session_info == info


def test_observed_generation_follows_the_generation_acted_on():
    result = step(running(), READY, session(generation=7), t=20).status
    assert result.observed_generation == 7
    assert {cond.observed_generation for cond in result.conditions} == {7}


def test_prompt_is_not_offered_once_delivered_or_while_not_ready():
    s = session(prompt="hello")
    assert names(step(delivered(s), READY, s, t=20)) == ()
    assert names(step(running(s), NOT_READY, s, t=20)) == ()


def test_prompt_accepted_by_the_runtime_is_recorded_delivered_in_the_same_decision():
    s = session(prompt="hello")
    decision = step(created(s), replace(READY, prompt_accepted=True), s, t=10)
    assert decision.status.phase == c.PHASE_RUNNING
    assert decision.status.prompt == PromptStatus(state=c.PROMPT_DELIVERED, time="2025-03-01T09:00:10Z")
    assert names(decision) == ("Normal:Started",)  # the transition's event, no second send


def test_prompt_the_runtime_did_not_take_is_recorded_delivering_and_retried_soon():
    s = session(prompt="hello")
    decision = step(created(s), replace(READY, prompt_accepted=False), s, t=10)
    assert decision.status.prompt == PromptStatus(state=c.PROMPT_DELIVERING, time="2025-03-01T09:00:10Z")
    assert names(decision) == ("Normal:Started",)
    assert decision.requeue_after == PROMPT_RETRY_SECONDS


def test_prompt_left_delivering_is_sent_again_until_the_runtime_takes_it():
    s = session(prompt="hello")
    delivering = step(created(s), replace(READY, prompt_accepted=False), s, t=10).status
    assert names(step(delivering, READY, s, t=20)) == ("DeliverPrompt",)
    assert step(delivering, replace(READY, prompt_accepted=False), s, t=20).status == delivering  # no write
    taken = step(delivering, replace(READY, prompt_accepted=True), s, t=20).status
    assert taken.prompt == PromptStatus(state=c.PROMPT_DELIVERED, time="2025-03-01T09:00:20Z")


def test_prompt_is_not_offered_without_a_runtime_endpoint():
    s = session(prompt="hello")
    assert names(step(running(s), replace(READY, endpoint=None), s, t=20)) == ()


def test_prompt_is_sent_under_an_id_derived_from_the_session_uid():
    assert prompt_message_id("uid-1") == "prompt-uid-1" == prompt_message_id(SESSION.uid)


def test_deleted_session_in_its_quiet_period_comes_back_when_the_quiet_period_ends():
    decision = step(running(), TERMINATING, session(deleting=True, deletion_time=at(19.5)), t=20)
    assert decision.status == running()
    assert decision.requeue_after == 1.5


def test_deleted_session_in_its_quiet_period_keeps_its_observed_generation_though_deletion_bumped_it():
    # The API server bumps metadata.generation when it sets deletionTimestamp.
    decision = step(running(), TERMINATING, session(deleting=True, deletion_time=at(19.5), generation=2), t=20)
    assert decision.status == running()
    assert names(decision) == ("Delete",)


def test_deleted_session_with_known_backing_but_no_observation_waits_for_one():
    decision = step(running(), None, session(deleting=True), t=20)
    assert names(decision) == ("Delete",)
    assert decision.requeue_after == POLL_SECONDS


def test_foreign_reasons_that_the_api_would_reject_fall_back_to_our_own():
    obs = Observation(BackingState.PENDING, reason="image pull: denied", message="denied", permanent=True)
    assert get_condition(step(created(), obs, t=5).status.conditions, c.COND_READY).reason == c.REASON_FAILED


def test_idle_stopped_session_set_to_stopped_by_gitops_stays_and_resumes_when_set_back_to_running():
    parked = step(stopped_by_idle(), ABSENT, session(settings(idle_timeout=60), desired_state=c.STATE_STOPPED,
                                                     generation=2), t=500).status
    assert (parked.phase, parked.observed_generation) == (c.PHASE_STOPPED, 2)
    resumed = step(parked, ABSENT, replace(IDLE, generation=3), t=600).status
    assert resumed.phase == c.PHASE_CREATING


def test_restart_request_that_hit_a_provider_error_is_not_consumed():
    s = session(restart_request="r1")
    held = step(running(), None, s, t=20, error=DOWN)
    assert (held.status.phase, held.status.restart_request) == (c.PHASE_RUNNING, None)
    assert names(step(held.status, READY, s, t=30)) == ("Stop", "Normal:Restarted")


def test_a_lower_restart_count_means_a_new_backing_whose_restarts_are_all_new():
    status = step(running(), replace(READY, restarts=2), t=20).status
    recreated = step(with_(status, provider=status.provider.model_copy(update={"restarts": 2})), ABSENT, t=30).status
    again = step(recreated, replace(READY, restarts=1), t=40).status
    assert (again.provider.restarts, again.crash_count, again.restart_count) == (1, 3, 4)


def test_stopping_a_session_clears_its_endpoint_but_keeps_its_id():
    status = stopped_by_user()
    assert (status.provider.id, status.provider.endpoint) == ("ags-demo", None)


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(SESSION, None, ABSENT, None, datetime(2025, 3, 1, 9, 0, 0))


# --- §8: a converged session produces an identical status and no actions ----------------------


@dataclass
class Converged:
    id: str
    given: Callable[[], AgentSessionStatus]
    observation: Observation | None
    session: SessionInput = SESSION
    error: str | None = None
    repeats: tuple[str, ...] = ()
    """Documented idempotent repeats allowed in this state."""
    times: tuple[float, ...] = (1000, 1001, 5000)
    """Later calls, all before the case's next deadline."""


CONVERGED = [
    Converged("running", running, READY),
    Converged("running with deadlines ahead", lambda: running(session(settings(idle_timeout=3600, max_duration=7200))),
              READY, session(settings(idle_timeout=3600, max_duration=7200)), times=(1000, 2000, 3599)),
    Converged("running after self restarts", lambda: step(running(), replace(READY, restarts=2), t=20).status,
              replace(READY, restarts=2)),
    Converged("running unhealthy", lambda: step(running(), replace(READY, health=HealthProbe("Unhealthy", "503")),
                                                t=20).status, replace(READY, health=HealthProbe("Unhealthy", "503"))),
    Converged("running not ready", lambda: step(running(), NOT_READY, t=20).status, NOT_READY),
    Converged("running with template changed", lambda: step(running(), READY, session(settings(config_hash="h2")),
                                                            t=20).status, READY, session(settings(config_hash="h2"))),
    Converged("running with prompt delivered", lambda: delivered(session(prompt="hi")), READY, session(prompt="hi")),
    Converged("running with prompt pending repeats only DeliverPrompt", lambda: running(session(prompt="hi")), READY,
              session(prompt="hi"), repeats=("DeliverPrompt",)),
    Converged("running with prompt delivering repeats only DeliverPrompt",
              lambda: step(created(session(prompt="hi")), replace(READY, prompt_accepted=False), session(prompt="hi"),
                           t=10).status, READY, session(prompt="hi"), repeats=("DeliverPrompt",)),
    Converged("creating while pulling", lambda: step(created(), PULLING, t=10).status, PULLING, times=(20, 100, 600)),
    Converged("stopping repeats only Stop", stopping_by_user, READY, session(desired_state=c.STATE_STOPPED, generation=2),
              repeats=("Stop",)),
    Converged("stopped by user", stopped_by_user, ABSENT, session(desired_state=c.STATE_STOPPED, generation=2)),
    Converged("stopped by idle timeout", stopped_by_idle, ABSENT, IDLE),
    Converged("stopped by max duration", stopped_by_max_duration, ABSENT, MAX),
    Converged("running before its max duration", lambda: running(MAX), READY, MAX, times=(100, 200, 299)),
    Converged("completed", completed, EXITED_0, NEVER),
    Converged("failed on start timeout", failed_start_timeout, ABSENT),
    Converged("failed on agent exit", failed_exited, EXITED_1, NEVER),
    Converged("failed on backoff limit", lambda: step(running(), replace(NOT_READY, restarts=9), t=20).status,
              replace(NOT_READY, restarts=9)),
    Converged("failed on config", failed_config, None, INVALID),
    Converged("pending with provider down", pending_provider_down, None, error=DOWN),
    Converged("running with provider down", lambda: step(running(), None, t=20, error=DOWN).status, None, error=DOWN),
    Converged("terminating repeats only Delete", lambda: step(running(), READY, session(deleting=True), t=20).status,
              READY, session(deleting=True), repeats=("Delete",)),
]


@pytest.mark.parametrize("case", CONVERGED, ids=[case.id.replace(" ", "_") for case in CONVERGED])
def test_converged_session_returns_identical_status_and_no_actions(case: Converged):
    status = case.given()
    for later in case.times:
        again = decide(case.session, status, case.observation, case.error, at(later))
        assert again.status == status
        assert again.status.model_dump(mode="json", by_alias=True, exclude_none=True) == status.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        assert names(again) == case.repeats


def test_converged_status_survives_a_round_trip_through_the_api():
    """What the reconciler compares: the status as read back from the cluster (camelCase JSON)."""
    status = running(session(settings(idle_timeout=3600)))
    read_back = AgentSessionStatus.model_validate(status.model_dump(mode="json", by_alias=True, exclude_none=True))
    again = decide(session(settings(idle_timeout=3600)), read_back, READY, None, at(1000)).status
    assert again.model_dump(mode="json", by_alias=True, exclude_none=True) == read_back.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )


def test_actions_are_plain_values():
    assert Ensure() == Ensure() and Stop() == Stop() and Delete() == Delete() and RemoveFinalizer() == RemoveFinalizer()
    assert DeliverPrompt("x") == DeliverPrompt("x")
    assert Emit.warning("Failed", "m") == Emit("Warning", "Failed", "m")


def test_lifecycle_settings_read_the_builtin_defaults_from_the_resolved_configuration():
    from agent_sessions.config import BUILTIN_DEFAULTS, resolve_config

    body = {"metadata": {"name": "demo", "namespace": "team-a"},
            "spec": {"agent": {"image": "agent:1"}, "lifecycle": {"backoffLimit": None, "idleTimeout": "1m"}}}
    settings = LifecycleSettings.from_resolved(resolve_config(body, {}))
    defaults = BUILTIN_DEFAULTS["lifecycle"]
    assert (settings.provider, settings.restart_policy, settings.backoff_limit, settings.wake_on_message) == (
        BUILTIN_DEFAULTS["provider"], defaults["restartPolicy"], defaults["backoffLimit"], defaults["wakeOnMessage"])
    assert (settings.start_timeout, settings.idle_timeout, settings.max_duration) == (600, 60, None)
    assert LifecycleSettings(provider=c.PROVIDER_POD) == replace(settings, idle_timeout=None, config_hash="")


# --- deletion that cannot go on, abandon, titles (issue 10) ---------------------------------


def test_blocked_deletion_says_what_is_retried_and_how_to_give_up_and_retries():
    decision = step(running(), None, session(deleting=True), error=DOWN, t=20)
    ready_cond = get_condition(decision.status.conditions, c.COND_READY)
    assert ready_cond.status == "False" and ready_cond.reason == c.REASON_DELETION_BLOCKED
    assert ready_cond.message.startswith(f"cannot delete the pod backing ags-demo: {DOWN}; retrying with backoff")
    assert ready_cond.message.endswith(
        "To give up on it and let the session go, annotate the session:"
        f" kubectl annotate agentsession demo {c.ANNOTATION_ABANDON}=true"
        " (the backing is then left behind, to be removed by hand)"
    )
    blocked = [a for a in decision.actions if isinstance(a, Emit) and a.reason == c.EVENT_DELETION_BLOCKED]
    assert [e.message for e in blocked] == [ready_cond.message]
    assert decision.requeue_after == PROVIDER_RETRY_SECONDS
    assert not any(isinstance(a, (Delete, RemoveFinalizer)) for a in decision.actions)


def test_abandoning_names_what_may_be_left_behind():
    decision = step(running(), None, session(deleting=True, abandon=True), t=20)
    (event,) = [a for a in decision.actions if isinstance(a, Emit)]
    assert event.type == c.EVENT_TYPE_WARNING and event.reason == c.EVENT_ABANDONED
    assert event.message == (
        f'deletion of the pod backing ags-demo abandoned ({c.ANNOTATION_ABANDON}: "true"): it was not deleted'
        " and may still exist; the finalizer is removed"
    )
    assert not any(isinstance(a, Delete) for a in decision.actions)


@pytest.mark.parametrize(
    ("spec_title", "agent_title", "expected"),
    [
        pytest.param("\x1b[31mred\x1b[0m alert\x07", None, "red alert", id="author-title-escapes"),
        pytest.param(None, "Fix\x00 the\x1b]0;pwned\x07 build\x7f", "Fix the build", id="agent-title-controls"),
        pytest.param("two\nlines\tand tab", None, "two lines and tab", id="one-line"),
        pytest.param("\x1b[2J\x00", None, None, id="nothing-printable-is-no-title"),
        pytest.param("plain title", "ignored", "plain title", id="plain"),
    ],
)
def test_titles_are_written_without_control_characters(spec_title, agent_title, expected):
    given = running()
    if agent_title is not None:
        given.session_info = SessionInfoStatus(title=agent_title)
    decision = step(given, READY, session(title=spec_title), t=20)
    assert decision.status.title == expected
