"""Whether kopf's peering keeps this replica paused, decided as kopf decides it (HA, §9).

With a peering name, kopf keeps one operator of the peering active: a replica pauses while the
peering object (a `ClusterKopfPeering` cluster-wide, a `KopfPeering` in each served namespace)
lists a live peer of a higher priority — or of the same one, which pauses every such replica —
and while kopf's peering resource is not served at all. kopf then stops its own watches; the
operator's informers (`k8s.informer`) and scheduler are not kopf's, so this gate watches the same
objects and applies the same rule (kopf 1.45 `process_peering_event`, `Peer.is_dead`): while it
says paused, no session is reconciled (`OperatorRuntime.owns`). Both read the same events, so
they agree but for the moments between their reading of one event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_LIFETIME = 60
"""A peer entry's lifetime when it states none (kopf's default)."""


class PeeringGate:
    """`paused` from the peering objects this replica's informers deliver (`seen`, `missing`)."""

    def __init__(self, identity: str, priority: int, name: str, *, on_change: Callable[[bool], None],
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.identity = identity
        self.priority = priority
        self.name = name
        self.on_change = on_change
        self.clock = clock
        self._peers: dict[str, Mapping[str, Any]] = {}
        """Namespace ("" cluster-wide) → the peering object's status: identity → entry."""
        self._missing: set[str] = set()
        self._listed = False
        self.paused = True
        """As kopf starts with a mandatory peering: paused until the peering objects are read."""
        self.reason = "the peering objects are not read yet"

    def seen(self, event_type: str | None, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        if meta.get("name") != self.name:
            return
        namespace = meta.get("namespace") or ""
        if event_type == "DELETED":
            self._peers.pop(namespace, None)
        else:
            self._peers[namespace] = dict(obj.get("status") or {})
        self._decide()

    def missing(self, where: str, is_missing: bool) -> None:
        """The peering resource is (not) served where `where` lists it: kopf pauses while it is not."""
        if is_missing:
            self._missing.add(where)
        else:
            self._missing.discard(where)
        self._decide()

    def listed(self) -> None:
        """The peering objects have been listed: decide from now on."""
        self._listed = True
        self._decide()

    def _decide(self) -> None:
        reason = self._why_paused()
        paused = reason is not None
        self.reason = reason or ""
        if paused != self.paused:
            self.paused = paused
            if paused:
                logger.info("pausing: %s (kopf peering %r)", reason, self.name)
            else:
                logger.info("resuming: no other live operator of peering %r outranks this one", self.name)
            self.on_change(paused)

    def _why_paused(self) -> str | None:
        if not self._listed:
            return "the peering objects are not read yet"
        if self._missing:
            return "the kopf peering resource is not served"
        now = self.clock()
        for status in self._peers.values():
            for identity, entry in status.items():
                if identity == self.identity or not isinstance(entry, Mapping) or _dead(entry, now):
                    continue
                priority = _int(entry.get("priority"), 0)
                if priority > self.priority:
                    return f"operator {identity} has a higher priority ({priority} > {self.priority})"
                if priority == self.priority:
                    return f"operator {identity} has the same priority ({priority}): kopf pauses both"
        return None


def _dead(entry: Mapping[str, Any], now: datetime) -> bool:
    lastseen = entry.get("lastseen")
    if not isinstance(lastseen, str):
        return False  # kopf takes a peer without one as seen now
    try:
        seen = datetime.fromisoformat(lastseen.replace("Z", "+00:00"))
    except ValueError:
        return False
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=timezone.utc)
    return seen + timedelta(seconds=_int(entry.get("lifetime"), DEFAULT_LIFETIME)) <= now


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
