"""Keeping the session NetworkPolicy (`network_policy_spec`) in every namespace where a session
pod runs, before that pod is created.

`ensure(namespace)` is called by `PodProvider.ensure` before each pod create. It reads the policy
(`get`), creates it when missing (`create`) and, when someone changed its spec, patches the spec
back (`patch`, a merge patch); a policy that matches costs no write. What was verified is kept per
namespace for `ttl` seconds: a reconcile storm, or a hundred sessions starting in one namespace,
cost one read per TTL, and an edited or deleted policy is restored by the first pod creation after
the TTL. Concurrent checks of one namespace share one read.

A failure (the API server unreachable, the operator's RBAC lacking `networkpolicies`) raises the
provider error and no pod is created: a session pod is never started unprotected. Only the spec
is compared and restored, never labels: the Helm chart may have created the same policy (same
name, its own labels) in the namespaces it knows.

Why not more: NetworkPolicies are additive, so whoever may edit this one may also add another
that admits everything; restoring it guards against accidents, not against a namespace admin.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from ..errors import SessionAlreadyExists, SessionNotFound
from .network_policy_spec import SessionNetworkPolicy, build_network_policy, spec_patch

logger = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS: Final = 60.0


class SessionNetworkPolicies:
    """The session NetworkPolicy per namespace, verified at most once per `ttl`.

    `read(name, namespace)`, `create(namespace, body)` and `patch(name, namespace, patch)` are the
    provider's API calls, already translating failures into provider errors (a missing object is
    `SessionNotFound`, a create conflict `SessionAlreadyExists`); `read` returns a dict or None.
    """

    def __init__(self, policy: SessionNetworkPolicy, *, runtime_port: int,
                 read: Callable[[str, str], Awaitable[dict[str, Any] | None]],
                 create: Callable[[str, dict[str, Any]], Awaitable[Any]],
                 patch: Callable[[str, str, dict[str, Any]], Awaitable[Any]],
                 ttl: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._runtime_port = runtime_port
        self._read, self._create, self._patch = read, create, patch
        self._ttl = ttl
        self._clock = clock
        self._verified_at: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure(self, namespace: str) -> None:
        lock = self._locks.setdefault(namespace, asyncio.Lock())
        async with lock:
            verified_at = self._verified_at.get(namespace)
            if verified_at is not None and self._clock() - verified_at < self._ttl:
                return
            await self._converge(namespace)
            self._verified_at[namespace] = self._clock()

    def forget(self, namespace: str) -> None:
        """Check `namespace` again on its next `ensure`."""
        self._verified_at.pop(namespace, None)

    async def _converge(self, namespace: str) -> None:
        desired = build_network_policy(self.policy, namespace, runtime_port=self._runtime_port)
        name = self.policy.name
        try:
            current = await self._read(name, namespace)
        except SessionNotFound:
            current = None
        if current is None:
            try:
                await self._create(namespace, desired)
                logger.info("created NetworkPolicy %s/%s for the session runtimes", namespace, name)
                return
            except SessionAlreadyExists:  # created meanwhile (another replica, the chart): compare it
                current = await self._read(name, namespace)
        patch = spec_patch(current, desired["spec"])
        if patch is not None:
            await self._patch(name, namespace, patch)
            logger.warning("NetworkPolicy %s/%s had been changed: its spec is restored", namespace, name)
