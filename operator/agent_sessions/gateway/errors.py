"""The gateway's errors: one exception, one JSON shape, one table of codes (§7).

Every error a client sees is `{"code", "message", "session"}` with `session` the Kubernetes
identity of the session concerned (`{"namespace", "name", "uid"}`, `uid` null when the session
was not looked up) or null. The HTTP status follows from the code, so a handler only ever
decides *which* error happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from agent_sessions.wire.frames import EVENT_ERROR, Frame
from agent_sessions.wire.message_request import InvalidMessage
from agent_sessions.wire.runtime_client import RuntimeCallFailed

SESSION_NOT_FOUND: Final = "session_not_found"
SESSION_NOT_RUNNING: Final = "session_not_running"
SESSION_BUSY: Final = "session_busy"
INVALID_REQUEST: Final = "invalid_request"
INVALID_CONFIGURATION: Final = "invalid_configuration"
MESSAGE_TOO_LARGE: Final = "message_too_large"
UNAUTHORIZED: Final = "unauthorized"
FORBIDDEN: Final = "forbidden"
PROVIDER_UNAVAILABLE: Final = "provider_unavailable"
RATE_LIMITED: Final = "rate_limited"
REQUEST_TIMEOUT: Final = "request_timeout"
NOT_FOUND: Final = "not_found"
METHOD_NOT_ALLOWED: Final = "method_not_allowed"
INTERNAL_ERROR: Final = "internal_error"

STATUS: Final[Mapping[str, int]] = {
    SESSION_NOT_FOUND: 404,
    SESSION_NOT_RUNNING: 409,
    SESSION_BUSY: 409,
    INVALID_REQUEST: 422,
    INVALID_CONFIGURATION: 422,
    MESSAGE_TOO_LARGE: 413,
    UNAUTHORIZED: 401,
    FORBIDDEN: 403,
    PROVIDER_UNAVAILABLE: 503,
    RATE_LIMITED: 429,
    REQUEST_TIMEOUT: 408,
    NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    INTERNAL_ERROR: 500,
}
"""HTTP status of each code. `not_found`/`method_not_allowed` are for unknown routes only."""

PASSED_THROUGH: Final = frozenset({SESSION_BUSY, INVALID_REQUEST, MESSAGE_TOO_LARGE})
"""Runtime 4xx codes relayed as they are: they describe the caller's request, not the runtime."""


class GatewayError(Exception):
    """A failed request, as the client will see it."""

    def __init__(self, code: str, message: str, *, session: Mapping[str, Any] | None = None,
                 retry_after: float | None = None, not_taken: bool = False, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.session = dict(session) if session is not None else None
        self.retry_after = retry_after
        self.not_taken = not_taken
        """A runtime call that surely did nothing (`RuntimeCallFailed.not_taken`): the same call to
        the session's current endpoint, if that is another one, repeats nothing. Not shown to clients."""
        self.extra = extra

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 500)

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.session, **self.extra)

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}

    def with_session(self, session: Mapping[str, Any] | None) -> GatewayError:
        """The same error naming `session` (when it did not name one yet)."""
        if self.session is None and session is not None:
            self.session = dict(session)
        return self


def error_body(code: str, message: str, session: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "session": dict(session) if session is not None else None, **extra}


def runtime_error(status: int, body: Any, session: Mapping[str, Any]) -> GatewayError:
    """What a non-2xx answer of a session's runtime means to the gateway's client.

    The runtime's own 4xx about the request (`session_busy`, `invalid_request`,
    `message_too_large`) are relayed with their code and message; anything else — a 5xx, an
    unknown code, a body that is not the runtime's error shape — means the session's runtime is not
    serving, which is `provider_unavailable` (503). The runtime's status and code are kept under
    `upstream` for whoever debugs it.
    """
    code = body.get("code") if isinstance(body, Mapping) else None
    message = body.get("message") if isinstance(body, Mapping) else None
    if 400 <= status < 500 and code in PASSED_THROUGH:
        extra = {"seq": body["seq"]} if isinstance(body, Mapping) and "seq" in body else {}
        return GatewayError(code, str(message or code), session=session, **extra)
    upstream: dict[str, Any] = {"status": status}
    if code:
        upstream["code"] = code
    detail = f"{code}: {message}" if code and message else (str(message or code or "") or f"HTTP {status}")
    return GatewayError(PROVIDER_UNAVAILABLE, f"the session's runtime answered {status} ({detail})",
                        session=session, upstream=upstream)


def unavailable(session: Mapping[str, Any] | None, why: str) -> GatewayError:
    return GatewayError(PROVIDER_UNAVAILABLE, f"the session's runtime is unreachable: {why}", session=session)


def runtime_failure(failure: RuntimeCallFailed) -> GatewayError:
    """What a failed call to a session's runtime (`wire.runtime_client`) means to the gateway's client."""
    session = failure.session.to_json() if failure.session is not None else None
    error = (runtime_error(failure.status, failure.body, session or {}) if failure.status is not None
             else unavailable(session, failure.why))
    error.not_taken = failure.not_taken
    return error


def invalid_message(error: InvalidMessage) -> GatewayError:
    """A message request refused by the wire's rules (`invalid_request` 422, `message_too_large` 413)."""
    return GatewayError(error.code, str(error))


def stream_error_frame(error: GatewayError, session: dict[str, Any] | None) -> Frame:
    """The closing `event: error` of a stream that failed in the gateway (no seq: the runtime did
    not record it)."""
    return {"session": error.session or session, "seq": None, "event": EVENT_ERROR, "code": error.code,
            "message": error.message}
