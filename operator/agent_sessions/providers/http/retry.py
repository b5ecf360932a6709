"""When to retry a request to a platform, and how long to wait first. Pure: tested with tables.

* Retried: connection failures, timeouts, 408, 429 and 5xx — except 501 (the platform does not
  implement the call: asking again cannot help). Every call of the contract is idempotent, so a
  retry after a lost answer is safe; in particular a repeated PUT never creates a second session.
* The wait before retry *n* (0-based) is exponential with "equal jitter": a random point in the
  upper half of `min(cap, base · 2ⁿ)`. Retries of many sessions hitting one recovering platform
  spread out instead of arriving together, yet each wait is at least half its step, so the
  schedule still backs off.
* `Retry-After` (delta-seconds or an HTTP-date) replaces the computed wait, capped: a platform
  that asks for more than a reconcile can wait is answered by giving up with
  `ProviderUnavailable(retry_after=…)`, and the operator requeues the session.
* One call waits at most its budget in total; the attempt count (`maxRetries`) bounds it too.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from .constants import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    DEFAULT_MAX_RETRIES,
    RETRY_AFTER_CAP_SECONDS,
    RETRY_BUDGET_SECONDS,
)

RETRYABLE_STATUSES = frozenset({408, 429})
"""Statuses below 500 worth repeating: a timeout on the platform's side, and rate limiting."""


def is_retryable(status: int) -> bool:
    """Whether an answer with `status` may succeed when asked again."""
    return status in RETRYABLE_STATUSES or (500 <= status <= 599 and status != 501)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds (`120`, also `1.5`) or an
    HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`, relative to `now`). A date in the past is 0.
    None when absent or unreadable (the caller falls back to its own backoff)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds and seconds != float("inf") else None  # no NaN/inf
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # HTTP-dates are GMT
    current = now or datetime.now(timezone.utc)
    return max((when - current).total_seconds(), 0.0)


def backoff_delay(
    attempt: int,
    *,
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = BACKOFF_CAP_SECONDS,
    rng: Callable[[], float] = random.random,
) -> float:
    """The wait before retry `attempt` (0 for the first retry): within
    `[step / 2, step]` where `step = min(cap, base · 2^attempt)`."""
    step = min(cap, base * 2 ** max(attempt, 0))
    return step / 2 + rng() * step / 2


@dataclass(frozen=True)
class RetryPolicy:
    """How one provider call retries."""

    max_retries: int = DEFAULT_MAX_RETRIES
    """Retries after the first attempt."""
    budget: float = RETRY_BUDGET_SECONDS
    """Seconds one call may spend waiting between attempts, in total."""
    retry_after_cap: float = RETRY_AFTER_CAP_SECONDS
    base: float = BACKOFF_BASE_SECONDS
    cap: float = BACKOFF_CAP_SECONDS

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry `attempt`: the platform's `Retry-After` (capped) when it gave
        one, else the jittered exponential backoff."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        return backoff_delay(attempt, base=self.base, cap=self.cap, rng=rng)
