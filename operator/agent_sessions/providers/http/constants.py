"""The names and numbers of the HTTP provider contract (`docs/provider-http.md`, v1).

The paths, states and error codes are the contract with external platforms: the reference
server and the conformance kit (`agent_sessions.dev`) use these same values, so the three cannot
drift apart. The numbers are the provider's retry and concurrency defaults; each is a bound on
how long one reconcile may wait on a platform, or on how hard the operator may hit one.
"""

from __future__ import annotations

from typing import Final

from agent_sessions.api import constants as c

from ..base import Capabilities

API_PREFIX: Final = "/v1"
CAPABILITIES_PATH: Final = f"{API_PREFIX}/capabilities"
SESSIONS_PATH: Final = f"{API_PREFIX}/sessions"


def session_path(session_id: str) -> str:
    """`/v1/sessions/{id}`."""
    return f"{SESSIONS_PATH}/{session_id}"


def start_path(session_id: str) -> str:
    """`/v1/sessions/{id}:start` (a custom method, as in Google's API design guide)."""
    return f"{session_path(session_id)}:start"


def stop_path(session_id: str) -> str:
    """`/v1/sessions/{id}:stop`."""
    return f"{session_path(session_id)}:stop"


def logs_path(session_id: str) -> str:
    """`/v1/sessions/{id}/logs`."""
    return f"{session_path(session_id)}/logs"


# Session states on the wire: the lifecycle's `BackingState` minus `Absent` (which is a 404).
STATE_PENDING: Final = "Pending"
STATE_RUNNING: Final = "Running"
STATE_STOPPED: Final = "Stopped"
STATE_SUCCEEDED: Final = "Succeeded"
STATE_FAILED: Final = "Failed"
STATES: Final = (STATE_PENDING, STATE_RUNNING, STATE_STOPPED, STATE_SUCCEEDED, STATE_FAILED)

# Error codes (`{"code", "message"}` bodies). The first four are the provider errors' own codes.
CODE_SESSION_NOT_FOUND: Final = "session_not_found"
CODE_SESSION_ALREADY_EXISTS: Final = "session_already_exists"
CODE_PROVIDER_UNAVAILABLE: Final = "provider_unavailable"
CODE_INVALID_CONFIGURATION: Final = "invalid_configuration"
CODE_UNAUTHORIZED: Final = "unauthorized"
CODE_RATE_LIMITED: Final = "rate_limited"

LABEL_NAMESPACE: Final = f"{c.PREFIX}namespace"
"""Label sent in the PUT body next to `agentsession.dev/session` and `…/session-uid`, so a
platform can show which Kubernetes session a session belongs to."""

DEFAULT_TIMEOUT_SECONDS: Final = 30.0
"""One request (`http.timeoutSeconds`, whose built-in default is the same)."""
DEFAULT_MAX_RETRIES: Final = 5
"""Retries of one call after the first attempt (`http.maxRetries`)."""
RETRY_BUDGET_SECONDS: Final = 20.0
"""The longest one provider call waits between attempts, in total. A reconcile of a session is
blocked while its call retries; past this, the call gives up with `ProviderUnavailable` and the
operator's own backoff takes over (the session shows `ProviderAvailable=False` meanwhile)."""
BACKOFF_BASE_SECONDS: Final = 0.5
BACKOFF_CAP_SECONDS: Final = 8.0
RETRY_AFTER_CAP_SECONDS: Final = 60.0
"""A `Retry-After` longer than this is read as this: a platform asking for an hour is not
obeyed blindly by a reconcile (the operator requeues instead)."""
CONCURRENCY_PER_PLATFORM: Final = 16
"""Requests in flight to one platform URL at once, from one operator."""
CAPABILITIES_TTL_SECONDS: Final = 600.0
"""How long a platform's `/v1/capabilities` answer is reused."""
CAPABILITIES_RETRY_SECONDS: Final = 30.0
"""How soon an unanswered `/v1/capabilities` is asked again."""
LOG_FETCH_LIMIT_BYTES: Final = 1024 * 1024
"""Safety bound on one log read (as for pods): `tailLines` bounds lines, not one huge line."""

CONTRACT_CAPABILITIES: Final = Capabilities(streaming=True, history=True, logs=True, cancel=True)
"""What every conforming platform supports, whatever its `/v1/capabilities` says or when it
cannot be asked: the logs endpoint, and a runtime endpoint serving the bridge API (§7: SSE,
history, cancel). Resuming with the workspace and enforced resource limits are the platform's
to claim."""
