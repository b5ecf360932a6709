"""The lifecycle of a session (§4) as one pure function: `decide()`.

Level-based, not edge-based. The reconciler does not remember what happened; each time it runs
(a spec change, a pod event, a slow timer, an operator restart) it reads the session, asks the
provider to observe its backing and calls `decide(session, status, observation, provider_error,
now)`. The answer — the status the session should have and the actions to take — depends only on
those inputs, so a missed or repeated event can never leave a session in a wrong state, and every
row of the lifecycle table is a table-driven unit test.

Converged means silent (§8). Calling `decide()` again with the status it returned, the same
observation and a later `now` (before any deadline) returns an equal status and no actions, so a
converged session costs no status write and posts no Event, and an operator restart over N
converged sessions costs nothing. The only exceptions are idempotent repeats of work still under
way, which are harmless by contract:

* `Ensure` while Creating and the backing is absent or stopped (the create/resume may not be
  visible yet);
* `Stop` while Stopping and the backing has not stopped yet;
* `Delete` while Terminating (and `RemoveFinalizer` once the backing is gone);
* `DeliverPrompt` while Running, Ready and `status.prompt.state` is `Pending` or `Delivering`,
  until the runtime's answer is decided on (see `prompt`: the runtime de-duplicates by the
  message id, which makes delivery exactly-once).

Events are posted only for transitions (a phase change, a condition flip, a counted crash),
never for a call that changed nothing.

Chained transitions. Transitions that need no news from the provider are taken in the same call,
so one reconcile does as much as it can: a new session goes created → Pending → Creating (Ensure)
in one call; a Failed session whose spec changed goes Failed → Pending → Creating; a session with
invalid configuration goes Pending → Failed. Transitions that wait for the provider
(Creating → Running, Stopping → Stopped) happen on a later call, after a fresh observation. The
chain is deterministic and bounded.

Generations. `status.observedGeneration` is set to `metadata.generation` on every call that acted
(every call without a provider error), so "the spec changed since we last acted" is exactly
`generation != status.observedGeneration`. It is what resumes a session stopped for idleness
when its spec is edited, and what lifts a session out of Failed. When the provider cannot be
reached nothing is acted upon and the generation is not consumed: the pending intent survives.

Restart requests. The `agentsession.dev/restart` annotation's value is recorded in
`status.restartRequest` when acted upon; a different non-empty value is a new request. Removing
the annotation is not a request. A session created with the annotation already set records it
without restarting.

Choices where §4 is silent:

* `spec.state: Stopped` wins over everything but deletion: a restart request on a session that
  should be stopped is recorded and ignored; a new session created stopped goes straight to
  Stopped without a backing.
* A Completed session restarts only on a restart request (editing the spec of a finished run
  does not re-run it); a Failed one also on a spec change, as §4 says.
* A session whose configuration breaks while it runs keeps running (`ConfigValid=False`,
  ConfigInvalid event); it fails only when it would have to start again.
* The backing is stopped on failures where it would otherwise keep consuming resources or
  retrying (start timeout, permanent error, backoff limit). It is kept when the agent ended by
  itself (Completed, or Failed with `restartPolicy: Never`), so its logs can still be read.
* Deletion never depends on the configuration: a session whose configuration is invalid still
  deletes what status says it ran (`status.provider`) and loses its finalizer. A backing that
  cannot be deleted because the provider cannot be reached is retried with backoff, with
  Ready=False/DeletionBlocked saying so and how to give up: the `agentsession.dev/abandon: "true"`
  annotation removes the finalizer without a provider call (an `Abandoned` event names what may
  be left behind).
* A restart or re-creation resets `startTime`, so idle, maximum-duration and start deadlines
  count from the latest start (see `deadlines`).

Where the parts are: this module has the phase handlers and what is refreshed on every call;
`transitions` the ways into each phase; `decision_state` the working state of one call;
`prompt` the first message; `deadlines`, `health`, `conditions` the pure pieces they use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from agent_sessions.api import constants as c
from agent_sessions.api.session import AgentSessionStatus, ProviderStatus

from .actions import Decision, Delete, Emit, Ensure, RemoveFinalizer, Stop
from .conditions import (
    compute_config_valid_condition,
    compute_healthy_condition,
    compute_provider_available_condition,
    compute_ready_condition,
    compute_up_to_date_condition,
)
from .deadlines import idle_deadline, max_duration_deadline, seconds_until, start_deadline
from .decision_state import (
    GONE,
    POLL_SECONDS,
    PROVIDER_RETRY_SECONDS,
    RUNNING_PHASES,
    STARTING_POLL_SECONDS,
    STARTING_WINDOW_SECONDS,
)
from .health import next_health, resting_health
from .inputs import SessionInput
from .messages import (
    STOPPED_MESSAGES,
    abandoned_message,
    deletion_blocked_message,
    describe_observation,
    format_seconds,
)
from .observation import BackingState, Observation
from .prompt import initial_prompt, next_prompt_step
from .printable import printable_line
from .timestamps import parse_timestamp, require_aware
from .transitions import Transitions

__all__ = ["POLL_SECONDS", "PROVIDER_RETRY_SECONDS", "TERMINATING_QUIET_SECONDS", "decide"]

_MAX_CHAIN: Final = 4
TERMINATING_QUIET_SECONDS: Final = 2.0
"""A deleted session whose backing is not gone yet keeps its last status this long before
`Terminating` is written: most backings go within a second (the agent exits on SIGTERM), and a
status written for an object about to vanish is a wasted write. A slow teardown still shows."""


def decide(
    session: SessionInput,
    status: AgentSessionStatus | None,
    observation: Observation | None,
    provider_error: str | None,
    now: datetime,
) -> Decision:
    """The status `session` should have and the actions that get it there.

    `status` is the status read from the cluster (None for a new session); it is not modified.
    `observation` is what the provider saw (None when it was not asked, e.g. the configuration is
    invalid). `provider_error` is set when the provider could not be reached (observe or an action
    raised `ProviderUnavailable`): the phase is then left unchanged, `ProviderAvailable=False`,
    and `requeue_after` asks for a retry. `now` must be timezone-aware.
    """
    require_aware(now)
    return _Decider(session, status, observation, provider_error, now).run()



class _Decider(Transitions):
    """The phase handlers and the parts of the status refreshed on every call."""

    # --- the call -------------------------------------------------------------------------

    def run(self) -> Decision:
        st = self.status
        if st.phase is None:
            self._create()
        title = self.session.title or (st.session_info.title if st.session_info else None)
        st.title = printable_line(title) or None if title else None  # shown by `kubectl get`
        self._refresh_config_valid()
        self._refresh_provider_available()

        if self.session.deleting:
            self._terminate()
        elif self.provider_error is not None:
            self._hold()
            self._refresh_health()
        else:
            self._run_phases()
            self._mirror_backing()
            self._refresh_health()
            self._refresh_up_to_date()
            self._offer_prompt()

        if self.frozen:
            return Decision(status=self.status, actions=tuple(self.work),
                            requeue_after=min(self.requeue) if self.requeue else None)
        st.observed_generation = self.generation
        if st.conditions and self.generation is not None:
            st.conditions = [
                cond if cond.observed_generation == self.generation
                else cond.model_copy(update={"observed_generation": self.generation})
                for cond in st.conditions
            ]
        return Decision(
            status=st,
            actions=(*self.work, *self.events),
            requeue_after=min(self.requeue) if self.requeue else None,
        )

    def _run_phases(self) -> None:
        handlers = {
            c.PHASE_PENDING: self._pending,
            c.PHASE_CREATING: self._creating,
            c.PHASE_RUNNING: self._running,
            c.PHASE_STOPPING: self._stopping,
            c.PHASE_STOPPED: self._stopped,
            c.PHASE_COMPLETED: self._completed,
            c.PHASE_FAILED: self._failed,
            c.PHASE_TERMINATING: lambda: False,  # deletion cannot be undone; wait for it
        }
        for _ in range(_MAX_CHAIN):
            assert self.status.phase is not None
            if not handlers[self.status.phase]():
                return
        raise AssertionError(f"lifecycle did not settle within {_MAX_CHAIN} transitions")

    # --- phases: each handler returns True when the new phase must be evaluated at once ----

    def _create(self) -> None:
        st = self.status
        st.phase = c.PHASE_PENDING
        st.restart_count = st.restart_count or 0
        st.crash_count = 0
        st.restart_request = self.session.restart_request  # recorded, not a request
        st.prompt = initial_prompt(self.session, self.stamp)
        self._ready(compute_ready_condition(c.PHASE_PENDING))
        self._emit(Emit.normal(c.EVENT_CREATED, "session created"))

    def _pending(self) -> bool:
        self._record_restart_request()
        if self.settings is None:
            self.status.phase = c.PHASE_FAILED
            self._ready(compute_ready_condition(c.PHASE_FAILED, reason=c.REASON_INVALID_CONFIGURATION,
                                                message=self._problems()))
            return False
        if self.session.desired_state == c.STATE_STOPPED:
            self.status.phase = c.PHASE_STOPPED
            self.status.stopped_reason = c.STOPPED_USER
            self._ready(compute_ready_condition(c.PHASE_STOPPED, message=STOPPED_MESSAGES[c.STOPPED_USER]))
            self._emit(Emit.normal(c.EVENT_STOPPED, "session stopped (spec.state: Stopped)"))
            return False
        self._start(resume=False, replace=self.replace_backing, reset_crashes=True)
        return False

    def _active_interruption(self) -> bool | None:
        """What interrupts Creating and Running alike: a stop or restart request, crashes the
        backing restarted by itself, a permanent failure. None when nothing interrupts."""
        if self.session.desired_state == c.STATE_STOPPED:
            return self._begin_stop(c.STOPPED_USER)
        if self._restart_requested():
            return self._restart()
        obs = self.observation
        if obs is not None:
            if self._count_self_restarts():
                return False
            if obs.permanent:
                return self._fail(obs.reason, obs.message or "the provider reported a permanent failure", stop=True)
        return None

    def _creating(self) -> bool:
        if (interrupted := self._active_interruption()) is not None:
            return interrupted
        obs = self.observation
        if obs is not None:
            if obs.state == BackingState.RUNNING and obs.ready:
                return self._became_running()
            if obs.state == BackingState.SUCCEEDED:
                return self._complete()
            if obs.state == BackingState.FAILED:
                return self._crashed()

        deadline = start_deadline(self.status, self.settings)
        if deadline is not None and self.now > deadline:
            timeout = self.settings.start_timeout if self.settings else None
            detail = f": {describe_observation(obs)}" if obs is not None and (obs.reason or obs.message) else ""
            message = f"the session did not become ready within {format_seconds(timeout)}{detail}"
            return self._fail(c.REASON_START_TIMEOUT, message, stop=True)

        if obs is None or obs.state in GONE:
            self.work.append(Ensure())  # idempotent repeat: the create/resume may not show yet
        # TERMINATING: the previous backing still holds the name; its removal triggers the ensure.
        reason = self._ready_reason()
        if not (self.status.crash_count and reason not in (c.REASON_CREATING, c.REASON_RESUMING)):
            # (After a crash, Ready keeps saying why it restarts until the new backing serves.)
            self._ready(compute_ready_condition(
                c.PHASE_CREATING,
                reason=c.REASON_RESUMING if reason == c.REASON_RESUMING else c.REASON_CREATING,
                message=describe_observation(obs) if obs is not None and (obs.reason or obs.message) else None,
            ))
        starting = obs is not None and not obs.ready and (
            obs.state == BackingState.RUNNING or (obs.state == BackingState.PENDING and bool(obs.endpoint)))
        young = (started := parse_timestamp(self.status.start_time)) is not None and \
            (self.now - started).total_seconds() < STARTING_WINDOW_SECONDS
        # Running but not serving yet: only its runtime can say that the agent failed to start.
        self._poll(deadline, (STARTING_POLL_SECONDS if young else POLL_SECONDS) if starting else None)
        return False

    def _running(self) -> bool:
        if (interrupted := self._active_interruption()) is not None:
            return interrupted
        obs = self.observation
        if obs is not None:
            if obs.state in GONE or obs.state == BackingState.TERMINATING:
                return self._recreate(obs)
            if obs.state == BackingState.SUCCEEDED:
                return self._complete()
            if obs.state == BackingState.FAILED:
                return self._crashed()
            if obs.state == BackingState.RUNNING and obs.ready:
                self._ready(compute_ready_condition(c.PHASE_RUNNING, ready=True))
            else:
                self._ready(compute_ready_condition(c.PHASE_RUNNING, reason=obs.reason, message=obs.message or None))

        max_at = max_duration_deadline(self.status, self.settings)
        if max_at is not None and max_at <= self.now:
            return self._begin_stop(c.STOPPED_MAX_DURATION)
        idle_at = idle_deadline(self.status, self.settings)
        if idle_at is not None and idle_at <= self.now:
            idle = self.settings.idle_timeout if self.settings else None
            self._emit(Emit.normal(c.EVENT_IDLE_STOPPED, f"no activity for {format_seconds(idle)}; stopping the session"))
            return self._begin_stop(c.STOPPED_IDLE_TIMEOUT)
        deadlines = [d for d in (max_at, idle_at) if d is not None]
        if deadlines:
            self.requeue.append(seconds_until(min(deadlines), self.now))
        return False

    def _stopping(self) -> bool:
        obs = self.observation
        if obs is not None and obs.state in GONE:
            st = self.status
            st.phase = c.PHASE_STOPPED
            st.stop_time = self.stamp
            why = st.stopped_reason or c.STOPPED_USER
            self._ready(compute_ready_condition(c.PHASE_STOPPED, message=STOPPED_MESSAGES.get(why)))
            self._emit(Emit.normal(c.EVENT_STOPPED, f"session stopped ({why}); workspace kept"))
            return False
        if obs is None or obs.state != BackingState.TERMINATING:
            self.work.append(Stop())  # idempotent repeat until the backing has stopped
        self._poll()  # a terminating backing is left alone: its removal wakes us (or the poll)
        return False

    def _stopped(self) -> bool:
        st = self.status
        if self.session.desired_state == c.STATE_STOPPED:
            # spec.state wins: a restart request is recorded and ignored, or the session would flap.
            self._record_restart_request()
            return False
        resume = st.start_time is not None
        if self._restart_requested():
            self._record_restart_request()
            if self.settings is None:
                return self._cannot_start("restart")
            st.restart_count = (st.restart_count or 0) + 1
            self._emit(Emit.normal(c.EVENT_RESTARTED, self._restart_message()))
            return self._start(resume=resume, replace=False, reset_crashes=True)
        if st.stopped_reason in (c.STOPPED_IDLE_TIMEOUT, c.STOPPED_MAX_DURATION):
            # Stopped by the operator, not the user: spec still says Running. Wait for a reason.
            woken = self.session.wake_requested and self.settings is not None and self.settings.wake_on_message
            if not (woken or self._generation_changed()):
                return False
        return self._start(resume=resume, replace=False, reset_crashes=True)

    def _completed(self) -> bool:
        if not self._restart_requested():
            return False
        self._record_restart_request()
        return self._to_pending(replace=True)

    def _failed(self) -> bool:
        if self._ready_reason() == c.REASON_INVALID_CONFIGURATION:
            # Failed because of configuration: re-evaluated on every call, so fixing the spec or
            # the template is enough to start it.
            if self.settings is None:
                self._ready(compute_ready_condition(c.PHASE_FAILED, reason=c.REASON_INVALID_CONFIGURATION,
                                                    message=self._problems()))
                return False
            self._record_restart_request()
            return self._to_pending(replace=True)
        if self._generation_changed() or self._restart_requested():
            self._record_restart_request()
            return self._to_pending(replace=True)
        return False

    def _terminate(self) -> None:
        if self.session.abandon:
            self._abandon()
            return
        st = self.status
        deleted_for = self.session.deleting_for(self.now)
        if self.provider_error is None and deleted_for is not None and deleted_for < TERMINATING_QUIET_SECONDS:
            # Quiet period: act (delete, remove the finalizer once gone) but keep the status as
            # it was, observedGeneration included (the API server bumps the generation when it
            # sets deletionTimestamp); come back when the quiet period ends if still not gone.
            self.status = self.before.model_copy(deep=True)
            self.frozen = True
            self._terminate_backing(self.status)
            if not any(isinstance(a, RemoveFinalizer) for a in self.work):
                self.requeue.append(TERMINATING_QUIET_SECONDS - deleted_for)
            return
        st.phase = c.PHASE_TERMINATING
        if self.provider_error is not None:
            self._deletion_blocked()
            return
        self._ready(compute_ready_condition(c.PHASE_TERMINATING))
        self._mirror_backing()
        self._terminate_backing(st)

    def _deletion_blocked(self) -> None:
        """The backing cannot be deleted now (the provider cannot be reached): say what is
        retried and how to give up, once (an event when it starts), and retry; the reconciler
        backs off while `ProviderAvailable` is False."""
        message = deletion_blocked_message(self.status, self.session.name, self.provider_error or "")
        blocked_before = self._ready_reason() == c.REASON_DELETION_BLOCKED
        self._ready(compute_ready_condition(c.PHASE_TERMINATING, reason=c.REASON_DELETION_BLOCKED, message=message))
        if not blocked_before:
            self._emit(Emit.warning(c.EVENT_DELETION_BLOCKED, message))
        self.requeue.append(PROVIDER_RETRY_SECONDS)

    def _abandon(self) -> None:
        """An admin gave up on the backing (`agentsession.dev/abandon: "true"`): no provider call,
        the finalizer goes, and an event says what may be left behind."""
        self.status.phase = c.PHASE_TERMINATING
        self._ready(compute_ready_condition(c.PHASE_TERMINATING))
        self._emit(Emit.warning(c.EVENT_ABANDONED, abandoned_message(self.status)))
        self.work.append(RemoveFinalizer())

    def _terminate_backing(self, st: AgentSessionStatus) -> None:
        obs = self.observation
        ever_created = bool(st.provider and st.provider.id)
        gone = (obs.state == BackingState.ABSENT) if obs is not None else not ever_created
        if (st.provider and st.provider.type) or self.settings is not None:
            self.work.append(Delete())  # idempotent repeat: not-found counts as done
        if gone:
            self.work.append(RemoveFinalizer())
        else:
            self._poll()

    def _hold(self) -> None:
        """The provider cannot be reached: change nothing that depends on it, retry later."""
        if self.status.phase == c.PHASE_PENDING:
            self._ready(compute_ready_condition(
                c.PHASE_PENDING, reason=c.REASON_PROVIDER_UNAVAILABLE, message=self.provider_error or None
            ))
        self.requeue.append(PROVIDER_RETRY_SECONDS)

    # --- always-refreshed parts -----------------------------------------------------------

    def _refresh_config_valid(self) -> None:
        value = compute_config_valid_condition(self.settings is not None, self.session.config_problems)
        if self._set(value) and value.status == "False" and not self.session.deleting:
            self._emit(Emit.warning(c.EVENT_CONFIG_INVALID, value.message))

    def _refresh_provider_available(self) -> None:
        if self.provider_error is None and self.observation is None:
            return  # the provider was not asked: nothing learned
        value = compute_provider_available_condition(self.provider_error)
        if self._set(value) and value.status == "False":
            self._emit(Emit.warning(c.EVENT_PROVIDER_UNAVAILABLE, value.message))

    def _mirror_backing(self) -> None:
        """Record where the backing is: its id (kept once known) and endpoint (while it runs)."""
        obs, st = self.observation, self.status
        if obs is None:
            return
        endpoint = obs.endpoint if obs.state in (BackingState.PENDING, BackingState.RUNNING) else None
        if st.provider is None:
            if obs.id is None and endpoint is None:
                return
            st.provider = ProviderStatus()
        if obs.id is not None and st.provider.id != obs.id:
            st.provider.id = obs.id
        if st.provider.endpoint != endpoint:
            st.provider.endpoint = endpoint

    def _refresh_health(self) -> None:
        st = self.status
        probe = self.observation.health if self.observation is not None else None
        health = next_health(st.health, probe, self.now)
        if probe is None and st.phase not in RUNNING_PHASES:
            health = resting_health(health)
        st.health = health
        value = compute_healthy_condition(health)
        if self._set(value) and value.status == "False":
            self._emit(Emit.warning(c.EVENT_UNHEALTHY, value.message))

    def _refresh_up_to_date(self) -> None:
        st = self.status
        if self.settings is None or st.resolved is None:
            return
        value = compute_up_to_date_condition(self.settings.config_hash, st.resolved.hash)
        if value is not None:
            self._set(value)

    def _offer_prompt(self) -> None:
        step = next_prompt_step(self.session, self.status, self.observation, self.stamp)
        self.status.prompt = step.status
        if step.action is not None:
            self.work.append(step.action)
        if step.retry_after is not None:
            self.requeue.append(step.retry_after)
