"""A session's platform settings (`spec.http`), read once per call from the resolved config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .constants import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_SECONDS

DEFAULT_SECRET_KEY = "token"
"""`credentialsSecretRef.key` when not given (as in the API model)."""


@dataclass(frozen=True)
class SecretKey:
    """A key of a Secret in the session's namespace."""

    name: str
    key: str = DEFAULT_SECRET_KEY


@dataclass(frozen=True)
class PlatformSettings:
    """Where a session's platform is and how to talk to it."""

    url: str
    """Base URL, without a trailing `/`."""
    credentials: SecretKey | None = None
    """Where the bearer token is; None for a platform that needs none."""
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    """Seconds one request may take."""
    max_retries: int = DEFAULT_MAX_RETRIES
    """Retries after the first attempt of one call."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PlatformSettings:
        """The settings of a resolved configuration that `http_problems` found no fault with."""
        http = _mapping(config.get("http"))
        ref = _mapping(http.get("credentialsSecretRef"))
        credentials = SecretKey(ref["name"], ref.get("key") or DEFAULT_SECRET_KEY) if ref.get("name") else None
        timeout = http.get("timeoutSeconds")
        retries = http.get("maxRetries")
        return cls(
            url=str(http.get("url") or "").rstrip("/"),
            credentials=credentials,
            timeout=float(timeout) if isinstance(timeout, int | float) and timeout > 0 else DEFAULT_TIMEOUT_SECONDS,
            max_retries=int(retries) if isinstance(retries, int) and retries >= 0 else DEFAULT_MAX_RETRIES,
        )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
