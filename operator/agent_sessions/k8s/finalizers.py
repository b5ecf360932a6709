"""Our finalizer on AgentSessions, added and removed with optimistic concurrency.

A merge patch replaces the whole `finalizers` list, so it carries the `resourceVersion` it was
computed from: if anyone changed the object meanwhile the API server answers 409 and the next
reconcile (triggered by that very change) tries again with fresh data. No other finalizer is
ever lost.
"""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client

from agent_sessions.api import constants as c

from .client import call_json
from .status import MERGE_PATCH


def with_finalizer(metadata: dict[str, Any]) -> list[str] | None:
    """The finalizer list with ours added, or None when it is already there."""
    current = list(metadata.get("finalizers") or [])
    return None if c.FINALIZER in current else [*current, c.FINALIZER]


def without_finalizer(metadata: dict[str, Any]) -> list[str] | None:
    """The finalizer list with ours removed, or None when it is not there."""
    current = list(metadata.get("finalizers") or [])
    return [f for f in current if f != c.FINALIZER] if c.FINALIZER in current else None


async def set_finalizers(api: client.ApiClient, metadata: dict[str, Any], finalizers: list[str]) -> dict:
    """Replace the finalizers, guarded by the resourceVersion they were computed from."""
    patch: dict[str, Any] = {"metadata": {"finalizers": finalizers}}
    if metadata.get("resourceVersion"):
        patch["metadata"]["resourceVersion"] = metadata["resourceVersion"]
    return await call_json(  # (decoded whatever a session author nested in it: k8s.decoding)
        client.CustomObjectsApi(api).patch_namespaced_custom_object,
        c.GROUP,
        c.VERSION,
        metadata["namespace"],
        c.SESSION_PLURAL,
        metadata["name"],
        patch,
        _content_type=MERGE_PATCH,
    )
