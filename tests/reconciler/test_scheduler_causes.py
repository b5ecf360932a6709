"""`agent_session_reconciles_total{cause}`: each reconcile is counted under what asked for it — the
first trigger since the key's last reconcile, its requeue timer, or a retry after an error."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from agent_sessions.reconciler import SessionScheduler


def counted() -> dict[str, float]:
    return {sample.labels["cause"]: sample.value for metric in REGISTRY.collect()
            if metric.name == "agent_session_reconciles" for sample in metric.samples
            if sample.name == "agent_session_reconciles_total"}


def since(before: dict[str, float]) -> dict[str, float]:
    return {cause: value - before.get(cause, 0.0) for cause, value in counted().items()
            if value != before.get(cause, 0.0)}


async def settle(scheduler: SessionScheduler) -> None:
    while scheduler.busy:
        await asyncio.sleep(0.01)


def held_first_run() -> tuple[SessionScheduler, asyncio.Event, list[str]]:
    """A scheduler whose first reconcile waits for the event; the keys reconciled, in order."""
    gate = asyncio.Event()
    runs: list[str] = []

    async def reconcile(key: str) -> tuple[float | None, bool]:
        runs.append(key)
        if len(runs) == 1:
            await gate.wait()
        return None, False

    return SessionScheduler(reconcile), gate, runs


async def test_each_reconcile_is_counted_under_the_cause_that_asked_first():
    scheduler, gate, runs = held_first_run()
    before = counted()
    scheduler.trigger("a", cause="session")
    await asyncio.sleep(0.01)
    # While it runs: a pod event first, then a template; then an echo that needs nothing.
    scheduler.trigger("a", cause="pod")
    scheduler.trigger("a", cause="template")
    scheduler.trigger("a", unless=lambda: True, cause="session")
    gate.set()
    await settle(scheduler)
    assert runs == ["a", "a"] and since(before) == {"session": 1, "pod": 1}

    before = counted()
    scheduler.trigger("b", unless=lambda: True, cause="pod")  # nothing to do: not counted
    await settle(scheduler)
    assert since(before) == {}
    await scheduler.close()


async def test_a_conditional_trigger_that_asks_after_the_run_is_counted_under_its_cause():
    scheduler, gate, runs = held_first_run()
    scheduler.trigger("a", cause="session")
    await asyncio.sleep(0.01)
    before = counted()
    scheduler.trigger("a", unless=lambda: False, cause="dependency")
    gate.set()
    await settle(scheduler)
    assert runs == ["a", "a"] and since(before) == {"dependency": 1}
    await scheduler.close()


async def test_requeues_and_retries_are_counted_apart():
    outcomes = iter([("requeue", 0.05), ("fail", None), ("done", None)])

    async def reconcile(key: str) -> tuple[float | None, bool]:
        what, delay = next(outcomes)
        if what == "fail":
            raise RuntimeError("boom")
        return delay, False

    scheduler = SessionScheduler(reconcile)
    before = counted()
    scheduler.trigger("a", cause="session")
    for _ in range(200):
        await asyncio.sleep(0.01)
        if sum(since(before).values()) == 3 and not scheduler.busy:
            break
    assert since(before) == {"session": 1, "requeue": 1, "retry": 1}
    await scheduler.close()
