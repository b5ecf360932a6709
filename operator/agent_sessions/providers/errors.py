"""The errors every provider raises, typed so the reconciler can act without knowing the provider.

The reconciler never inspects a provider's own exceptions (an `ApiException`, an HTTP status, a
tmux exit code): it needs only to know whether to retry (`ProviderUnavailable`, with backoff and
jitter, honouring `retry_after`), to fail the session for good (`InvalidConfiguration`), or that
the backing is not there (`SessionNotFound`). Each error carries the wire code of §1, which the
gateway and the HTTP provider contract use as `{"code": ..., "message": ...}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar


class ProviderError(Exception):
    """Base of every provider error. `code` is the stable, machine-readable error code."""

    code: ClassVar[str] = "provider_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SessionNotFound(ProviderError):
    """The session's backing does not exist (never created, deleted, or vanished)."""

    code: ClassVar[str] = "session_not_found"


class SessionAlreadyExists(ProviderError):
    """A backing with the session's name exists but belongs to someone else (another uid).

    Never raised for the session's own backing: `ensure()` is idempotent and adopts it.
    """

    code: ClassVar[str] = "session_already_exists"


class ProviderUnavailable(ProviderError):
    """Transient: the provider could not be reached or asked to come back later. Retry with
    backoff and jitter; wait at least `retry_after` seconds when the provider said so."""

    code: ClassVar[str] = "provider_unavailable"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidConfiguration(ProviderError):
    """Permanent: the provider (or the platform behind it) rejected the configuration. Retrying
    the same configuration cannot succeed; the session fails until its spec changes."""

    code: ClassVar[str] = "invalid_configuration"

    def __init__(self, problems: Iterable[str] | str) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else [str(p) for p in problems]
        super().__init__("; ".join(self.problems) or "invalid configuration")
