"""Writing `status` only when it changed, in one merge patch through the status subresource (§8).

The patch is the difference between the status as read and the status computed: keys that
vanished are sent as `null` (merge-patch deletion), lists are sent whole (merge patch replaces
lists), unchanged keys are not sent. An empty difference means no request at all — that is what
makes a converged session cost zero writes.
"""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client

from agent_sessions.api import constants as c

from .client import call_json

MERGE_PATCH = "application/merge-patch+json"


def merge_patch(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """The RFC 7386 merge patch turning `old` into `new`; None when they are equal."""
    old = old or {}
    new = new or {}
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_patch(before, value)
            if nested is not None:
                patch[key] = nested
        elif value != before or key not in old:
            patch[key] = value
    return patch or None


async def patch_status(api: client.ApiClient, namespace: str, name: str, status_patch: dict[str, Any]) -> dict:
    """PATCH /status of an AgentSession with a merge patch. Returns the updated object."""
    objects = client.CustomObjectsApi(api)
    return await call_json(  # (decoded whatever a session author nested in it: k8s.decoding)
        objects.patch_namespaced_custom_object_status,
        c.GROUP,
        c.VERSION,
        namespace,
        c.SESSION_PLURAL,
        name,
        {"status": status_patch},
        _content_type=MERGE_PATCH,
    )
