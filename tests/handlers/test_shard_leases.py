"""Sharding's pure parts: the shard of a session, and the Lease state machine of one replica
(`handlers.sharding`), driven step by step with a fake clock and an in-memory Lease API that
answers 404/409 as the API server does."""

from __future__ import annotations

import asyncio
import copy
import os
import random
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from agent_sessions.handlers.sharding import LeaseConflict, LeaseGone, LeaseTiming, ShardLeases, shard_of

TIMING = LeaseTiming(duration=15)  # renew every 3 s, renew deadline 10 s, standbys read every 3 s


# --- the shard of a session ------------------------------------------------------------------


def test_a_session_maps_to_the_same_shard_in_every_process():
    names = [("default", f"session-{i}") for i in range(50)] + [("team-a", "demo"), ("team-b", "demo")]
    here = [shard_of(ns, name, 4) for ns, name in names]
    code = ("from agent_sessions.handlers.sharding import shard_of; "
            f"print([shard_of(ns, name, 4) for ns, name in {names!r}])")
    for seed in ("1", "2"):  # Python's own hash() would differ between these processes
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
        assert out.strip() == repr(here)


def test_the_shard_is_sha256_of_namespace_slash_name():
    import hashlib

    digest = hashlib.sha256(b"team-a/demo").digest()
    assert shard_of("team-a", "demo", 7) == int.from_bytes(digest[:8], "big") % 7
    # The namespace is part of it: namesakes in two namespaces are two sessions.
    assert {shard_of(f"ns-{i}", "demo", 64) for i in range(20)} != {shard_of("ns-0", "demo", 64)}


@pytest.mark.parametrize("shards", [2, 3, 8])
def test_sessions_spread_evenly_over_the_shards(shards):
    counts = Counter(shard_of("default", f"session-{i}", shards) for i in range(4000))
    assert sorted(counts) == list(range(shards))
    expected = 4000 / shards
    assert all(abs(n - expected) < 0.15 * expected for n in counts.values()), counts


def test_one_shard_holds_every_session_and_zero_shards_is_refused():
    assert {shard_of("default", f"s{i}", 1) for i in range(100)} == {0}
    with pytest.raises(ValueError):
        shard_of("default", "s", 0)


# --- fakes -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime(2030, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=self.now)


class FakeLeases:
    """Leases of one namespace with the API server's rules: a create of an existing name is 409,
    a replace with another resourceVersion is 409, of a missing name 404. `down` makes every call
    fail as an unreachable server would. Reads yield to the loop, so concurrent ticks interleave."""

    namespace = "agent-sessions-system"

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.version = 0
        self.down = False
        self.writes: list[tuple[str, str, str | None]] = []  # (verb, name, holder)

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("unreachable")

    def _store(self, body: dict) -> dict:
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.objects[body["metadata"]["name"]] = stored
        return copy.deepcopy(stored)

    async def get(self, name: str, *, timeout: float | None = None) -> dict | None:
        await asyncio.sleep(0)
        self._check()
        found = self.objects.get(name)
        return copy.deepcopy(found) if found else None

    async def create(self, body: dict, *, timeout: float | None = None) -> dict:
        await asyncio.sleep(0)
        self._check()
        name = body["metadata"]["name"]
        if name in self.objects:
            raise LeaseConflict(name)
        self.writes.append(("create", name, body["spec"].get("holderIdentity")))
        return self._store(body)

    async def replace(self, body: dict, *, timeout: float | None = None) -> dict:
        await asyncio.sleep(0)
        self._check()
        name = body["metadata"]["name"]
        current = self.objects.get(name)
        if current is None:
            raise LeaseGone(name)
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise LeaseConflict(name)
        self.writes.append(("replace", name, body["spec"].get("holderIdentity")))
        return self._store(body)

    def holder(self, shard: int) -> str | None:
        return self.objects[f"ops-shard-{shard}"]["spec"].get("holderIdentity")


class Replica:
    """A `ShardLeases` with what its callbacks were told."""

    def __init__(self, leases: FakeLeases, clock: FakeClock, identity: str, shards: int = 2,
                 order: list[int] | None = None, timing: LeaseTiming = TIMING) -> None:
        self.events: list[tuple[str, int, float]] = []
        self.shards = ShardLeases(
            leases, shards=shards, prefix="ops", identity=identity, timing=timing, clock=clock,
            wall_clock=clock.wall, order=order if order is not None else list(range(shards)),
            on_acquired=lambda shard: self.events.append(("acquired", shard, clock.now)),
            on_lost=lambda shard: self.events.append(("lost", shard, clock.now)),
        )
        self.next_tick = clock.now
        self.alive = True

    async def tick_if_due(self, now: float) -> None:
        if self.alive and now >= self.next_tick:
            self.next_tick = now + await self.shards.tick()


