"""One sequential worker per session, with requeues, backoff and a concurrency limit.

kopf hands us events; many events for one session may arrive while it is being reconciled
(its own status write produces one). Reconciling each of them in turn would be wasted work,
and reconciling two at once would race. So a trigger only marks the session dirty: its worker
reconciles once more when it finishes, with the newest data, and otherwise sleeps until the
requeue delay `reconcile()` asked for. Triggers for different sessions run concurrently, up to
a limit, so a burst of new sessions cannot flood the API server.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable

from . import metrics

logger = logging.getLogger(__name__)

ERROR_BACKOFF = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Delays after consecutive unexpected errors of one session's reconcile."""
JITTER = 0.1
"""Fraction of random spread added to every delay, so retries of many sessions do not align."""


class SessionScheduler:
    """Runs `reconcile(key)` for each triggered key: never twice at once for one key."""

    def __init__(
        self,
        reconcile: Callable[[Hashable], Awaitable[tuple[float | None, bool]]],
        *,
        concurrency: int = 32,
    ) -> None:
        """`reconcile(key)` returns `(requeue_after, backoff)`: when `backoff` is true the delay is
        a base that grows with every consecutive call asking for backoff (provider unavailable)."""
        self._reconcile = reconcile
        self._limit = asyncio.Semaphore(concurrency)
        self._workers: dict[Hashable, asyncio.Task[None]] = {}
        self._dirty: set[Hashable] = set()
        self._unless: dict[Hashable, list[tuple[Callable[[], bool], str]]] = {}
        """Conditional triggers (and their causes) that came during a key's reconcile, asked when it ends."""
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._failures: dict[Hashable, int] = {}
        self._backoffs: dict[Hashable, int] = {}
        self._closed = False
        self._forgotten: set[Hashable] = set()
        """Keys forgotten while their reconcile ran: their count goes when it ends."""
        self._causes: dict[Hashable, str] = {}
        """What asked for a key's next reconcile (the first trigger since its last one)."""
        self.completed: Counter[Hashable] = Counter()
        """Reconciles finished per key (successful or not): what tests and `dev` wait on."""

    def trigger(self, key: Hashable, unless: Callable[[], bool] | None = None, cause: str = "event") -> None:
        """Reconcile `key` soon (now, or right after the reconcile in progress). `unless`: a
        trigger that needs no reconcile when it answers True — asked now, or, when a reconcile of
        `key` is in progress, once it has ended (a watch event of a session may arrive before the
        write it echoes has returned to the reconcile that made it). `cause`: what asks, counted
        per reconcile (`agent_session_reconciles_total`)."""
        if self._closed:
            return
        worker = self._workers.get(key)
        running = worker is not None and not worker.done()
        if unless is not None:
            if running:
                self._unless.setdefault(key, []).append((unless, cause))
                return
            if unless():
                return
        self._forgotten.discard(key)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._causes.setdefault(key, cause)
        if running:
            self._dirty.add(key)
            return
        # In a context of its own: a task (and each timer) copies the context it is made in, and a
        # trigger from a kopf handler runs in kopf's, which holds the watch event's whole body —
        # kept for as long as the session's requeue timer lives (one full body per session).
        self._workers[key] = asyncio.get_running_loop().create_task(
            self._work(key), name=f"reconcile {key}", context=contextvars.Context())

    def forget(self, key: Hashable) -> None:
        """The session is gone: drop its timer and counters (a running worker finishes), so a
        deleted session leaves nothing behind (issue 11: flat memory under churn)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._unless.pop(key, None)
        self._causes.pop(key, None)
        self._failures.pop(key, None)
        self._backoffs.pop(key, None)
        self.completed.pop(key, None)
        worker = self._workers.get(key)
        if worker is not None and not worker.done():
            self._forgotten.add(key)

    def drop(self, which: Callable[[Hashable], bool]) -> None:
        """Stop all work on the keys `which` selects, at once: timers, pending triggers and
        reconciles in progress (cancelled). For keys another operator now owns (sharding)."""
        for key in [k for k in self._timers if which(k)]:
            self._timers.pop(key).cancel()
        self._dirty = {k for k in self._dirty if not which(k)}
        for key in [k for k in self._unless if which(k)]:
            del self._unless[key]
        for key in [k for k in self._causes if which(k)]:
            del self._causes[key]
        for key in [k for k in self._workers if which(k)]:
            self._workers.pop(key).cancel()
        for counters in (self._failures, self._backoffs):
            for key in [k for k in counters if which(k)]:
                del counters[key]

    @property
    def busy(self) -> bool:
        return any(not w.done() for w in self._workers.values())

    async def close(self) -> None:
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        workers = [w for w in self._workers.values() if not w.done()]
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _work(self, key: Hashable) -> None:
        delay: float | None = None
        while True:
            self._dirty.discard(key)
            self._unless.pop(key, None)
            metrics.RECONCILES.labels(self._causes.pop(key, "event")).inc()
            async with self._limit:
                delay, failed = await self._run_once(key)
            if key in self._forgotten:
                self._forgotten.discard(key)
                delay = None
            else:
                self.completed[key] += 1
            for unless, cause in self._unless.pop(key, ()):
                if not unless():
                    self._causes.setdefault(key, cause)
                    self._dirty.add(key)
                    break
            if key not in self._dirty or self._closed:
                break  # (closed: a reconcile that swallowed its cancellation does not run again)
        self._workers.pop(key, None)
        if delay is not None and not self._closed:
            spread = delay * (1 + random.uniform(0, JITTER))
            self._timers[key] = asyncio.get_running_loop().call_later(
                spread, self.trigger, key, None, "retry" if failed else "requeue", context=contextvars.Context())

    async def _run_once(self, key: Hashable) -> tuple[float | None, bool]:
        """(when to reconcile again, whether this one failed)."""
        try:
            requeue, backoff = await self._reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            attempt = self._failures.get(key, 0)
            self._failures[key] = attempt + 1
            delay = ERROR_BACKOFF[min(attempt, len(ERROR_BACKOFF) - 1)]
            metrics.RECONCILE_ERRORS.inc()
            logger.exception("reconcile of %s failed; retrying in %.0fs", key, delay)
            return delay, True
        self._failures.pop(key, None)
        if backoff and requeue is not None:
            attempt = self._backoffs.get(key, 0)
            self._backoffs[key] = attempt + 1
            return min(requeue * 2**attempt, 300.0), False
        self._backoffs.pop(key, None)
        return requeue, False
