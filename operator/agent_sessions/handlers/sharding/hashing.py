"""Which shard a session belongs to: the same answer in every process, forever."""

from __future__ import annotations

import hashlib


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The shard (0 … shards-1) of session `namespace/name`.

    sha256 of "namespace/name", not Python's `hash()` (salted per process: two replicas would
    disagree). The name, not the uid: every trigger (pod events, wake requests, template changes)
    knows a session by namespace and name, and a session recreated under its name stays put."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards
