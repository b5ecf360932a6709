"""The agent's health as `/healthz` reports it: one immutable value, replaced on each change.

The readiness probe of the session's pod reads `/healthz`, and the operator folds its body into
`status.health` (§3), so the body says *why* in terms a platform engineer can act on: the exit
code and last stderr lines of a crashed agent, or the JSON-RPC error and advertised auth
methods of an agent that refuses to open a session. The bridge itself never exits for an
unhealthy agent: it keeps serving so that the reason stays readable (no crash loop that only
says "Error").

An agent that never got as far as an open session is a *start failure* (`AgentStart`): the
command cannot be run (`AgentExecFailed`), the agent exited before its session was open
(`AgentExited`), `initialize` failed or was not answered (`InitializeFailed`), or `session/new`
(`session/load`) was answered with an error — `AuthenticationRequired` for ACP's auth_required
(-32000, what e.g. `@zed-industries/codex-acp` answers without credentials), else
`SessionRefused`. The bridge never retries a start, so a failed start is final for this runtime:
`/healthz` and `/v1/info` say so in `agentStart` (`state: failed`), and the operator applies the
session's restart policy at once instead of waiting for its start timeout.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

STDERR_TAIL_LINES = 20
MAX_STDERR_LINE = 2000

REASON_STARTING = "Starting"
REASON_AGENT_EXEC_FAILED = "AgentExecFailed"
REASON_INITIALIZE_FAILED = "InitializeFailed"
REASON_AUTHENTICATION_REQUIRED = "AuthenticationRequired"
REASON_SESSION_REFUSED = "SessionRefused"
REASON_AGENT_EXITED = "AgentExited"
REASON_STOPPING = "Stopping"
REASON_HISTORY_UNWRITABLE = "HistoryUnwritable"
REASON_TURN_MACHINERY_FAILED = "TurnMachineryFailed"

ACP_AUTH_REQUIRED = -32000
"""ACP's JSON-RPC error code for "authentication required"."""

START_STARTING = "starting"
START_STARTED = "started"
START_FAILED = "failed"


@dataclass(frozen=True)
class Health:
    ok: bool
    reason: str | None = None
    message: str | None = None
    exit_code: int | None = None
    stderr: tuple[str, ...] = ()
    error: Mapping[str, Any] | None = None
    auth_methods: tuple[Mapping[str, Any], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        """The `/healthz` body (also `health` in `/v1/info`)."""
        body: dict[str, Any] = {"status": "ok" if self.ok else "unhealthy"}
        if self.reason is not None:
            body["reason"] = self.reason
        if self.message is not None:
            body["message"] = self.message
        if self.reason == REASON_AGENT_EXITED:
            body["exitCode"] = self.exit_code
        if self.stderr:
            body["stderr"] = list(self.stderr)
        if self.error is not None:
            body["error"] = dict(self.error)
        if self.auth_methods is not None:
            body["authMethods"] = [dict(method) for method in self.auth_methods]
        return body


STARTING = Health(ok=False, reason=REASON_STARTING, message="the agent is starting")
STOPPING = Health(ok=False, reason=REASON_STOPPING, message="the runtime is shutting down")


def healthy() -> Health:
    return Health(ok=True)


def agent_exited(exit_code: int | None, stderr: Iterable[str]) -> Health:
    if exit_code is None:
        how = "exit code unknown"
    elif exit_code < 0:
        how = f"killed by signal {-exit_code}"
    else:
        how = f"exit code {exit_code}"
    return Health(
        ok=False,
        reason=REASON_AGENT_EXITED,
        message=f"the agent exited ({how})",
        exit_code=exit_code,
        stderr=tuple(stderr),
    )


def history_unwritable(error: str) -> Health:
    """The agent is fine but the bridge cannot write the session's history (disk full, read-only
    workspace): turns end with `history_unwritable` until a write succeeds again."""
    return Health(ok=False, reason=REASON_HISTORY_UNWRITABLE, message=f"the session's history cannot be written: {error}")


def turn_machinery_failed(error: str) -> Health:
    """The agent is fine but the bridge could not end a turn properly (a bug, or a link that does
    not let go of a prompt); cleared when a turn ends normally again."""
    return Health(ok=False, reason=REASON_TURN_MACHINERY_FAILED, message=error)


def agent_exec_failed(command: str, error: OSError) -> Health:
    """The agent's command cannot be run (not installed, not executable, …)."""
    why = error.strerror or str(error)
    return Health(ok=False, reason=REASON_AGENT_EXEC_FAILED, message=f"cannot run {command!r}: {why}")


def initialize_failed(message: str, *, error: Mapping[str, Any] | None = None, stderr: Iterable[str] = ()) -> Health:
    return Health(ok=False, reason=REASON_INITIALIZE_FAILED, message=message, error=error, stderr=tuple(stderr))


def session_refused(
    error: Mapping[str, Any], auth_methods: Iterable[Mapping[str, Any]], *, stderr: Iterable[str] = ()
) -> Health:
    """`session/new` (or `session/load`) answered with an error: `AuthenticationRequired` for
    ACP's auth_required error, `SessionRefused` for any other."""
    methods = tuple(auth_methods)
    if error.get("code") == ACP_AUTH_REQUIRED:
        names = ", ".join(str(m.get("name") or m.get("id")) for m in methods if isinstance(m, Mapping))
        return Health(
            ok=False,
            reason=REASON_AUTHENTICATION_REQUIRED,
            message=f"the agent requires authentication: {error.get('message')} ({error.get('code')})"
            + (f"; it offers: {names}" if names else "")
            + "; give it credentials (e.g. an API key in agent.env)",
            error=error,
            auth_methods=methods,
            stderr=tuple(stderr),
        )
    return Health(
        ok=False,
        reason=REASON_SESSION_REFUSED,
        message=f"the agent refused to open a session: {error.get('message')} ({error.get('code')})",
        error=error,
        auth_methods=methods,
        stderr=tuple(stderr),
    )


@dataclass(frozen=True)
class AgentStart:
    """How far the agent's start got: `starting`, `started` (its session is open), or `failed`
    with the `Health` that says why. Final once it is not `starting`: the bridge does not retry."""

    state: str = START_STARTING
    failure: Health | None = None

    def to_json(self) -> dict[str, Any]:
        """`agentStart` in `/healthz` and `/v1/info`: `{"state"}`, and for a failed start
        `reason`, `message` and, when the agent exited, `exitCode`."""
        body: dict[str, Any] = {"state": self.state}
        if self.failure is not None:
            body["reason"] = self.failure.reason
            body["message"] = self.failure.message
            if self.failure.reason == REASON_AGENT_EXITED:
                body["exitCode"] = self.failure.exit_code
        return body


def start_failed(failure: Health) -> AgentStart:
    """A start that ended without an open session; an exit is worded as one during start-up."""
    if failure.reason == REASON_AGENT_EXITED:
        failure = replace(failure, message=f"{failure.message} before its session was open")
    return AgentStart(START_FAILED, failure)


class StderrTail:
    """The last lines the agent wrote to stderr (bounded in count and line length)."""

    def __init__(self, lines: int = STDERR_TAIL_LINES) -> None:
        self._lines: deque[str] = deque(maxlen=lines)

    def add(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if len(line) > MAX_STDERR_LINE:
            line = line[:MAX_STDERR_LINE] + "…"
        self._lines.append(line)

    def lines(self) -> tuple[str, ...]:
        return tuple(self._lines)
