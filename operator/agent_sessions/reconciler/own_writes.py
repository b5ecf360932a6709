"""Telling a stale read from a fresh one: the objects our own writes returned.

Why: the reconciler reads sessions from kopf's in-memory index, which lags behind our own writes
by one watch event. Reconciling from the object we just overwrote would repeat the transition we
just made (a second event, a second create). A resourceVersion we know we replaced identifies
such a stale body exactly, without ever comparing resourceVersions (they are opaque).

The same knowledge tells an event our own write caused (`echoed`): the watch echoes every status
and finalizer patch back, and reconciling a session again for what its reconcile just wrote finds
nothing to do — in a burst, three of a new session's reconciles (issue 11).

Memory is bounded: a session's entry goes as soon as the index has caught up (or someone else
wrote since), when the session is gone (`forget`), and, past `limit` sessions, oldest first. What
a write returned is held packed and without `managedFields` (nothing reads them): during a burst
the index lags behind thousands of writes at once, and each returned body as Python objects is
~20 KiB — 40 MiB of transient heap at 2,000 sessions (issue 11), which the allocator keeps.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from agent_sessions.api.json_shape import pack_json, unpack_json

LIMIT = 10_000


class OwnWrites:
    """Per session uid: the resourceVersions our writes replaced, and what the last one returned."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, tuple[set[str], bytes | dict[str, Any], str]] = OrderedDict()
        """uid → (the resourceVersions our writes replaced, what the last one returned (packed), its
        resourceVersion)."""

    def __len__(self) -> int:
        return len(self._entries)

    def freshest(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body`, or the object our own last write returned if `body` predates that write."""
        uid = body["metadata"].get("uid", "")
        known = self._entries.get(uid)
        if known is None:
            return body
        replaced, latest, _ = known
        if body["metadata"].get("resourceVersion") in replaced:
            return unpack_json(latest)  # a fresh copy: the caller may change it
        del self._entries[uid]  # the index caught up, or someone else wrote since: trust it
        return body

    def echoed(self, uid: str, version: str) -> bool:
        """The index now holds version `version` of session `uid` (a watch event's): whether it
        is a state our own writes made or already wrote past, so reconciling it again finds
        nothing new. Only the exact resourceVersions our writes returned or replaced count: a
        change by anyone else never does. The echo of our last write is the index catching up:
        the entry goes."""
        known = self._entries.get(uid)
        if known is None or not version:
            return False
        if version == known[2]:
            del self._entries[uid]
            return True
        return version in known[0]

    def remember(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Our write turned `before` into `after`."""
        uid = before["metadata"].get("uid", "")
        replaced = self._entries.pop(uid, (set(), b"", ""))[0]
        replaced.add(before["metadata"].get("resourceVersion", ""))
        self._entries[uid] = (replaced, pack_json(_without_managed_fields(after)),
                              str((after.get("metadata") or {}).get("resourceVersion", "")))
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def forget(self, uid: str) -> None:
        self._entries.pop(uid, None)


def _without_managed_fields(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    if "managedFields" not in meta:
        return body
    return {**body, "metadata": {key: value for key, value in meta.items() if key != "managedFields"}}
