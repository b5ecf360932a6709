"""`SessionScheduler.forget`: a session that is gone leaves nothing behind in the scheduler
(issue 11: flat memory under churn), even when it is forgotten by its own last reconcile."""

from __future__ import annotations

import asyncio

from agent_sessions.reconciler import SessionScheduler


async def test_a_key_forgotten_by_its_own_reconcile_leaves_no_count_timer_or_marker():
    scheduler: SessionScheduler

    async def reconcile(key: str) -> tuple[float | None, bool]:
        if key.startswith("gone"):
            scheduler.forget(key)  # as the operator's reconcile does when the session is deleted
            return None, False
        return 30.0, False

    scheduler = SessionScheduler(reconcile)
    for key in ("gone-1", "gone-2", "live"):
        scheduler.trigger(key)
    while scheduler.busy:
        await asyncio.sleep(0.01)
    assert dict(scheduler.completed) == {"live": 1}
    assert set(scheduler._timers) == {"live"} and not scheduler._forgotten and not scheduler._workers
    scheduler.trigger("gone-1")  # looked at again, and gone again: still nothing kept
    while scheduler.busy:
        await asyncio.sleep(0.01)
    assert dict(scheduler.completed) == {"live": 1}
    await scheduler.close()


async def test_forgetting_a_key_between_reconciles_drops_its_count_and_timer():
    async def reconcile(key: str) -> tuple[float | None, bool]:
        return 30.0, False

    scheduler = SessionScheduler(reconcile)
    scheduler.trigger("a")
    while scheduler.busy:
        await asyncio.sleep(0.01)
    assert scheduler.completed["a"] == 1 and "a" in scheduler._timers
    scheduler.forget("a")
    assert "a" not in scheduler.completed and "a" not in scheduler._timers
    await scheduler.close()
