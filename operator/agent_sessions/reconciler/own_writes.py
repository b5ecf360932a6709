"""Telling a stale read from a fresh one: the objects our own writes returned.

Why: the reconciler reads sessions from kopf's in-memory index, which lags behind our own writes
by one watch event. Reconciling from the object we just overwrote would repeat the transition we
just made (a second event, a second create). A resourceVersion we know we replaced identifies
such a stale body exactly, without ever comparing resourceVersions (they are opaque).

Memory is bounded: a session's entry goes as soon as the index has caught up (or someone else
wrote since), when the session is gone (`forget`), and, past `limit` sessions, oldest first.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

LIMIT = 10_000


class OwnWrites:
    """Per session uid: the resourceVersions our writes replaced, and what the last one returned."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, tuple[set[str], dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def freshest(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body`, or the object our own last write returned if `body` predates that write."""
        uid = body["metadata"].get("uid", "")
        known = self._entries.get(uid)
        if known is None:
            return body
        replaced, latest = known
        if body["metadata"].get("resourceVersion") in replaced:
            return latest
        del self._entries[uid]  # the index caught up, or someone else wrote since: trust it
        return body

    def remember(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Our write turned `before` into `after`."""
        uid = before["metadata"].get("uid", "")
        replaced = self._entries.pop(uid, (set(), after))[0]
        replaced.add(before["metadata"].get("resourceVersion", ""))
        self._entries[uid] = (replaced, after)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def forget(self, uid: str) -> None:
        self._entries.pop(uid, None)
