"""The first message, `spec.prompt`: when to send it and what status records about it.

Exactly once, by the message id. The prompt is sent as message `prompt_message_id(uid)`, and the
runtime bridge answers a repeated id with the turn it already accepted instead of prompting the
agent again. So a send cut short (an operator restart, a timeout, a lost answer) is simply sent
again with the same id, and the agent sees the prompt once. That is also why nothing is written
before sending: status records the runtime's answer, in the reconcile's one status patch (§8), so
a prompted session costs no status write more than one without a prompt.

Level-based like the rest of the lifecycle, in two `decide()` calls of one reconcile:

1. With no answer in the observation, `decide()` returns `DeliverPrompt` while the session is
   Running and Ready, its runtime has an endpoint and the prompt is `Pending` or `Delivering`
   (a documented idempotent repeat);
2. the reconciler sends it and decides again with the runtime's answer in
   `Observation.prompt_accepted`;
3. that `decide()` records `Delivered` (accepted) or `Delivering` (not taken: the runtime is
   unreachable, or a turn someone else started is running), and asks to be called again after
   `PROMPT_RETRY_SECONDS` until it is taken.

`Delivering` is thus "tried, not acknowledged yet". Operators before this scheme wrote it just
before every send, one status write of its own; a status they left `Delivering` is sent again
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from agent_sessions.api import constants as c
from agent_sessions.api.session import AgentSessionStatus, PromptStatus

from .actions import DeliverPrompt
from .conditions import get_condition
from .inputs import SessionInput
from .observation import Observation

PROMPT_RETRY_SECONDS: Final = 2.0
"""How soon to send the prompt again when the runtime did not take it."""

_UNACKNOWLEDGED: Final = (c.PROMPT_PENDING, c.PROMPT_DELIVERING)


def prompt_message_id(uid: str) -> str:
    """The id the prompt is sent under: the same on every attempt, so the runtime de-duplicates."""
    return f"prompt-{uid}"


def initial_prompt(session: SessionInput, stamp: str) -> PromptStatus | None:
    """`status.prompt` of a new session: only the *first* message, a prompt added later is never sent."""
    return PromptStatus(state=c.PROMPT_PENDING, time=stamp) if session.prompt else None


@dataclass(frozen=True)
class PromptStep:
    """What one `decide()` call does with the prompt."""

    status: PromptStatus | None
    """`status.prompt` as it should be."""
    action: DeliverPrompt | None = None
    """Send it now."""
    retry_after: float | None = None
    """Not taken: decide again after this many seconds."""


def next_prompt_step(
    session: SessionInput, status: AgentSessionStatus, observation: Observation | None, stamp: str
) -> PromptStep:
    """Send the prompt, record the runtime's answer, or leave `status.prompt` as it is.

    `status` is the working status of the call, after the phase transitions (so a session that
    becomes Running in this call is offered its prompt at once).
    """
    current = status.prompt
    ready = get_condition(status.conditions, c.COND_READY)
    if not (
        status.phase == c.PHASE_RUNNING
        and ready is not None and ready.status == "True"
        and session.prompt
        and current is not None and current.state in _UNACKNOWLEDGED
        and observation is not None and observation.ready and observation.endpoint
    ):
        return PromptStep(current)
    if observation.prompt_accepted is None:
        return PromptStep(current, DeliverPrompt(session.prompt))  # repeated until answered
    if observation.prompt_accepted:
        return PromptStep(PromptStatus(state=c.PROMPT_DELIVERED, time=stamp))
    if current.state == c.PROMPT_PENDING:
        current = PromptStatus(state=c.PROMPT_DELIVERING, time=stamp)
    return PromptStep(current, retry_after=PROMPT_RETRY_SECONDS)
