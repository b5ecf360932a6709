"""Conditional triggers (`SessionScheduler.trigger(key, unless=…)`): a watch event that echoes the
operator's own write needs no reconcile, and whether it does is known only once the reconcile
that made the write has its answer."""

from __future__ import annotations

import asyncio

from agent_sessions.reconciler import SessionScheduler


async def settle(scheduler: SessionScheduler) -> None:
    while scheduler.busy:
        await asyncio.sleep(0.01)


async def test_an_idle_key_is_reconciled_unless_the_trigger_says_no_and_its_timer_stays():
    runs: list[str] = []

    async def reconcile(key: str) -> tuple[float | None, bool]:
        runs.append(key)
        return 30.0, False

    scheduler = SessionScheduler(reconcile)
    scheduler.trigger("a")
    await settle(scheduler)
    timer = scheduler._timers["a"]
    scheduler.trigger("a", unless=lambda: True)
    await settle(scheduler)
    assert runs == ["a"] and scheduler._timers["a"] is timer and not timer.cancelled()
    scheduler.trigger("a", unless=lambda: False)
    await settle(scheduler)
    assert runs == ["a", "a"]
    await scheduler.close()


async def test_during_a_reconcile_a_conditional_trigger_is_asked_when_it_ends():
    runs: list[str] = []
    gate = asyncio.Event()
    mine: set[str] = set()

    async def reconcile(key: str) -> tuple[float | None, bool]:
        runs.append(key)
        await gate.wait()
        mine.add("v2")  # the write's answer reaches the reconcile only now
        return None, False

    scheduler = SessionScheduler(reconcile)
    scheduler.trigger("a")
    await asyncio.sleep(0.01)
    scheduler.trigger("a", unless=lambda: "v2" in mine)  # the echo, before the answer: not known yet
    gate.set()
    await settle(scheduler)
    assert runs == ["a"]  # asked after the reconcile: ours, no second reconcile

    gate.clear()
    scheduler.trigger("a")
    await asyncio.sleep(0.01)
    scheduler.trigger("a", unless=lambda: "v2" in mine)
    scheduler.trigger("a", unless=lambda: "v9" in mine)  # someone else's change came too
    gate.set()
    await settle(scheduler)
    assert runs == ["a", "a", "a"]
    assert not scheduler._unless
    await scheduler.close()
