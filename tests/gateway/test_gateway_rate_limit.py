"""Per-caller token buckets."""

from __future__ import annotations

import pytest

from agent_sessions.gateway.rate_limit import RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate():
    bucket = TokenBucket(rate=2.0, burst=3, tokens=3, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) == pytest.approx(0.5)


def test_bucket_never_holds_more_than_its_burst():
    bucket = TokenBucket(rate=10.0, burst=2, tokens=2, updated=0.0)
    assert [bucket.take(1000.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert bucket.tokens < 1


def test_limiter_keeps_one_bucket_per_caller():
    clock = Clock()
    limiter = RateLimiter(1.0, 1, clock=clock)
    assert limiter.check("alice") == 0.0
    assert limiter.check("alice") == pytest.approx(1.0)
    assert limiter.check("bob") == 0.0
    clock.now += 1.0
    assert limiter.check("alice") == 0.0


def test_rate_zero_disables_limiting():
    limiter = RateLimiter(0.0, 1)
    assert not limiter.enabled
    assert all(limiter.check("alice") == 0.0 for _ in range(1000))


def test_idle_callers_are_forgotten_beyond_the_bound():
    limiter = RateLimiter(1.0, 1, max_callers=2, clock=Clock())
    for caller in ("a", "b", "c"):
        limiter.check(caller)
    assert list(limiter._buckets) == ["b", "c"]  # noqa: SLF001
