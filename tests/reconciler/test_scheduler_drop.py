"""`SessionScheduler.drop`: the work on sessions another operator took over stops at once
(sharding: a replica that loses its shard)."""

from __future__ import annotations

import asyncio

from agent_sessions.reconciler import SessionScheduler


class Reconciles:
    """A reconcile that blocks on `gate` and records starts, ends and cancellations per key."""

    def __init__(self, requeue_after: float | None = None) -> None:
        self.requeue_after = requeue_after
        self.gate = asyncio.Event()
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []

    async def __call__(self, key: str) -> tuple[float | None, bool]:
        self.started.append(key)
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        self.finished.append(key)
        return self.requeue_after, False


async def until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_drop_cancels_the_selected_reconciles_in_progress_and_leaves_the_others():
    reconciles = Reconciles()
    scheduler = SessionScheduler(reconciles)
    for key in ("a1", "a2", "b1"):
        scheduler.trigger(key)
    await settle()
    scheduler.trigger("a1")  # a trigger while it runs: it would run once more
    scheduler.drop(lambda key: key.startswith("a"))
    await settle()
    assert sorted(reconciles.cancelled) == ["a1", "a2"]
    reconciles.gate.set()
    await settle()
    assert reconciles.finished == ["b1"] and reconciles.started.count("a1") == 1  # not run again
    await scheduler.close()


async def test_drop_cancels_requeue_timers_and_a_dropped_key_can_be_triggered_again():
    reconciles = Reconciles(requeue_after=0.05)
    reconciles.gate.set()
    scheduler = SessionScheduler(reconciles)
    scheduler.trigger("a")
    scheduler.trigger("b")
    await settle()
    assert sorted(reconciles.finished) == ["a", "b"]
    scheduler.drop(lambda key: key == "a")
    await asyncio.wait_for(until(lambda: reconciles.finished.count("b") >= 3), 5)  # b's requeues went on
    assert reconciles.finished.count("a") == 1  # a's did not
    scheduler.trigger("a")  # taken back (the shard was acquired again)
    await settle()
    assert reconciles.finished.count("a") == 2
    await scheduler.close()
