"""Sharding: N operator replicas split the sessions, each shard held through a Lease (§9).

Why: one operator reconciles every session; past some thousands of sessions a single process is
the bottleneck (CPU, API round trips), and kopf peering only offers standby replicas, never
sharing. With `agent-sessions run --shards N` every session belongs to one shard, `shard_of()` of
its namespace/name (sha256, so every process agrees), and a replica reconciles the sessions of
the one shard it holds. It holds a shard through the `coordination.k8s.io` Lease
`<prefix>-shard-<i>` (`ShardLeases`): acquired when free or expired, renewed, released on a clean
shutdown. Replicas beyond N hold nothing and stand by: when a holder dies its Lease expires and a
standby takes the shard over (that is the HA story with shards; kopf peering is off, because it
would keep all but one replica idle).

Every replica still watches every session (kopf's indexes), so a replica that takes a shard over
starts from a warm index: it only has to trigger the shard's sessions.

Exactly one reconciler per session, also across a takeover: a Lease is written only with the
resourceVersion it was read at (a race is a 409 for all but one replica); an observer counts a
Lease as expired a full lease duration after it *first saw* its current resourceVersion, by its
own monotonic clock (so clocks of different machines never matter, as in client-go's leader
election); and a holder stops reconciling once it has not renewed for two thirds of the duration,
measured from the start of its last successful renewal, before any observer can count it expired.
"""

from .hashing import shard_of
from .lease_client import LeaseClient, LeaseConflict, LeaseGone
from .shard_leases import LeaseTiming, ShardLeases

__all__ = ["LeaseClient", "LeaseConflict", "LeaseGone", "LeaseTiming", "ShardLeases", "shard_of"]
