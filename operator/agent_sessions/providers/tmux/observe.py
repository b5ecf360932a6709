"""Reading a tmux session (and its bridge's `/healthz`) as an `Observation`.

A pure function, so every state is one table row in the tests:

* no tmux session → `ABSENT` (never created, stopped — `stop()` kills it — or vanished);
* the pane's process ended → `SUCCEEDED` (exit 0) or `FAILED` with the exit status (for the
  moment tmux has seen the pane close but not yet collected the status: still `RUNNING`, not
  ready, for a bounded time, then `FAILED` with the status unknown; a pane closed by hand:
  `FAILED` without a status). Nothing
  restarts a pane by itself: the lifecycle applies the restart policy. The pane's process is the
  bridge, which outlives its agent (an exited agent shows in `/healthz` and `/v1/info`, which the
  reconciler reads); a dead pane means the bridge itself could not run or was killed;
* the pane's process runs → `RUNNING`, with the endpoint `http://127.0.0.1:<port>`; ready when
  `/healthz` answers 200. While it does not (the bridge starting, the agent starting or refusing
  to open a session), not ready, with the bridge's reason.
"""

from __future__ import annotations

from typing import Final

from agent_sessions.api import constants as c
from agent_sessions.lifecycle.observation import BackingState, HealthProbe, Observation
from agent_sessions.wire.paths import HEALTH_PATH

from ..redaction import redact
from .constants import RUNTIME_HOST
from .state import RuntimeProbe, TmuxSessionState

REASON_RUNTIME_EXITED: Final = "RuntimeExited"
REASON_RUNTIME_EXITING: Final = "RuntimeExiting"
REASON_NOT_ANSWERING: Final = "RuntimeNotAnswering"


def endpoint_of(state: TmuxSessionState) -> str | None:
    return f"http://{RUNTIME_HOST}:{state.port}" if state.port else None


def observe_tmux(state: TmuxSessionState | None, probe: RuntimeProbe | None = None,
                 *, output: str = "", exit_status_overdue: bool = False) -> Observation:
    """What `state` (None when there is no tmux session) and `probe` (None when `/healthz` did
    not answer) say about the session. `output` is the end of a dead pane's output, already
    redacted, added to the message: it usually says why the bridge could not run.
    `exit_status_overdue`: the pane has been dead without an exit status for longer than tmux
    takes to collect one — it never will (see below)."""
    if state is None:
        return Observation(BackingState.ABSENT)
    if state.dead and not state.pane:
        return Observation(BackingState.FAILED, id=state.name, reason=REASON_RUNTIME_EXITED,
                           message="the pane that ran the runtime bridge was closed")
    if state.dead and state.exit_status is None and not state.exit_signal and not exit_status_overdue:
        # tmux saw the pane close before it collected the exit status: a moment later it has it.
        # (tmux 3.3 loses the status of a process that exits at once in the first session of a
        # fresh server; the provider then sets `exit_status_overdue` and it is reported unknown.)
        return Observation(BackingState.RUNNING, id=state.name, endpoint=endpoint_of(state),
                           reason=REASON_RUNTIME_EXITING, message="the runtime bridge is exiting")
    if state.dead:
        code = exit_code(state)
        if state.exit_signal:
            how = f"killed by signal {state.exit_signal}"
        else:
            how = f"exit code {code}" if code is not None else "exit status unknown"
        message = f"the runtime bridge exited ({how})"
        if output.strip():
            message += ": " + " | ".join(line.strip() for line in output.strip().splitlines()[-3:])
        return Observation(
            BackingState.SUCCEEDED if code == 0 else BackingState.FAILED,
            id=state.name,
            reason=c.REASON_COMPLETED if code == 0 else REASON_RUNTIME_EXITED,
            message=message,
            exit_code=code,
        )
    endpoint = endpoint_of(state)
    if probe is None:
        where = f"{endpoint}{HEALTH_PATH}" if endpoint else "its port (not recorded yet)"
        return Observation(
            BackingState.RUNNING, id=state.name, endpoint=endpoint, reason=REASON_NOT_ANSWERING,
            message=f"the runtime bridge does not answer on {where} yet",
        )
    if probe.status == 200:
        return Observation(BackingState.RUNNING, ready=True, id=state.name, endpoint=endpoint,
                           health=HealthProbe(c.HEALTH_HEALTHY))
    reason = probe.body.get("reason")
    message = probe.body.get("message") or f"{HEALTH_PATH} answered {probe.status}"
    return Observation(BackingState.RUNNING, id=state.name, endpoint=endpoint,
                       reason=str(reason) if reason else c.REASON_NOT_READY, message=redact(str(message)))


def exit_code(state: TmuxSessionState) -> int | None:
    """The exit code as a shell reports it: the status, or 128 + the signal."""
    if state.exit_signal:
        return 128 + state.exit_signal
    return state.exit_status
