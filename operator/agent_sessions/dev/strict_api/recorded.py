"""What the server records of each HTTP request, for tests to assert on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any





WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class RecordedRequest:
    """One HTTP request as the server saw it; ``status`` is the response code."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    timestamp: float
    group: str | None = None
    version: str | None = None
    resource: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    watch: bool = False
    status: int = 0
    user: str | None = None
    """The authenticated user (None when the server runs without ``tokens``)."""
    groups: tuple[str, ...] = ()
    authorized: bool | None = None
    """The authorizer's decision (None: not asked — no authorizer, or 401 before it)."""
    authorization_reason: str = ""
    user_agent: str = ""
    """The client's User-Agent header (the operator identifies itself with it)."""

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS and self.resource is not None
