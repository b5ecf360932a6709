"""One replica's hold on one shard: acquire a free or expired shard Lease, renew it, release it.

`tick()` is one step of the state machine and returns how long to wait before the next one; `run()`
loops over it. Tests drive `tick()` with a fake clock and a fake Lease API.

Standing by (no shard held), each tick reads the shard Leases (in an order of this replica's own,
so replicas starting together spread over the shards) and takes the first one that

* does not exist (create; a 409 means another replica created it first),
* has no holder (released on a clean shutdown) or names this replica,
* or has kept the resourceVersion this replica first saw a full `leaseDurationSeconds` ago, by
  this replica's monotonic clock (its holder stopped renewing),

with a replace guarded by the resourceVersion it read: of replicas racing for one Lease, one wins,
the others get 409. Holding a shard, each tick renews it every `renew_interval` (again guarded:
a 409 whose fresh read names another holder means the shard is lost). A holder that has not renewed
successfully within `renew_deadline` of the start of its last renewal loses the shard at once:
`owns()` turns false by the clock alone, and `on_lost` cancels the shard's work. An observer cannot
take the shard before `leaseDurationSeconds` after that renewal, so the two never overlap (the
difference, a third of the duration, is the time a cancelled reconcile has to stop).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from agent_sessions.api import constants as c

from .lease_client import LeaseConflict, LeaseGone

logger = logging.getLogger(__name__)

STOP_RETRY_SECONDS = 0.1
"""`stop` cancels the loop again after this long, until it has ended."""


class Leases(Protocol):
    """What `ShardLeases` needs of the API (`LeaseClient`, or a fake in tests)."""

    namespace: str

    async def get(self, name: str, *, timeout: float | None = None) -> dict[str, Any] | None: ...
    async def create(self, body: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]: ...
    async def replace(self, body: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LeaseTiming:
    """All periods follow from the lease duration (client-go's leader election uses 15/10/2 s)."""

    duration: int = 15
    """`spec.leaseDurationSeconds`: how long after its last renewal a Lease counts as expired."""

    def __post_init__(self) -> None:
        if self.duration < 1:
            raise ValueError(f"the lease duration must be at least 1 second, got {self.duration}")

    @property
    def renew_interval(self) -> float:
        """A holder renews this often (five renewals per duration: a few may fail)."""
        return self.duration / 5

    @property
    def renew_deadline(self) -> float:
        """A holder that has not renewed for this long stops reconciling its shard."""
        return self.duration * 2 / 3

    @property
    def retry_period(self) -> float:
        """A standby reads the Leases this often; a takeover lands within duration + this."""
        return self.duration / 5


@dataclass(frozen=True)
class Seen:
    """A Lease as a standby last saw it change."""

    resource_version: str
    since: float
    """Our monotonic clock when we first saw this resourceVersion."""
    duration: float
    """The Lease's own `leaseDurationSeconds` (its holder's setting, not ours)."""


def micro_time(moment: datetime) -> str:
    """A MicroTime as the API server writes it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def holder_of(lease: dict[str, Any]) -> str | None:
    return (lease.get("spec") or {}).get("holderIdentity") or None


def acquired_lease(lease: dict[str, Any] | None, *, name: str, namespace: str, identity: str, duration: int,
                   now: datetime) -> dict[str, Any]:
    """`lease` (None: a new one) held by `identity` from `now`, carrying the resourceVersion read."""
    previous = dict(lease or {})
    metadata = dict(previous.get("metadata") or {"name": name, "namespace": namespace})
    labels = dict(metadata.get("labels") or {})
    labels.setdefault(c.LABEL_MANAGED_BY, c.MANAGED_BY)
    metadata["labels"] = labels
    spec = dict(previous.get("spec") or {})
    transitions = int(spec.get("leaseTransitions") or 0)
    if lease is not None and holder_of(lease) != identity:
        transitions += 1
    spec.update(holderIdentity=identity, leaseDurationSeconds=duration, acquireTime=micro_time(now),
                renewTime=micro_time(now), leaseTransitions=transitions)
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


def renewed_lease(lease: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**lease, "spec": {**lease["spec"], "renewTime": micro_time(now)}}


def released_lease(lease: dict[str, Any], now: datetime) -> dict[str, Any]:
    """No holder (others take it at once), as client-go releases a Lease."""
    spec = {k: v for k, v in lease["spec"].items() if k != "holderIdentity"}
    spec.update(leaseDurationSeconds=1, renewTime=micro_time(now))
    return {**lease, "spec": spec}


class ShardLeases:
    """This replica's shard: at most one of `shards`, held through the Lease `<prefix>-shard-<i>`."""

    def __init__(
        self,
        leases: Leases,
        *,
        shards: int,
        prefix: str,
        identity: str,
        timing: LeaseTiming = LeaseTiming(),
        on_acquired: Callable[[int], None] = lambda shard: None,
        on_lost: Callable[[int], None] = lambda shard: None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        order: list[int] | None = None,
    ) -> None:
        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        self.leases = leases
        self.shards = shards
        self.identity = identity
        self.timing = timing
        self.names = [f"{prefix}-shard-{i}" for i in range(shards)]
        self.on_acquired = on_acquired
        self.on_lost = on_lost
        self._clock = clock
        self._wall_clock = wall_clock
        self._order = order if order is not None else random.sample(range(shards), shards)
        self._held: int | None = None
        self._lease: dict[str, Any] | None = None
        """Our last write of the held Lease (its resourceVersion guards the next one)."""
        self._valid_until = 0.0
        self._next_renew = 0.0
        self._seen: dict[str, Seen] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # --- what the operator asks ----------------------------------------------------------

    @property
    def held(self) -> int | None:
        """The shard this replica holds now, or None (by the clock: no renewal, no shard)."""
        if self._held is not None and self._clock() < self._valid_until:
            return self._held
        return None

    def owns(self, shard: int) -> bool:
        return self.held == shard

    # --- the loop ------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self.run(), name="shard leases")

    async def run(self) -> None:
        while not self._stopping:
            try:
                delay = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the loop die: the shard would be held by nobody
                logger.exception("shard lease step failed")
                delay = self.timing.retry_period
            if not self._stopping:
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        """End the loop (the shard stays held until `release()` or its deadline). A call that
        swallows its cancellation (Python 3.11's `wait_for` when the answer comes with the cancel,
        a client library) cannot keep it going: the loop ends after its step, and the task is
        cancelled again until it has."""
        self._stopping = True
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_RETRY_SECONDS)
        if task is not None and not task.cancelled() and task.exception() is not None:
            logger.warning("the shard lease loop ended with %r", task.exception())

    async def release(self, timeout: float = 5.0) -> None:
        """Clean shutdown, once the shard's work has stopped: free the Lease for another replica."""
        await self.stop()
        shard, lease, valid = self._held, self._lease, self.held is not None
        if shard is None or lease is None:
            return
        self._lose(shard, "released", level=logging.INFO)
        if not valid:
            return  # past its deadline: another replica may hold it already
        try:
            await self.leases.replace(released_lease(lease, self._wall_clock()), timeout=timeout)
        except Exception as error:  # it expires by itself
            logger.warning("could not release shard lease %s (%s); it expires in %ss", self.names[shard],
                           error, lease["spec"].get("leaseDurationSeconds"))

    async def abandon(self) -> None:
        """Stop at once and never write again, as a killed process does (its Lease expires)."""
        await self.stop()
        if self._held is not None:
            self._lose(self._held, "abandoned (as if killed: the Lease is left to expire)")

    # --- one step ------------------------------------------------------------------------

    async def tick(self) -> float:
        """One step; returns the seconds until the next one."""
        if self._held is not None:
            return await self._keep(self._held)
        return await self._acquire()

    async def _keep(self, shard: int) -> float:
        now = self._clock()
        if now >= self._valid_until:
            self._lose(shard, f"not renewed within {self.timing.renew_deadline:.1f}s")
            return 0.0
        if now < self._next_renew:
            return min(self._next_renew, self._valid_until) - now
        assert self._lease is not None
        budget = self._valid_until - now
        try:
            async with asyncio.timeout(budget):
                written = await self.leases.replace(renewed_lease(self._lease, self._wall_clock()), timeout=budget)
        except LeaseConflict:
            current = await self._read(self.names[shard], budget)
            if current is not None and holder_of(current) == self.identity:
                self._lease = current  # someone else touched it (labels?): renew again on top of that
                return 0.0
            self._lose(shard, f"taken by {holder_of(current)}" if current else "its Lease changed and cannot be read")
            return 0.0
        except LeaseGone:
            self._lose(shard, "its Lease was deleted")
            return 0.0
        except Exception as error:  # the API is unreachable (or slow): try again until the deadline
            logger.warning("renewing shard lease %s failed: %s", self.names[shard], repr(error))
            return max(0.0, min(self.timing.retry_period, self._valid_until - self._clock()))
        self._hold(shard, written, started=now)
        return self.timing.renew_interval

    async def _acquire(self) -> float:
        for shard in self._order:
            name = self.names[shard]
            now = self._clock()
            try:
                lease = await self.leases.get(name, timeout=self.timing.retry_period)
            except Exception as error:
                logger.debug("reading shard lease %s failed: %s", name, error)
                continue
            if lease is not None:
                seen = self._observe(name, lease, now)
                holder = holder_of(lease)
                if holder not in (None, self.identity) and now < seen.since + seen.duration:
                    continue
            body = acquired_lease(lease, name=name, namespace=self.leases.namespace, identity=self.identity,
                                  duration=self.timing.duration, now=self._wall_clock())
            started = self._clock()
            try:
                if lease is None:
                    written = await self.leases.create(body, timeout=self.timing.retry_period)
                else:
                    written = await self.leases.replace(body, timeout=self.timing.retry_period)
            except (LeaseConflict, LeaseGone):
                continue  # another replica was first
            except Exception as error:
                logger.debug("acquiring shard lease %s failed: %s", name, error)
                continue
            previous = holder_of(lease) if lease is not None else None
            self._hold(shard, written, started=started)
            logger.info("holding shard %d of %d (Lease %s/%s%s)", shard, self.shards, self.leases.namespace, name,
                        f", taken over from {previous}" if previous not in (None, self.identity) else "")
            self.on_acquired(shard)
            return self.timing.renew_interval
        return self._next_attempt()

    # --- state ---------------------------------------------------------------------------

    def _hold(self, shard: int, lease: dict[str, Any], *, started: float) -> None:
        self._held, self._lease = shard, lease
        self._valid_until = started + self.timing.renew_deadline
        self._next_renew = started + self.timing.renew_interval
        self._seen.pop(self.names[shard], None)

    def _lose(self, shard: int, why: str, level: int = logging.WARNING) -> None:
        self._held, self._lease = None, None
        self._valid_until = self._next_renew = 0.0
        logger.log(level, "no longer holding shard %d (Lease %s/%s): %s", shard, self.leases.namespace,
                       self.names[shard], why)
        self.on_lost(shard)

    def _observe(self, name: str, lease: dict[str, Any], now: float) -> Seen:
        version = str((lease.get("metadata") or {}).get("resourceVersion", ""))
        seen = self._seen.get(name)
        if seen is None or seen.resource_version != version:
            duration = float((lease.get("spec") or {}).get("leaseDurationSeconds") or self.timing.duration)
            seen = self._seen[name] = Seen(version, now, duration)
        return seen

    def _next_attempt(self) -> float:
        """Read again after the retry period, or sooner when a Lease we saw can expire sooner."""
        now = self._clock()
        expiries = [seen.since + seen.duration - now for seen in self._seen.values()]
        return max(0.01, min([self.timing.retry_period, *expiries]))

    async def _read(self, name: str, budget: float) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(budget):
                return await self.leases.get(name, timeout=budget)
        except Exception:
            return None

