"""The labels of the sessions' namespaces, for the pod security level a namespace may make stricter.

A namespace's `pod-security.kubernetes.io/enforce` label can make the pod policy stricter for
its sessions (see `policy.effective_level`). Reading it costs `get namespaces` (one namespace at
a time: no list, no watch, so the operator never learns about namespaces it has no session in),
kept for `ttl` seconds: a label raised on a namespace binds its sessions within the TTL, and a
reconcile storm in one namespace costs one read per TTL. Concurrent refreshes of one namespace
share one read.

A read that fails keeps what was known (nothing, the first time) and is retried after the TTL,
with a warning: the operator's own level still applies, and on a real cluster the API server's
Pod Security admission enforces the namespace's label on the pod itself anyway; refusing every
session of the namespace over a transient error would be worse. A namespace that does not exist
has no labels.

The operator calls `PodProvider.prepare_namespace(namespace)` before each reconcile, which
refreshes the labels; `validate` reads what is known of the namespace its `ValidationContext`
names (pure: no I/O). `ensure` refreshes and checks again with the namespace it is given, so a pod
is never created against a raised level even where no one prepared the namespace (a reconciler
driven directly, in tests).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from kubernetes_asyncio.client.exceptions import ApiException

from .api_errors import TRANSIENT_ERRORS

logger = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS: Final = 30.0


class NamespaceLabels:
    """`labels(namespace)` from memory; `refresh(namespace)` reads it when older than `ttl`."""

    def __init__(self, read: Callable[[str], Awaitable[Any]], *, ttl: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._ttl = ttl
        self._clock = clock
        self._labels: dict[str, dict[str, str]] = {}
        self._read_at: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def labels(self, namespace: str) -> Mapping[str, str] | None:
        """What is known of the namespace's labels (None: never read successfully)."""
        return self._labels.get(namespace)

    async def refresh(self, namespace: str) -> Mapping[str, str] | None:
        """The namespace's labels, read again if the last read is older than the TTL."""
        lock = self._locks.setdefault(namespace, asyncio.Lock())
        async with lock:
            read_at = self._read_at.get(namespace)
            if read_at is not None and self._clock() - read_at < self._ttl:
                return self._labels.get(namespace)
            self._read_at[namespace] = self._clock()
            try:
                body = await self._read(namespace)
            except ApiException as error:
                if error.status == 404:
                    self._labels[namespace] = {}
                else:
                    logger.warning("cannot read the labels of namespace %s (HTTP %s): its pod security level"
                                   " is taken as the operator's until a read succeeds", namespace, error.status)
            except TRANSIENT_ERRORS as error:
                logger.warning("cannot read the labels of namespace %s (%s): retried in %.0f s",
                               namespace, error, self._ttl)
            else:
                self._labels[namespace] = _labels_of(body)
            return self._labels.get(namespace)


def _labels_of(body: Any) -> dict[str, str]:
    """Labels of a Namespace, whether the client returned a dict or a model."""
    metadata = body.get("metadata") if isinstance(body, Mapping) else getattr(body, "metadata", None)
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else getattr(metadata, "labels", None)
    if not isinstance(labels, Mapping):
        return {}
    return {str(key): str(value) for key, value in labels.items()}
