"""What a provider saw when it looked at a session's backing (pod, external session, tmux).

Providers translate their own world (pod phases, container statuses, HTTP payloads, tmux
panes) into this small vocabulary, so the lifecycle decides the same way whatever runs the
agent. The lifecycle never calls a provider: the reconciler observes, hands the observation to
`decide()`, and executes what comes back.

Contract for providers (the lifecycle relies on it):

* `observe()` reflects actions already executed (read-after-write): after `stop()`, a backing
  that still exists while it is torn down is reported `TERMINATING` (or `STOPPED` when it is
  stopped and kept), never as its last `FAILED` or `SUCCEEDED` state, otherwise a replaced
  backing's old crash would be counted twice.
* `TERMINATING` is a backing on its way out that still holds its name (a Pod with
  `deletionTimestamp`, which a real node takes up to its grace period to finish). The lifecycle
  neither stops it again nor creates its replacement until it is gone: a second delete would be
  a wasted write, and a create would collide with it (409).
* `FAILED` / `SUCCEEDED` mean the agent ended and nobody restarts it. A backing that restarts
  by itself (a container with `restartPolicy: OnFailure`) stays `RUNNING`/`PENDING` and shows
  its crashes through a growing `restarts`.
* `permanent` is set only for failures that cannot fix themselves (an image that cannot be
  pulled, a platform that rejected the configuration); the lifecycle fails the session at once
  instead of waiting for the start timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent_sessions.api import constants as c


class BackingState(StrEnum):
    """The state of the thing that runs the agent."""

    ABSENT = "Absent"
    """Nothing exists (never created, deleted, or vanished)."""
    PENDING = "Pending"
    """Being created, scheduled, or its image pulled."""
    RUNNING = "Running"
    """The agent process runs (see `Observation.ready` for whether it serves)."""
    STOPPED = "Stopped"
    """Exists but does not run: stopped with its workspace kept."""
    TERMINATING = "Terminating"
    """Being torn down and still there (e.g. a Pod with `deletionTimestamp`): wait for it."""
    SUCCEEDED = "Succeeded"
    """The agent exited with code 0."""
    FAILED = "Failed"
    """The agent exited non-zero, or the backing failed (evicted, OOM-killed, …)."""


@dataclass(frozen=True)
class HealthProbe:
    """The result of the provider's health probe of a running session."""

    state: str = c.HEALTH_UNKNOWN
    """`Healthy`, `Unhealthy` or `Unknown`."""
    message: str = ""
    """Why the session is unhealthy (empty when healthy)."""
    failures: int | None = None
    """Failed probes in a row, when the provider counts them itself (the runtime bridge does).

    When None, the lifecycle counts distinct unhealthy results instead: it cannot tell a new
    probe from a repeated reconcile, and counting reconciles would turn every call into a write.
    """


@dataclass(frozen=True)
class Observation:
    """What the provider saw, at the moment the reconciler asked."""

    state: BackingState
    ready: bool = False
    """The agent serves its endpoint (readiness)."""
    id: str | None = None
    """Pod name, external id or tmux session name."""
    endpoint: str | None = None
    """URL of the session's runtime while it runs."""
    reason: str | None = None
    """A machine-readable cause, e.g. `ImagePullBackOff`, `CrashLoopBackOff`, `OOMKilled`."""
    message: str = ""
    """Human-readable details."""
    permanent: bool = False
    """A failure that will not fix itself (image pull error, platform rejected config)."""
    restarts: int = 0
    """Restarts the backing made by itself (container restartCount) since it was created."""
    exit_code: int | None = None
    """Exit code of the agent, when it exited."""
    start_failed: bool = False
    """With `FAILED`: the agent never got as far as serving (its command cannot run, it exited or
    was refused during start-up) and nothing will retry in this backing — reported by its runtime
    (`agentStart`), so the restart policy applies at once instead of the start timeout."""
    health: HealthProbe | None = None
    """Health probe result, when the provider probes."""
    announced: bool = False
    """Every change of this backing's state is announced to the operator (a watch of it triggers
    the session's reconcile, as the pod provider's does): waiting for it to be created, scheduled,
    pulled, stopped or removed needs no quick look-again (`ANNOUNCED_POLL_SECONDS`). What only its
    runtime knows (whether the agent started, its health) is not announced."""
    prompt_accepted: bool | None = None
    """The runtime's answer to this reconcile's `DeliverPrompt` (set by the reconciler, not by
    providers): True it has the prompt (now, or from an earlier send of the same id), False it
    did not take it (unreachable, a turn running); None when it was not sent."""

    @property
    def exists(self) -> bool:
        """Whether there is a backing that is neither gone, stopped nor already going."""
        return self.state not in (BackingState.ABSENT, BackingState.STOPPED, BackingState.TERMINATING)
