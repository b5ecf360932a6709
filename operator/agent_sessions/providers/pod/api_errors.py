"""Translating Kubernetes API failures into the provider errors the reconciler understands.

The distinction that matters is transient versus permanent. The API server being down, slow,
overloaded (429, 5xx), a connection reset or a timeout: retry (`ProviderUnavailable`, with the
server's `Retry-After`). The API server refusing the *objects* we built from the session's
configuration — a 422 (invalid), a 400, or a 403 from admission (Pod Security, a policy engine)
— will refuse them again: `InvalidConfiguration`, carrying the server's own message, which names
the offending field. Two refusals are treated as transient although they are 403s: an exceeded
ResourceQuota (it frees up as other sessions stop) and a forbidden *read* (the operator's RBAC is
wrong; that is fixed by the operator's installer, not by the session's author).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from ..errors import (
    InvalidConfiguration,
    ProviderError,
    ProviderUnavailable,
    SessionAlreadyExists,
    SessionNotFound,
)

TRANSIENT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
"""Failures below HTTP: the API server could not be reached or did not answer in time."""


def api_error(error: ApiException, *, action: str, create: bool = False) -> ProviderError:
    """The provider error for an `ApiException` raised while doing `action` (e.g. "create pod
    ags-demo-1a2b3c4d"). `create` marks requests that carry the objects we built."""
    status = error.status or 0
    message = f"{action}: {api_message(error)}"
    if status == 404:
        return SessionNotFound(message)
    if status == 409:
        return SessionAlreadyExists(message)
    if status == 403 and create and "exceeded quota" in message:
        return ProviderUnavailable(message, retry_after=retry_after(error))
    if create and status in (400, 403, 422):
        return InvalidConfiguration([message])
    if status == 401:
        return ProviderUnavailable(f"{message} (the operator's credentials were rejected)")
    if status == 403:
        return ProviderUnavailable(f"{message} (check the operator's RBAC)")
    if status == 0 or status == 429 or status >= 500:
        return ProviderUnavailable(message, retry_after=retry_after(error))
    return ProviderError(message)


def transport_error(error: BaseException, *, action: str) -> ProviderUnavailable:
    """The API server could not be reached (connection refused, reset, timeout)."""
    detail = str(error) or type(error).__name__
    return ProviderUnavailable(f"{action}: the Kubernetes API could not be reached: {detail}")


def api_message(error: ApiException) -> str:
    """The API server's own message (from the `Status` body), else the HTTP reason."""
    body: Any = error.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body:
        try:
            body = json.loads(body)
        except ValueError:
            return body.strip()
    if isinstance(body, Mapping) and body.get("message"):
        return str(body["message"])
    return f"{error.status} {error.reason or ''}".strip()


def retry_after(error: ApiException) -> float | None:
    """Seconds from the `Retry-After` header (delta-seconds form), if any."""
    headers = error.headers
    if not headers:
        return None
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None and isinstance(headers, Mapping):
        value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return max(seconds, 0.0) if seconds is not None else None