async def run_for(seconds: float, clock: FakeClock, replicas: list[Replica], step: float = 0.1,
                  check=lambda: None) -> None:
    """Advance the clock, ticking every replica when it asked to be ticked again."""
    end = clock.now + seconds
    while clock.now < end:
        for replica in replicas:
            await replica.tick_if_due(clock.now)
            check()
        clock.now = round(clock.now + step, 6)
        check()


def owners(replicas: list[Replica], shards: int = 2) -> dict[int, list[str]]:
    return {s: [r.shards.identity for r in replicas if r.shards.owns(s)] for s in range(shards)}


# --- acquiring -------------------------------------------------------------------------------


async def test_replicas_take_one_shard_each_and_the_rest_stand_by():
    clock, leases = FakeClock(), FakeLeases()
    replicas = [Replica(leases, clock, name) for name in ("a", "b", "c")]  # all try shard 0 first
    await run_for(1, clock, replicas)
    assert owners(replicas) == {0: ["a"], 1: ["b"]}
    assert replicas[2].shards.held is None
    assert leases.holder(0) == "a" and leases.holder(1) == "b"
    assert [e[:2] for e in replicas[0].events] == [("acquired", 0)]
    lease = leases.objects["ops-shard-0"]
    assert lease["spec"]["leaseDurationSeconds"] == 15 and lease["spec"]["leaseTransitions"] == 0
    assert lease["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "agent-session-operator"}
    assert lease["spec"]["renewTime"].endswith("Z") and len(lease["spec"]["renewTime"]) == 27  # MicroTime


async def test_a_holder_keeps_its_shard_by_renewing_and_a_standby_never_takes_it():
    clock, leases = FakeClock(), FakeLeases()
    replicas = [Replica(leases, clock, name) for name in ("a", "b", "c")]
    await run_for(120, clock, replicas)
    assert owners(replicas) == {0: ["a"], 1: ["b"]}
    renewals = [w for w in leases.writes if w == ("replace", "ops-shard-0", "a")]
    assert 120 / 3 - 2 <= len(renewals) <= 120 / 3 + 1  # every renew interval (3 s)
    assert [e[0] for r in replicas for e in r.events] == ["acquired", "acquired"]


async def test_a_dead_holders_shard_is_taken_over_a_lease_duration_after_its_last_renewal():
    clock, leases = FakeClock(), FakeLeases()
    a, b, standby = (Replica(leases, clock, name) for name in ("a", "b", "standby"))
    await run_for(10, clock, [a, b, standby])
    a.alive = False  # killed: no more ticks, no release
    last_renewal = max(i for i, w in enumerate(leases.writes) if w[1:] == ("ops-shard-0", "a"))
    killed_at = clock.now
    await run_for(20, clock, [b, standby], check=lambda: assert_one_owner_each([a, b, standby]))
    assert owners([a, b, standby]) == {0: ["standby"], 1: ["b"]}
    (acquired,) = [e for e in standby.events if e[0] == "acquired"]
    took = acquired[2] - killed_at
    # Taken within the duration (15 s) from the kill, give or take a renew interval either way.
    assert TIMING.duration - TIMING.renew_interval <= took <= TIMING.duration + TIMING.retry_period, took
    assert leases.writes[last_renewal + 1:].count(("replace", "ops-shard-0", "standby")) >= 1
    assert leases.objects["ops-shard-0"]["spec"]["leaseTransitions"] == 1
    # The dead holder would have stopped on its own before that: its deadline passed unrenewed.
    assert a.shards.held is None


def assert_one_owner_each(replicas: list[Replica]) -> None:
    for shard, holders in owners(replicas).items():
        assert len(holders) <= 1, (shard, holders)


async def test_a_standby_waits_a_full_duration_from_when_it_first_saw_the_lease_unchanged():
    # A Lease renewed a minute ago by the wall clock but new to this replica counts from now:
    # other machines' clocks are never trusted.
    clock, leases = FakeClock(), FakeLeases()
    a = Replica(leases, clock, "a", shards=1)
    await run_for(1, clock, [a])
    a.alive = False
    clock.now += 60
    late = Replica(leases, clock, "late", shards=1)
    await run_for(TIMING.duration - 0.2, clock, [late])
    assert late.shards.held is None
    await run_for(0.5, clock, [late])
    assert late.shards.held == 0


async def test_a_standby_uses_the_duration_written_on_the_lease():
    clock, leases = FakeClock(), FakeLeases()
    long = Replica(leases, clock, "long", shards=1, timing=LeaseTiming(duration=60))
    await run_for(1, clock, [long])
    long.alive = False
    short = Replica(leases, clock, "short", shards=1, timing=LeaseTiming(duration=5))
    await run_for(30, clock, [short])
    assert short.shards.held is None  # its own 5 s do not apply to a Lease that says 60
    await run_for(31, clock, [short])
    assert short.shards.held == 0


async def test_a_released_shard_is_taken_at_once():
    clock, leases = FakeClock(), FakeLeases()
    a, standby = Replica(leases, clock, "a", shards=1), Replica(leases, clock, "standby", shards=1)
    await run_for(5, clock, [a, standby])
    await a.shards.release()
    a.alive = False
    assert a.shards.held is None and ("lost", 0, clock.now) in a.events
    assert leases.holder(0) is None
    await run_for(TIMING.retry_period + 0.2, clock, [standby])
    assert standby.shards.held == 0


async def test_a_holder_that_cannot_renew_stops_at_its_deadline_before_anyone_may_take_over():
    clock, leases = FakeClock(), FakeLeases()
    a, standby = Replica(leases, clock, "a", shards=1), Replica(leases, clock, "standby", shards=1)
    await run_for(2, clock, [a, standby])
    renewed = clock.now
    leases.down = True  # a network partition: nobody reaches the API server
    await run_for(TIMING.renew_deadline + 1, clock, [a, standby])
    assert a.shards.held is None
    (lost,) = [e for e in a.events if e[0] == "lost"]
    assert lost[2] - renewed <= TIMING.renew_deadline + 0.2
    leases.down = False
    await run_for(30, clock, [a, standby], check=lambda: assert_one_owner_each([a, standby]))
    # The lease still names `a` and nobody else wrote it: `a` takes its own Lease back at once.
    assert a.shards.held == 0 and standby.shards.held is None


async def test_owns_turns_false_at_the_deadline_even_without_a_tick():
    clock, leases = FakeClock(), FakeLeases()
    a = Replica(leases, clock, "a", shards=1)
    await a.tick_if_due(clock.now)
    assert a.shards.owns(0)
    clock.now += TIMING.renew_deadline - 0.01
    assert a.shards.owns(0)
    clock.now += 0.02
    assert not a.shards.owns(0)


async def test_a_holder_whose_lease_was_taken_loses_it_on_its_next_renewal():
    clock, leases = FakeClock(), FakeLeases()
    a = Replica(leases, clock, "a", shards=1)
    await run_for(1, clock, [a])
    # Someone forced the Lease to another holder (kubectl edit, or a replica whose clock jumped).
    lease = leases.objects["ops-shard-0"]
    await leases.replace({**lease, "spec": {**lease["spec"], "holderIdentity": "usurper"}})
    await run_for(TIMING.renew_interval + 0.2, clock, [a])
    assert a.shards.held is None and [e[0] for e in a.events] == ["acquired", "lost"]


async def test_a_holder_whose_lease_was_only_relabelled_keeps_it():
    clock, leases = FakeClock(), FakeLeases()
    a = Replica(leases, clock, "a", shards=1)
    await run_for(1, clock, [a])
    lease = leases.objects["ops-shard-0"]
    await leases.replace({**lease, "metadata": {**lease["metadata"], "labels": {"team": "x"}}})
    await run_for(10, clock, [a])
    assert a.shards.held == 0 and [e[0] for e in a.events] == ["acquired"]
    assert leases.objects["ops-shard-0"]["metadata"]["labels"] == {"team": "x"}


async def test_a_deleted_lease_is_lost_then_created_again():
    clock, leases = FakeClock(), FakeLeases()
    a = Replica(leases, clock, "a", shards=1)
    await run_for(1, clock, [a])
    del leases.objects["ops-shard-0"]
    await run_for(TIMING.renew_interval + TIMING.retry_period + 0.5, clock, [a])
    assert [e[0] for e in a.events] == ["acquired", "lost", "acquired"]
    assert leases.holder(0) == "a"


async def test_of_two_standbys_racing_for_an_expired_lease_one_wins():
    clock, leases = FakeClock(), FakeLeases()
    a = Replica(leases, clock, "a", shards=1)
    b, c = Replica(leases, clock, "b", shards=1), Replica(leases, clock, "c", shards=1)
    await run_for(1, clock, [a, b, c])
    a.alive = False
    clock.now += TIMING.duration + 1
    # Both read the expired Lease before either writes (the fake yields between calls).
    await asyncio.gather(b.shards.tick(), c.shards.tick())
    assert sorted(r.shards.identity for r in (b, c) if r.shards.held == 0) in (["b"], ["c"])
    assert len([w for w in leases.writes if w[0] == "replace" and w[2] in ("b", "c")]) == 1


async def test_an_abandoned_shard_is_not_released():
    clock, leases = FakeClock(), FakeLeases()
    a = Replica(leases, clock, "a", shards=1)
    await run_for(1, clock, [a])
    writes = len(leases.writes)
    await a.shards.abandon()
    assert a.shards.held is None and [e[0] for e in a.events] == ["acquired", "lost"]
    assert len(leases.writes) == writes and leases.holder(0) == "a"


@pytest.mark.parametrize("seed", range(8))
async def test_no_shard_ever_has_two_owners_through_deaths_partitions_and_restarts(seed):
    """A random history: replicas die, come back (as new processes), and lose the API server for
    a while. At every step of the clock no shard has two owners; once things calm down every
    shard is held by one live replica."""
    rng = random.Random(seed)
    clock, leases = FakeClock(), FakeLeases()
    shards = 3
    replicas = [Replica(leases, clock, f"r{i}", shards=shards, order=rng.sample(range(shards), shards))
                for i in range(5)]
    born = len(replicas)

    def check() -> None:
        for shard, holders in owners(replicas, shards).items():
            assert len(holders) <= 1, (seed, clock.now, shard, holders)

    for _ in range(40):
        event = rng.random()
        if event < 0.25:
            victim = rng.choice([r for r in replicas if r.alive])
            victim.alive = False  # killed
            replicas.append(Replica(leases, clock, f"r{born}", shards=shards, order=rng.sample(range(shards), shards)))
            born += 1
        elif event < 0.4:
            leases.down = True
        else:
            leases.down = False
        await run_for(rng.uniform(0.5, 12), clock, replicas, step=0.25, check=check)
    leases.down = False
    await run_for(TIMING.duration * 2, clock, replicas, step=0.25, check=check)
    assert all(len(holders) == 1 for holders in owners([r for r in replicas if r.alive], shards).values())


def test_the_lease_timing_follows_from_the_duration():
    timing = LeaseTiming(duration=3)
    assert (timing.renew_interval, timing.renew_deadline, timing.retry_period) == (0.6, 2.0, 0.6)
    # A holder stops before an observer may take over, with a third of the duration to spare.
    assert timing.renew_deadline < timing.duration
    with pytest.raises(ValueError):
        LeaseTiming(duration=0)


class SwallowingLeases(FakeLeases):
    """A client whose reads answer even when cancelled — as Python 3.11's `wait_for` does when the
    answer comes with the cancellation, or a library catching it — and never answer otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, name: str, *, timeout: float | None = None) -> dict | None:
        self.reads += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass  # swallowed: the read answers anyway
        return await super().get(name, timeout=timeout)


@pytest.mark.parametrize("how", ["stop", "abandon"])
async def test_stopping_ends_the_loop_even_through_a_call_that_swallows_its_cancellation(how):
    # A kill (`abandon`) that waited for such a loop hung the operator's shutdown (a CI failure:
    # test_sharding's kill of a replica timed out after 30 s).
    clock, leases = FakeClock(), SwallowingLeases()
    replica = Replica(leases, clock, "a", shards=2)
    replica.shards.start()
    while leases.reads == 0:
        await asyncio.sleep(0)
    await asyncio.wait_for(getattr(replica.shards, how)(), timeout=5)
    reads = leases.reads
    await asyncio.sleep(0.2)
    assert leases.reads == reads  # nothing more: the loop is over
