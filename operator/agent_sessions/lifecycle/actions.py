"""What `decide()` asks the reconciler to do, as plain values.

The lifecycle is pure: instead of calling providers or posting Events, it returns these
actions and the reconciler executes them. That keeps every decision testable with a table and
makes the I/O edge small enough to reason about.

Executor contract:

* Actions run in the order given: provider work first (`Stop` before `Ensure` when a backing is
  replaced, `Delete` before `RemoveFinalizer`), Events last.
* If an action fails (e.g. `ProviderUnavailable`), the executor stops there, calls `decide()`
  again with the status it had *read* and `provider_error` set, and patches that result
  instead. The transition is then not recorded, and the next reconcile retries it; its Events
  were not posted either, so they are not posted twice.
* `DeliverPrompt` is performed first and answered, not executed in order: the executor sends it
  and calls `decide()` again with the runtime's answer, whose status records the delivery (one
  status patch per reconcile, §8). It never comes with provider work (the session is Running).
* Provider actions are idempotent by contract (`ensure` is keyed by the session uid, `stop`
  and `delete` treat not-found as done), which is what makes the documented repeats safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_sessions.api import constants as c
from agent_sessions.api.session import AgentSessionStatus


@dataclass(frozen=True)
class Ensure:
    """Create the backing, or resume it with its workspace. Idempotent."""


@dataclass(frozen=True)
class Stop:
    """Stop the backing and keep the workspace. Idempotent (not-found = done)."""


@dataclass(frozen=True)
class Delete:
    """Delete the backing and its workspace (the session is being deleted). Not-found = done.

    When the configuration is invalid, the executor uses `status.provider.type`.
    """


@dataclass(frozen=True)
class RemoveFinalizer:
    """Remove the operator's finalizer: cleanup is done, the API server may delete the object."""


@dataclass(frozen=True)
class DeliverPrompt:
    """Send `spec.prompt` as the session's first message, as message `prompt_message_id(uid)`.

    `decide()` returns it on every call while the session is Running and Ready, its runtime has
    an endpoint and `status.prompt.state` is `Pending` or `Delivering`, and the observation holds
    no answer yet. The executor sends it (the runtime de-duplicates by the id, which makes
    delivery exactly-once) and calls `decide()` again with the answer in
    `Observation.prompt_accepted`: that decision records it (see `lifecycle.prompt`).
    """

    text: str


@dataclass(frozen=True)
class Emit:
    """Post a Kubernetes Event on the session."""

    type: str
    """`Normal` or `Warning`."""
    reason: str
    message: str

    @classmethod
    def normal(cls, reason: str, message: str) -> Emit:
        return cls(c.EVENT_TYPE_NORMAL, reason, message)

    @classmethod
    def warning(cls, reason: str, message: str) -> Emit:
        return cls(c.EVENT_TYPE_WARNING, reason, message)


Action = Ensure | Stop | Delete | RemoveFinalizer | DeliverPrompt | Emit


@dataclass(frozen=True)
class Decision:
    """The outcome of one `decide()` call."""

    status: AgentSessionStatus
    """The status the session should have. Patch it only if it differs from the one read."""
    actions: tuple[Action, ...] = ()
    """What to execute, in order."""
    requeue_after: float | None = None
    """Seconds after which to reconcile again even without an event (a base hint: the
    reconciler adds backoff and jitter for provider errors). None: wait for events."""
