"""Wake requests from the gateway (`wire.wake_request`): watched, checked, handed to the reconcile.

The gateway holds no write access to AgentSessions; to wake a session stopped for idleness it
creates a signed Event. kopf watches Events with the `agentsession.dev/wake-request` label only
(a server-side selector, `handlers.settings`), so the operator never sees a cluster's other
Events. A request that checks (`valid_wake_request`) is kept here, per session, until a reconcile
has seen it; the reconcile records it in `status.wakeRequest` and resumes the session if it is
stopped for idleness and `lifecycle.wakeOnMessage` allows it.

Nothing here writes: a forged, stale or replayed request costs one log line at debug level.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent_sessions.wire.wake_request import newer, valid_wake_request

logger = logging.getLogger(__name__)

MAX_PENDING = 10_000
"""At most this many sessions with a request not yet seen by a reconcile (each entry is a few
hundred bytes); beyond it the oldest entry is dropped (its gateway times out with 503 and the
client tries again)."""

Key = tuple[str, str]


@dataclass
class PendingWakes:
    """Per session: the newest checked wake request (uid, requested-at) no reconcile has seen."""

    _pending: dict[Key, tuple[str, str]] = field(default_factory=dict)

    def offer(self, key: Key, uid: str, requested_at: str) -> bool:
        """Keep the request if it is newer than the one kept; True if kept."""
        held = self._pending.get(key)
        if held is not None and held[0] == uid and not newer(requested_at, held[1]):
            return False
        self._pending.pop(key, None)
        self._pending[key] = (uid, requested_at)
        while len(self._pending) > MAX_PENDING:
            self._pending.pop(next(iter(self._pending)))
        return True

    def pending(self, key: Key, uid: str | None) -> str | None:
        held = self._pending.get(key)
        if held is None:
            return None
        if held[0] != uid:  # a namesake: the request was for a session that is gone
            self._pending.pop(key, None)
            return None
        return held[1]

    def seen(self, key: Key, requested_at: str | None) -> None:
        """A reconcile ran with `requested_at`: forget it unless a newer one came meanwhile."""
        held = self._pending.get(key)
        if held is not None and held[1] == requested_at:
            del self._pending[key]

    def __len__(self) -> int:
        return len(self._pending)


def on_wake_event(event: dict[str, Any], *, key: bytes | None, current_uid: Callable[[str, str], str | None],
                  pending: PendingWakes, trigger: Callable[[Key], None], now: float | None = None) -> bool:
    """Handle one wake request Event; True if it was accepted (and the session triggered)."""
    involved = event.get("involvedObject") or {}
    where = f"{involved.get('namespace')}/{involved.get('name')}" if isinstance(involved, dict) else "?"
    if key is None:
        logger.warning("ignoring wake request for %s: this operator has no runtime key", where)
        return False
    namespace, name = (involved.get("namespace"), involved.get("name")) if isinstance(involved, dict) else (None, None)
    uid = current_uid(namespace, name) if isinstance(namespace, str) and isinstance(name, str) else None
    request = valid_wake_request(event, key, current_uid=uid, now=time.time() if now is None else now)
    if isinstance(request, str):
        logger.debug("ignoring wake request Event %s for %s: %s",
                     (event.get("metadata") or {}).get("name"), where, request)
        return False
    session_key = (request.namespace, request.name)
    if pending.offer(session_key, request.uid, request.requested_at):
        trigger(session_key)
    return True
