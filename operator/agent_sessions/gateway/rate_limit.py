"""Per-caller rate limiting: one token bucket per user name, in this replica.

Why per replica: the gateway is stateless, so a limit shared by all replicas would need shared
state (Redis, the API server) on every request. A bucket per replica bounds what one caller can
make one replica do, which is what protects the runtimes and the API server behind it; with N
replicas behind a load balancer a caller gets at most N times the rate.

On by default (10 per second, bursts of 50: `options`): every HTTP request and every WebSocket
frame that names a session takes a token, so one caller cannot make a replica send the API server
thousands of SubjectAccessReviews (one per distinct session a frame names, `authz`) or open
thousands of session feeds. Answered with 429 `rate_limited` and `Retry-After`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """`burst` tokens, refilled at `rate` per second; each request takes one."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """0.0 if a token was taken, else the seconds until one will be available."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate if self.rate > 0 else float("inf")


class RateLimiter:
    """Buckets by caller; `rate` 0 disables limiting. Idle callers' buckets are forgotten (an idle
    bucket is full, so forgetting it changes nothing) once more than `max_callers` are kept."""

    def __init__(self, rate: float, burst: int, *, max_callers: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.max_callers = max_callers
        self.clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def check(self, caller: str) -> float:
        """0.0 if `caller` may go ahead now, else the seconds to wait (for `Retry-After`)."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self.burst, now)
            self._buckets[caller] = bucket
        self._buckets.move_to_end(caller)
        wait = bucket.take(now)
        while len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        return wait
