"""The ways into each phase, shared by the phase handlers of `decide()`.

Each transition sets the phase and what goes with it (Ready, timestamps, counters), queues the
provider work and the Event, and returns whether the new phase must be evaluated at once
(see "Chained transitions" in `decide`).
"""

from __future__ import annotations

from agent_sessions.api import constants as c
from agent_sessions.api.session import ProviderStatus, ResolvedStatus, TemplateChainEntry

from .actions import Emit, Ensure, Stop
from .conditions import UP_TO_DATE, compute_ready_condition
from .deadlines import start_deadline
from .decision_state import GONE, PROVIDER_RETRY_SECONDS, DecisionState
from .messages import exit_message
from .observation import BackingState, Observation


class Transitions(DecisionState):
    """Entering Creating, Running, Stopping, Pending, Failed and Completed; restarts and crashes."""

    def _start(self, *, resume: bool, replace: bool, reset_crashes: bool) -> bool:
        """Enter Creating: Ensure the backing with the current configuration.

        `replace` stops a backing that is still there first (restart, or leaving Failed/Completed
        with the old one kept). Every start refreshes `resolved` and `startTime`.
        """
        st, settings = self.status, self.settings
        if settings is None:
            return self._cannot_start("start")
        st.phase = c.PHASE_CREATING
        st.start_time = self.stamp
        st.stopped_reason = None
        if reset_crashes:
            st.crash_count = 0
        previous = st.provider or ProviderStatus()
        st.provider = ProviderStatus(
            type=settings.provider,  # type: ignore[arg-type]
            id=previous.id,
            endpoint=previous.endpoint,
            restarts=previous.restarts,
        )
        st.resolved = ResolvedStatus(
            template_chain=[TemplateChainEntry(name=name, generation=gen) for name, gen in settings.template_chain],
            hash=settings.config_hash or None,
        )
        self._set(UP_TO_DATE)
        reason = c.REASON_RESUMING if resume else c.REASON_CREATING
        self._ready(compute_ready_condition(c.PHASE_CREATING, reason=reason))
        obs = self.observation
        if replace and obs is not None and obs.exists:
            # The replacement is ensured once the old backing is gone (Creating does it): made
            # now, it would collide with the old one still terminating under the same name.
            self.work.append(Stop())
            self.requeue.append(PROVIDER_RETRY_SECONDS)
        elif obs is None or obs.state != BackingState.TERMINATING:
            self.work.append(Ensure())
        self._poll(start_deadline(st, settings))
        return False

    def _to_pending(self, *, replace: bool) -> bool:
        self.status.phase = c.PHASE_PENDING
        self.status.crash_count = 0
        self.replace_backing = replace
        self._ready(compute_ready_condition(c.PHASE_PENDING))
        return True

    def _became_running(self) -> bool:
        resumed = self._ready_reason() == c.REASON_RESUMING
        self.status.phase = c.PHASE_RUNNING
        self._ready(compute_ready_condition(c.PHASE_RUNNING, ready=True))
        if resumed:
            self._emit(Emit.normal(c.EVENT_RESUMED, "session resumed"))
        else:
            self._emit(Emit.normal(c.EVENT_STARTED, "session started"))
        return False

    def _begin_stop(self, why: str) -> bool:
        st = self.status
        st.phase = c.PHASE_STOPPING
        st.stopped_reason = why  # type: ignore[assignment]
        self._ready(compute_ready_condition(c.PHASE_STOPPING))
        self.work.append(Stop())
        self._poll()
        return False

    def _restart(self) -> bool:
        """A restart request on a Creating or Running session: replace the backing."""
        self._record_restart_request()
        if self.settings is None:
            return self._cannot_start("restart")
        self.status.restart_count = (self.status.restart_count or 0) + 1
        self._emit(Emit.normal(c.EVENT_RESTARTED, self._restart_message()))
        return self._start(resume=False, replace=True, reset_crashes=True)

    def _recreate(self, obs: Observation) -> bool:
        """The backing vanished (or was stopped) behind the operator's back."""
        if self.settings is None:
            return self._cannot_start("re-create the vanished backing")
        self.status.restart_count = (self.status.restart_count or 0) + 1
        what = {
            BackingState.ABSENT: "vanished",
            BackingState.TERMINATING: "is being deleted outside the operator",
        }.get(obs.state, "was stopped outside the operator")
        self._emit(Emit.warning(c.EVENT_RECREATED, f"the backing session {what}; re-creating it"))
        return self._start(resume=False, replace=False, reset_crashes=False)

    def _crashed(self) -> bool:
        """The agent exited non-zero and nothing restarts it: restart per policy, or fail."""
        obs = self.observation
        assert obs is not None
        settings, st = self.settings, self.status
        exited = exit_message(obs)
        if settings is None or settings.restart_policy != c.RESTART_ON_FAILURE:
            return self._fail(obs.reason or c.REASON_AGENT_EXITED, exited, stop=False)
        crashes = st.crash_count or 0
        if crashes >= settings.backoff_limit:
            st.crash_count = crashes + 1
            return self._fail(
                c.REASON_BACKOFF_LIMIT_EXCEEDED,
                f"{exited}; crashed {crashes + 1} times, backoffLimit is {settings.backoff_limit}",
                stop=True,
            )
        st.crash_count = crashes + 1
        st.restart_count = (st.restart_count or 0) + 1
        restarting = f"{exited}; restarting (crash {crashes + 1} of at most {settings.backoff_limit})"
        self._emit(Emit.warning(c.EVENT_RESTARTED, restarting))
        self._start(resume=False, replace=True, reset_crashes=False)
        # Ready says why it restarts (kept by Creating until the new backing serves).
        self._ready(compute_ready_condition(c.PHASE_CREATING, reason=obs.reason or c.REASON_AGENT_EXITED,
                                            message=restarting))
        return False

    def _count_self_restarts(self) -> bool:
        """Count crashes a self-restarting backing recovered from. True when that made it fail."""
        obs, st = self.observation, self.status
        assert obs is not None
        if obs.state in GONE or obs.state == BackingState.TERMINATING:
            return False  # nothing runs, nothing crashed; a stopped backing's count is old news
        seen = (st.provider.restarts if st.provider else None) or 0
        # A lower count than last seen is a new backing (re-created): all its restarts are new.
        delta = obs.restarts - seen if obs.restarts >= seen else obs.restarts
        if st.provider is None:
            st.provider = ProviderStatus()
        if st.provider.restarts != obs.restarts:
            st.provider.restarts = obs.restarts
        if delta <= 0:
            return False
        st.restart_count = (st.restart_count or 0) + delta
        st.crash_count = (st.crash_count or 0) + delta
        limit = self.settings.backoff_limit if self.settings else None
        cause = f" ({obs.reason})" if obs.reason else ""
        if limit is not None and st.crash_count > limit:
            self._fail(
                c.REASON_BACKOFF_LIMIT_EXCEEDED,
                f"the agent crashed {st.crash_count} times{cause}, backoffLimit is {limit}",
                stop=True,
            )
            return True
        self._emit(Emit.warning(
            c.EVENT_RESTARTED, f"the agent crashed and was restarted by the provider{cause}; crash {st.crash_count}"
            + (f" of at most {limit}" if limit is not None else "")
        ))
        return False

    def _cannot_start(self, what: str) -> bool:
        return self._fail(c.REASON_INVALID_CONFIGURATION, f"cannot {what}: {self._problems()}", stop=False)

    def _fail(self, reason: str | None, message: str, *, stop: bool) -> bool:
        st = self.status
        st.phase = c.PHASE_FAILED
        st.stop_time = self.stamp
        ready = compute_ready_condition(c.PHASE_FAILED, reason=reason, message=message)
        self._ready(ready)
        if stop:
            self.work.append(Stop())
        self._emit(Emit.warning(c.EVENT_FAILED, f"{ready.reason}: {message}"))
        return False

    def _complete(self) -> bool:
        st = self.status
        st.phase = c.PHASE_COMPLETED
        st.stop_time = self.stamp
        self._ready(compute_ready_condition(c.PHASE_COMPLETED))
        self._emit(Emit.normal(c.EVENT_COMPLETED, "the agent finished successfully"))
        return False
