"""Reading a platform's session (`GET /v1/sessions/{id}`) as an `Observation`. Pure.

The contract's states are the lifecycle's own (`BackingState` without `Absent`, which is a 404),
so the mapping is nearly the identity; what needs deciding:

* `ready` only counts while `Running`; the endpoint is kept while `Pending` or `Running` (the
  runtime may answer before the platform calls it ready, as with pods).
* `permanent` is honoured only on `Pending` and `Failed`: a platform saying its image cannot be
  pulled fails the session at once instead of after the start timeout.
* An unknown state is read as `Pending` with a message naming it: the start timeout bounds a
  platform that speaks a newer contract, instead of the operator failing hard on it.
* A session the platform says is `Running` and `ready` is `Healthy`, as a pod whose readiness
  probe (the runtime's `/healthz`) passes: `kubectl get` shows HEALTH for http sessions too. When
  the runtime itself says otherwise (`/v1/info`), the operator's reading of it wins.
* Platform-written text goes through pattern redaction (it ends up in conditions and Events).
* The `endpoint` is fetched by the operator and the gateway, so it is a platform's word about
  where to send requests: `endpoint_problem` (the provider's allowlist) may refuse it. A refused
  endpoint is dropped — never written to status, never fetched — and the session is not ready
  and unhealthy with the reason (`EndpointRefused`), so `kubectl get` shows why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.lifecycle.observation import BackingState, HealthProbe, Observation

from ..redaction import redact
from .constants import STATE_FAILED, STATE_PENDING, STATE_RUNNING, STATE_STOPPED, STATE_SUCCEEDED

REASON_ENDPOINT_REFUSED = "EndpointRefused"
"""The platform reported a runtime endpoint off the allowed origins."""

_STATES = {
    STATE_PENDING: BackingState.PENDING,
    STATE_RUNNING: BackingState.RUNNING,
    STATE_STOPPED: BackingState.STOPPED,
    STATE_SUCCEEDED: BackingState.SUCCEEDED,
    STATE_FAILED: BackingState.FAILED,
}


def observe_session(
    session: Mapping[str, Any] | None,
    *,
    session_id: str | None = None,
    endpoint_problem: Callable[[str], str | None] | None = None,
) -> Observation:
    """What the platform's session JSON says (None: there is no session). `endpoint_problem`
    says why a reported endpoint may not be used (None: it may); without it, any is kept."""
    if session is None:
        return Observation(BackingState.ABSENT)
    raw_state = session.get("state")
    state = _STATES.get(raw_state) if isinstance(raw_state, str) else None
    message = _text(session.get("message"))
    reason = _text(session.get("reason")) or None
    if state is None:
        state = BackingState.PENDING
        reason = reason or "UnknownState"
        message = f"the platform reported an unknown state {raw_state!r}" + (f": {message}" if message else "")
    endpoint = session.get("endpoint") if state in (BackingState.PENDING, BackingState.RUNNING) else None
    exit_code = session.get("exitCode")
    restarts = session.get("restarts")
    ready = state == BackingState.RUNNING and session.get("ready") is True
    health = HealthProbe(c.HEALTH_HEALTHY) if ready else None
    refused = endpoint_problem(endpoint) if endpoint_problem is not None and endpoint not in (None, "") else None
    if refused is not None:
        refused = redact(refused)
        endpoint, ready, reason, message = None, False, REASON_ENDPOINT_REFUSED, refused
        health = HealthProbe(c.HEALTH_UNHEALTHY, refused)
    return Observation(
        state,
        ready=ready,
        id=str(session.get("id") or session_id or "") or None,
        endpoint=str(endpoint).rstrip("/") if isinstance(endpoint, str) and endpoint else None,
        reason=reason,
        message=message,
        health=health,
        permanent=bool(session.get("permanent")) and state in (BackingState.PENDING, BackingState.FAILED),
        restarts=restarts if isinstance(restarts, int) and restarts >= 0 else 0,
        exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
    )


def _text(value: Any) -> str:
    return redact(str(value)) if value not in (None, "") else ""
