"""Making a session able to take a message: deliver now, wake it, or refuse (§4 wake-on-message).

The decision is `wake_decision.route` (pure). Waking is: create a wake request Event signed with
the runtime key (`wire.wake_request`; the gateway holds no write access to AgentSessions), watch the AgentSession until it is
Running with an endpoint (event-driven, `wake_timeout_seconds` at most, 120 s by default), then
poll the runtime's `/healthz` until it answers 200 (the endpoint is published when the pod is
ready, but the agent may still be opening its session). Then the message is delivered as usual.

While waiting, a session that turns Failed, Completed, Terminating or is set to `spec.state:
Stopped` ends the wait with 409 `session_not_running`; a deleted one with 404; a deadline passed
with 503 `provider_unavailable` (and `Retry-After`): the session may still come up.

Limitation: `lifecycle.wakeOnMessage` is resolved from the session, its templates and the operator
defaults the gateway was given (`--operator-defaults`); if the operator runs with other defaults,
its decision wins and a refused wake ends in the 503 above.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.wire.runtime_client import RuntimeClient
from agent_sessions.wire.session_ref import SessionRef
from agent_sessions.wire.wake_request import build_wake_event, parse_wake_timestamp, wake_timestamp

from . import metrics
from .errors import PROVIDER_UNAVAILABLE, SESSION_NOT_FOUND, SESSION_NOT_RUNNING, GatewayError
from .session_directory import SessionDirectory, SessionGone
from .session_view import endpoint_of, is_serving, phase_of, status_of
from .wake_decision import Route, needs_templates, route, wake_on_message

logger = logging.getLogger(__name__)

_GIVEN_UP = frozenset({c.PHASE_FAILED, c.PHASE_COMPLETED, c.PHASE_TERMINATING})


def not_running(obj: Mapping[str, Any], why: str = "") -> GatewayError:
    status = status_of(obj)
    phase = status.get("phase") or "unknown"
    detail = f"phase {phase}"
    if status.get("stoppedReason"):
        detail += f", stopped by {status['stoppedReason']}"
    if phase == c.PHASE_RUNNING and endpoint_of(obj) is None:
        detail += ", no runtime endpoint yet"
    ref = SessionRef.of(obj)
    return GatewayError(SESSION_NOT_RUNNING, f"session {ref} is not running ({detail}){why}", session=ref.to_json())


def _check_resuming(obj: dict[str, Any]) -> bool:
    """For the wait: True once serving; raise if the session will not come up."""
    if is_serving(obj):
        return True
    spec_state = (obj.get("spec") or {}).get("state") or c.STATE_RUNNING
    stopped_by_user = phase_of(obj) == c.PHASE_STOPPED and status_of(obj).get("stoppedReason") == c.STOPPED_USER
    if phase_of(obj) in _GIVEN_UP or spec_state != c.STATE_RUNNING or stopped_by_user \
            or (obj.get("metadata") or {}).get("deletionTimestamp"):
        raise not_running(obj, ": it did not resume")
    return False


MAX_ASKED = 10_000
"""Wakes this process remembers asking for (to join, not repeat, them); the oldest go first."""


class SessionWaker:
    def __init__(self, directory: SessionDirectory, runtime: RuntimeClient, *, timeout: float,
                 operator_defaults: Mapping[str, Any] | None = None,
                 key: Callable[[], bytes | None] = lambda: None) -> None:
        self.directory = directory
        self.runtime = runtime
        self.timeout = timeout
        self.operator_defaults = dict(operator_defaults or {})
        self.key = key
        """The runtime key (it signs wake requests); None until the gateway has read it."""
        self._asked: dict[str, float] = {}
        """uid → when this process last asked for the session to be woken (epoch seconds)."""

    async def deliverable(self, obj: dict[str, Any], requester: str = "") -> dict[str, Any]:
        """`obj` if it can take a message now, else the session once woken; raises GatewayError.
        `requester`: the caller's user name, for the wake request's message."""
        if is_serving(obj):
            return obj
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        templates = await self.directory.templates(namespace) if needs_templates(obj) else {}
        wakeable = wake_on_message(obj, templates, self.operator_defaults)
        uid = meta.get("uid") or ""
        decision = route(obj, wake_on_message=wakeable, now=time.time(), window=self.timeout,
                         asked_at=self._asked.get(uid))
        if decision is Route.NOT_RUNNING:
            raise not_running(obj)
        if decision is Route.DELIVER:
            return obj
        started = time.monotonic()
        if decision is Route.WAKE:
            await self._ask(obj, requester)
        try:
            woken = await self.directory.wait_for(namespace, name, _check_resuming, self.timeout)
            remaining = self.timeout - (time.monotonic() - started)
            await self._wait_healthy(woken, remaining)
        except (TimeoutError, asyncio.TimeoutError):
            metrics.WAKES.labels("timeout").inc()
            ref = SessionRef(namespace, name, meta.get("uid"))
            raise GatewayError(PROVIDER_UNAVAILABLE,
                               f"session {ref} did not resume within {self.timeout:g}s; try again later",
                               session=ref.to_json(), retry_after=5) from None
        except SessionGone:
            raise GatewayError(SESSION_NOT_FOUND, f"session {namespace}/{name} was deleted",
                               session=SessionRef(namespace, name, meta.get("uid")).to_json()) from None
        metrics.WAKES.labels("resumed").inc()
        return woken

    async def _ask(self, obj: dict[str, Any], requester: str) -> None:
        meta = obj["metadata"]
        ref = SessionRef.of(obj)
        key = self.key()
        if key is None or not meta.get("uid"):
            raise GatewayError(PROVIDER_UNAVAILABLE, f"session {ref} is stopped and the gateway cannot wake it yet "
                               "(it has not read its runtime key); try again later",
                               session=ref.to_json(), retry_after=5)
        value = wake_timestamp(time.time_ns())
        await self.directory.request_wake(build_wake_event(obj, value, key, requester=requester))
        asked = parse_wake_timestamp(value)
        assert asked is not None
        self._asked.pop(meta["uid"], None)
        self._asked[meta["uid"]] = asked
        while len(self._asked) > MAX_ASKED:
            self._asked.pop(next(iter(self._asked)))
        logger.info("asked the operator to wake session %s for a message (requested at %s)", ref, value)
        metrics.WAKES.labels("requested").inc()

    async def _wait_healthy(self, obj: Mapping[str, Any], remaining: float) -> None:
        endpoint = endpoint_of(obj)
        assert endpoint is not None
        delay = 0.05
        async with asyncio.timeout(max(remaining, 0.001)):
            while not await self.runtime.healthy(endpoint):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
