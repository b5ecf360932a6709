"""Translating a platform's error answers into the provider errors the reconciler understands.

The error body's `code` wins over the HTTP status when both are present and known (a platform
may answer 503 `provider_unavailable` or 400 `invalid_configuration`); otherwise the status
decides:

| answer | error | why |
|---|---|---|
| 400, 422, `invalid_configuration` | `InvalidConfiguration` | the platform refused the config: permanent |
| 404, `session_not_found` | `SessionNotFound` | callers that want absence treat it as done |
| 409, `session_already_exists` | `SessionAlreadyExists` | the id belongs to another session |
| 401, 403 | `ProviderUnavailable` | the credentials are wrong: fixed in the Secret, not the session |
| 408, 429, 5xx, `provider_unavailable` | `ProviderUnavailable` (with `Retry-After`) | transient |
| anything else | `ProviderUnavailable` | the platform does not keep the contract; say so |

Messages carry the platform's own words, redacted (they end up in conditions and Events).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import (
    InvalidConfiguration,
    ProviderError,
    ProviderUnavailable,
    SessionAlreadyExists,
    SessionNotFound,
)
from ..redaction import redact
from .constants import (
    CODE_INVALID_CONFIGURATION,
    CODE_PROVIDER_UNAVAILABLE,
    CODE_SESSION_ALREADY_EXISTS,
    CODE_SESSION_NOT_FOUND,
)

MAX_MESSAGE_LENGTH = 500
"""A platform's message is cut to this many characters (an HTML error page is not a message)."""

_BY_CODE: dict[str, type[ProviderError]] = {
    CODE_SESSION_NOT_FOUND: SessionNotFound,
    CODE_SESSION_ALREADY_EXISTS: SessionAlreadyExists,
    CODE_INVALID_CONFIGURATION: InvalidConfiguration,
    CODE_PROVIDER_UNAVAILABLE: ProviderUnavailable,
}


def error_body(body: bytes | str | Mapping[str, Any] | None) -> tuple[str | None, str]:
    """`(code, message)` of an error answer: the contract's `{"code", "message"}`, else the raw
    text (cut and redacted), else empty."""
    parsed: Any = body
    if isinstance(body, bytes):
        parsed = body.decode("utf-8", errors="replace")
    if isinstance(parsed, str):
        try:
            parsed = json.loads(parsed) if parsed.strip() else None
        except ValueError:
            return None, _clean(parsed)
    if isinstance(parsed, Mapping):
        code = parsed.get("code")
        message = parsed.get("message")
        return (code if isinstance(code, str) else None), _clean(str(message) if message is not None else "")
    return None, ""


def answer_error(
    status: int,
    body: bytes | str | Mapping[str, Any] | None,
    *,
    action: str,
    retry_after: float | None = None,
) -> ProviderError:
    """The provider error for a non-2xx answer to `action` (e.g. `PUT https://…/v1/sessions/…`)."""
    code, message = error_body(body)
    said = f"{status} {code}" if code else str(status)
    detail = f"{action}: the platform answered {said}" + (f": {message}" if message else "")
    kind = _BY_CODE.get(code or "")
    if kind is None:
        kind = _by_status(status)
    if kind is InvalidConfiguration:
        return InvalidConfiguration([f"the platform rejected the configuration: {message or said}"])
    if kind is ProviderUnavailable:
        if status in (401, 403):
            detail += " (check the bearer token in spec.http.credentialsSecretRef)"
        return ProviderUnavailable(detail, retry_after=retry_after)
    return kind(detail)


def _by_status(status: int) -> type[ProviderError]:
    if status in (400, 422):
        return InvalidConfiguration
    if status == 404:
        return SessionNotFound
    if status == 409:
        return SessionAlreadyExists
    return ProviderUnavailable


def _clean(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_MESSAGE_LENGTH:
        text = text[: MAX_MESSAGE_LENGTH - 1] + "…"
    return redact(text)
