"""Injected API failures: "the next N requests like this one fail with that status".

Why: resilience tests make the API fail on purpose (500s on a status patch, 409s on a
finalizer patch). The embedded API answers them itself; in front of a real kube-apiserver, the
test tier's fault proxy does. Both keep one `FaultPlan`, so a test means the same on either.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from .object_store import ApiError

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType",
           422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}
"""The `reason` of a Status for each code the API server answers with."""


@dataclass
class _Fault:
    method: str | None
    pattern: re.Pattern[str]
    status: int
    remaining: int
    retry_after: float | None
    message: str | None


class FaultPlan:
    """Planned failures, taken by the requests they match (thread-safe)."""

    def __init__(self) -> None:
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def add(self, method: str | None, path: str, status: int = 500, *, count: int = 1,
            retry_after: float | None = None, message: str | None = None) -> None:
        """The next ``count`` requests whose method matches (None = any) and whose path matches
        the regular expression ``path`` (``re.search``) fail with ``status`` and a ``Status``
        body; ``retry_after`` sets ``Retry-After``."""
        with self._lock:
            self._faults.append(_Fault(method.upper() if method else None, re.compile(path),
                                       status, count, retry_after, message))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> ApiError | None:
        """The failure planned for this request (used up), or None."""
        with self._lock:
            for fault in self._faults:
                if fault.method in (None, method) and fault.remaining > 0 and fault.pattern.search(path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    headers = {}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = str(int(fault.retry_after))
                    return ApiError(fault.status, REASONS.get(fault.status, "Unknown"),
                                    fault.message or f"injected failure ({fault.status})", headers=headers)
        return None
