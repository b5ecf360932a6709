"""The watch history: committed changes in order, bounded, with the listeners each one wakes."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from agent_sessions.dev.object_store.errors import expired


@dataclass(frozen=True)
class WatchEvent:
    """One committed change; ``old`` (the previous state) lets watchers with selectors turn
    a MODIFIED into ADDED/DELETED when an object enters or leaves their selection."""

    resource_version: int
    group_resource: tuple[str, str]
    type: str  # ADDED | MODIFIED | DELETED
    object: dict
    old: dict | None


class EventLog:
    """A store's committed changes, in order and bounded, and the listeners each one wakes.

    Why: watches replay from it (410 Expired once the oldest events are compacted away), and
    in-process components (the fake kubelet, the pod runner) follow it instead of polling. The
    embedded store and the node simulator's mirror of a real API server both keep one. Not
    thread-safe by itself: its owner's lock guards it.
    """

    def __init__(self, size: int = 10_000) -> None:
        self.resource_version = 0
        self.listeners: set[Callable[[], None]] = set()
        """Called after every append, under the owner's lock: they must only schedule work."""
        self._events: deque[WatchEvent] = deque()
        self._size = size
        self._compacted = 0  # every event after this resourceVersion is still here

    def next_version(self) -> int:
        self.resource_version += 1
        return self.resource_version

    def append(self, event: WatchEvent) -> None:
        self._events.append(event)
        while len(self._events) > self._size:
            self._compacted = self._events.popleft().resource_version
        for listener in list(self.listeners):
            listener()

    def after(self, resource_version: int) -> list[WatchEvent]:
        """Events newer than ``resource_version``; 410 Expired if some are gone."""
        if resource_version < self._compacted:
            raise expired(resource_version, self._compacted + 1)
        newer: list[WatchEvent] = []
        for event in reversed(self._events):
            if event.resource_version <= resource_version:
                break
            newer.append(event)
        return newer[::-1]
