"""Fault injection for the reference server: make the platform fail the way real ones do.

A fault matches requests by path (a regular expression searched in the path) and method, and
applies to the next `count` of them, or to all of them for `seconds`, or both (whichever ends
first), or until cleared. What it does, in order: wait `latencyMs`; then either close the
connection without answering (`drop`), or answer `status` (with `Retry-After: retryAfter`),
or — with neither — let the request through (pure latency). The admin API (`/v1/admin/…`) is
never faulted, so a test can always clear what it set.

The book is shared between the server's event loop and test threads, hence the lock.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ADMIN_PREFIX = "/v1/admin/"

_STATUS_CODES = {
    400: "invalid_configuration",
    401: "unauthorized",
    404: "session_not_found",
    409: "session_already_exists",
    422: "invalid_configuration",
    429: "rate_limited",
}


def code_for_status(status: int) -> str:
    """The contract's error code for an injected status."""
    return _STATUS_CODES.get(status, "provider_unavailable" if status >= 500 else "invalid_request")


@dataclass
class Fault:
    """One injected failure (see the module docstring); `to_json` is its admin-API shape."""

    status: int | None = None
    count: int | None = None
    seconds: float | None = None
    retry_after: str | None = None
    paths: str | None = None
    methods: tuple[str, ...] | None = None
    latency_ms: float = 0.0
    drop: bool = False
    id: int = 0
    created: float = field(default_factory=time.monotonic)
    hits: int = 0

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status: {self.status} is not an HTTP status")
        if self.count is not None and self.count < 1:
            raise ValueError("count: must be at least 1")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError("seconds: must be positive")
        if self.latency_ms < 0:
            raise ValueError("latencyMs: must not be negative")
        if self.paths is not None:
            try:
                re.compile(self.paths)
            except re.error as error:
                raise ValueError(f"paths: not a regular expression: {error}") from None
        if self.methods is not None:
            self.methods = tuple(method.upper() for method in self.methods)

    @classmethod
    def from_json(cls, body: Any) -> Fault:
        """A fault from its admin-API JSON; ValueError names the offending field."""
        if not isinstance(body, Mapping):
            raise ValueError("the fault must be a JSON object")
        known = {"status", "count", "seconds", "retryAfter", "paths", "methods", "latencyMs", "drop"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(f"unknown fields {unknown} (known: {sorted(known)})")
        status, count, seconds = body.get("status"), body.get("count"), body.get("seconds")
        retry_after, paths, methods = body.get("retryAfter"), body.get("paths"), body.get("methods")
        latency, drop = body.get("latencyMs", 0), body.get("drop", False)
        _expect("status", status, int)
        _expect("count", count, int)
        _expect("seconds", seconds, int | float)
        _expect("retryAfter", retry_after, int | float | str)
        _expect("paths", paths, str)
        _expect("latencyMs", latency, int | float)
        _expect("drop", drop, bool)
        if methods is not None and not (isinstance(methods, list) and all(isinstance(m, str) for m in methods)):
            raise ValueError("methods: must be a list of HTTP methods")
        if status is None and not drop and not latency:
            raise ValueError("a fault needs status, drop or latencyMs")
        return cls(
            status=status,
            count=count,
            seconds=float(seconds) if seconds is not None else None,
            retry_after=f"{retry_after:g}" if isinstance(retry_after, int | float) else retry_after,
            paths=paths,
            methods=tuple(methods) if methods is not None else None,
            latency_ms=float(latency or 0),
            drop=drop,
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "hits": self.hits}
        for key, value in (("status", self.status), ("count", self.count), ("seconds", self.seconds),
                           ("retryAfter", self.retry_after), ("paths", self.paths),
                           ("methods", list(self.methods) if self.methods else None),
                           ("latencyMs", self.latency_ms or None), ("drop", self.drop or None)):
            if value is not None:
                body[key] = value
        return body

    def expired(self, now: float) -> bool:
        if self.count is not None and self.hits >= self.count:
            return True
        return self.seconds is not None and now - self.created >= self.seconds

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return self.paths is None or re.search(self.paths, path) is not None


class FaultBook:
    """The faults in force, first match wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.id = self._next_id
            fault.created = time.monotonic()
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[Fault]:
        with self._lock:
            self._prune(time.monotonic())
            return list(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        """The fault that applies to this request (counted as hit), if any."""
        if path.startswith(ADMIN_PREFIX):
            return None
        with self._lock:
            now = time.monotonic()
            self._prune(now)
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def _prune(self, now: float) -> None:
        self._faults = [fault for fault in self._faults if not fault.expired(now)]


def _expect(name: str, value: Any, kind: Any) -> None:
    if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
        raise ValueError(f"{name}: {value!r} has the wrong type")
