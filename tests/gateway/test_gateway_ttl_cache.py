"""The auth answer cache: expiry, bound, one lookup per key at a time, failures not kept."""

from __future__ import annotations

import asyncio

import pytest

from agent_sessions.gateway.ttl_cache import TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl():
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(10.0, clock=clock)
    cache.put("k", 1)
    clock.now = 9.9
    assert cache.get("k") == (True, 1)
    clock.now = 10.0
    assert cache.get("k") == (False, None)


def test_falsy_values_are_cached_too():
    cache: TTLCache[str, object] = TTLCache(10.0)
    cache.put("denied", False)
    cache.put("unknown token", None)
    assert cache.get("denied") == (True, False)
    assert cache.get("unknown token") == (True, None)


def test_least_recently_used_entries_go_first():
    cache: TTLCache[str, int] = TTLCache(10.0, max_size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert cache.get("b") == (False, None)
    assert cache.get("a") == (True, 1) and cache.get("c") == (True, 3)


def test_ttl_zero_caches_nothing():
    cache: TTLCache[str, int] = TTLCache(0.0)
    cache.put("a", 1)
    assert len(cache) == 0


async def test_concurrent_misses_share_one_load():
    cache: TTLCache[str, int] = TTLCache(10.0)
    calls = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    waiters = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiters) == [42] * 5
    assert calls == 1
    assert await cache.get_or_load("k", load) == 42 and calls == 1


async def test_failed_loads_are_not_cached():
    cache: TTLCache[str, int] = TTLCache(10.0)

    async def fail() -> int:
        raise RuntimeError("api down")

    async def succeed() -> int:
        return 1

    with pytest.raises(RuntimeError):
        await cache.get_or_load("k", fail)
    assert await cache.get_or_load("k", succeed) == 1


async def test_a_caller_going_away_does_not_cancel_the_shared_load():
    cache: TTLCache[str, int] = TTLCache(10.0)
    gate = asyncio.Event()

    async def load() -> int:
        await gate.wait()
        return 7

    first = asyncio.create_task(cache.get_or_load("k", load))
    second = asyncio.create_task(cache.get_or_load("k", load))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert await second == 7
    assert cache.get("k") == (True, 7)
