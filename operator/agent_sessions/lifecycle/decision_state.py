"""One `decide()` call in progress: the working copy of the status and what was collected so far.

`decide()` is one pure function, but its body is long enough to read in parts: `DecisionState`
(this module) holds the inputs, the working status, the actions, events and requeue hints, with
the small helpers every part uses; `transitions.Transitions` adds the ways into each phase; the
`decide` module adds the phase handlers and the parts refreshed on every call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from agent_sessions.api import constants as c
from agent_sessions.api.session import AgentSessionStatus

from .actions import Action, Emit
from .conditions import ConditionValue, apply_condition, compute_config_valid_condition, get_condition
from .deadlines import seconds_until
from .inputs import SessionInput
from .observation import BackingState, Observation
from .timestamps import format_timestamp

PROVIDER_RETRY_SECONDS: Final = 1.0
"""Base delay before retrying an unreachable provider (the reconciler adds backoff and jitter)."""
POLL_SECONDS: Final = 5.0
"""How soon to look again while waiting for the provider to finish something (start, stop,
delete). Pod events usually come sooner; providers without events (http, tmux) rely on it."""

ANNOUNCED_POLL_SECONDS: Final = 60.0
"""How soon to look again, instead of `POLL_SECONDS`, while waiting for a backing whose every
change is announced (`Observation.announced`): a safety net only, the announcing event triggers
the reconcile. In a burst of 1,000 pods the quick poll was a third of the operator's reconciles."""

STARTING_POLL_SECONDS: Final = 1.0
"""How soon to look again at a backing that runs but does not serve yet (or is pending with a
runtime endpoint already), early in a start (see
`STARTING_WINDOW_SECONDS`): its runtime knows within a second or two whether the agent started,
and a failed start is reported only there (`agentStart`) — no pod event announces it."""
STARTING_WINDOW_SECONDS: Final = 20.0
"""How long after a start the quick look-again lasts; a slower start is polled every `POLL_SECONDS`."""

RUNNING_PHASES: Final = (c.PHASE_CREATING, c.PHASE_RUNNING)
GONE: Final = (BackingState.ABSENT, BackingState.STOPPED)
"""Backing states where nothing runs."""


class DecisionState:
    """One `decide()` call: a working copy of the status, and the actions collected so far."""

    def __init__(
        self,
        session: SessionInput,
        status: AgentSessionStatus | None,
        observation: Observation | None,
        provider_error: str | None,
        now: datetime,
    ) -> None:
        self.session = session
        self.settings = session.settings
        self.before = status or AgentSessionStatus()
        self.status = self.before.model_copy(deep=True)
        self.observation = observation
        self.provider_error = provider_error
        self.now = now
        self.stamp = format_timestamp(now)
        self.generation = session.generation if provider_error is None else self.before.observed_generation
        self.work: list[Action] = []
        self.events: list[Emit] = []
        self.requeue: list[float] = []
        self.replace_backing = False
        self.frozen = False
        """The status is kept exactly as read (a deleted session's quiet period)."""

    # --- small helpers --------------------------------------------------------------------

    def _set(self, value: ConditionValue) -> bool:
        """Set a condition; True when its status flipped (or it is new)."""
        previous = get_condition(self.status.conditions, value.type)
        self.status.conditions = apply_condition(self.status.conditions, value, self.generation, self.now)
        return previous is None or previous.status != value.status

    def _ready(self, value: ConditionValue) -> None:
        self._set(value)

    def _ready_reason(self) -> str | None:
        ready = get_condition(self.status.conditions, c.COND_READY)
        return ready.reason if ready else None

    def _emit(self, event: Emit) -> None:
        self.events.append(event)

    def _poll(self, deadline: datetime | None = None, wait: float | None = None) -> None:
        """Look again after `wait`, or — waiting for the provider to finish something — after
        `POLL_SECONDS`, `ANNOUNCED_POLL_SECONDS` for a backing that announces its changes; by
        `deadline` at the latest."""
        if wait is None:
            announced = self.observation is not None and self.observation.announced
            wait = ANNOUNCED_POLL_SECONDS if announced else POLL_SECONDS
        if deadline is not None:
            wait = min(wait, max(seconds_until(deadline, self.now), 0.0))
        self.requeue.append(wait)

    def _problems(self) -> str:
        return compute_config_valid_condition(False, self.session.config_problems).message

    def _generation_changed(self) -> bool:
        observed = self.before.observed_generation
        return observed is not None and observed != self.session.generation

    def _restart_requested(self) -> bool:
        request = self.session.restart_request
        return bool(request) and request != self.status.restart_request

    def _record_restart_request(self) -> None:
        if self._restart_requested():
            self.status.restart_request = self.session.restart_request

    def _restart_message(self) -> str:
        return f"restart requested ({c.ANNOTATION_RESTART}={self.session.restart_request})"
