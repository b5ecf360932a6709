"""Reading AgentSessions from the Kubernetes API with the gateway's own credentials.

The gateway keeps no session state of its own: a request reads the AgentSession it names (one
GET by name) unless the replica's watch already says where the session serves (`serving_index`,
for messages, tails and cancel), so any replica can serve any request. The only write is a wake request: an Event the gateway
creates (`wire.wake_request`); AgentSessions are never written (the gateway may not). What a
user changes (stop, start, restart) is written with that user's own token (`caller_client`,
`state_api`), never with these credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes_asyncio import client

from agent_sessions.api import constants as c
from agent_sessions.k8s.client import call_json
from agent_sessions.k8s.decoding import decode
from agent_sessions.wire.session_ref import SessionRef

from .errors import SESSION_NOT_FOUND, GatewayError
from .kube_errors import KUBE_FAILURES, KUBE_REQUEST_SECONDS, kube_failure

NAMESPACE_PAGE = 500
"""AgentSessions per page when listing them all to find the namespaces that hold some."""
WATCH_CHUNK_SECONDS = 60
"""A wait watches at most this long per request, then re-reads the object and watches again."""


class SessionGone(Exception):
    """The session was deleted while being waited for."""


class SessionDirectory:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.objects = client.CustomObjectsApi(api)

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """The AgentSession; 404 `session_not_found` when there is none."""
        try:
            return await call_json(
                self.objects.get_namespaced_custom_object, c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL, name,
                _request_timeout=KUBE_REQUEST_SECONDS)
        except KUBE_FAILURES as exc:
            if getattr(exc, "status", None) == 404:
                raise GatewayError(SESSION_NOT_FOUND, f"there is no {c.SESSION_SINGULAR} {namespace}/{name}",
                                   session=SessionRef(namespace, name).to_json()) from None
            raise kube_failure(exc, f"get {c.SESSION_PLURAL}") from None

    async def list(self, namespace: str) -> list[dict[str, Any]]:
        try:
            result = await call_json(
                self.objects.list_namespaced_custom_object, c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL,
                _request_timeout=KUBE_REQUEST_SECONDS)
        except KUBE_FAILURES as exc:
            raise kube_failure(exc, f"list {c.SESSION_PLURAL}") from None
        return list(result.get("items") or [])

    async def namespaces(self) -> list[str] | None:
        """The namespaces holding at least one AgentSession, sorted: one cluster-wide list (the
        gateway's own `list agentsessions`), read in pages of `NAMESPACE_PAGE`. None when the
        gateway may not list them cluster-wide (its RBAC is per namespace: the chart's
        `watchNamespaces`)."""
        found: set[str] = set()
        token: str | None = None
        while True:
            try:
                result = await call_json(
                    self.objects.list_cluster_custom_object, c.GROUP, c.VERSION, c.SESSION_PLURAL, limit=NAMESPACE_PAGE,
                    _continue=token, _request_timeout=KUBE_REQUEST_SECONDS)
            except KUBE_FAILURES as exc:
                if getattr(exc, "status", None) == 403:
                    return None
                raise kube_failure(exc, f"list {c.SESSION_PLURAL}") from None
            found.update((item.get("metadata") or {}).get("namespace") or "" for item in result.get("items") or [])
            token = (result.get("metadata") or {}).get("continue") or None
            if token is None:
                return sorted(found - {""})

    async def templates(self, namespace: str) -> dict[str, dict[str, Any]]:
        """The namespace's SessionTemplates by name (to resolve a session's configuration)."""
        try:
            result = await call_json(
                self.objects.list_namespaced_custom_object, c.GROUP, c.VERSION, namespace, c.TEMPLATE_PLURAL,
                _request_timeout=KUBE_REQUEST_SECONDS)
        except KUBE_FAILURES as exc:
            raise kube_failure(exc, f"list {c.TEMPLATE_PLURAL}") from None
        return {item["metadata"]["name"]: item for item in result.get("items") or []}

    async def request_wake(self, event: dict[str, Any]) -> None:
        """Create a wake request Event (`wire.wake_request.build_wake_event`) in the session's namespace."""
        namespace = event["metadata"]["namespace"]
        try:
            await client.CoreV1Api(self.api).create_namespaced_event(
                namespace, event, _request_timeout=KUBE_REQUEST_SECONDS)
        except KUBE_FAILURES as exc:
            raise kube_failure(exc, "create events") from None

    async def wait_for(self, namespace: str, name: str, check: Callable[[dict[str, Any]], bool | None],
                       timeout: float) -> dict[str, Any]:
        """The session as soon as `check(obj)` is true, event-driven (a watch on the one object);
        TimeoutError after `timeout`, SessionGone if it is deleted. `check` may raise to stop."""
        deadline = time.monotonic() + timeout
        async with asyncio.timeout(timeout):
            while True:
                obj = await self.get(namespace, name)
                if check(obj):
                    return obj
                version = obj["metadata"].get("resourceVersion", "")
                seconds = max(1, min(WATCH_CHUNK_SECONDS, int(deadline - time.monotonic()) + 1))
                found = await self._watch_until(namespace, name, version, seconds, check)
                if found is not None:
                    return found

    async def _watch_until(self, namespace: str, name: str, version: str, seconds: int,
                           check: Callable[[dict[str, Any]], bool | None]) -> dict[str, Any] | None:
        try:
            response = await self.objects.list_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL, watch=True, resource_version=version,
                field_selector=f"metadata.name={name}", timeout_seconds=seconds, allow_watch_bookmarks=False,
                _preload_content=False, _request_timeout=seconds + KUBE_REQUEST_SECONDS)
        except KUBE_FAILURES as exc:
            raise kube_failure(exc, f"watch {c.SESSION_PLURAL}") from None
        with contextlib.closing(response):
            async for line in response.content:
                try:
                    event = decode(line)  # whatever a session author nested in it (k8s.decoding)
                except ValueError:
                    continue
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    return None  # e.g. 410 Expired: re-read and watch again
                if kind == "DELETED":
                    raise SessionGone(f"{namespace}/{name}")
                if isinstance(obj, Mapping) and kind in ("ADDED", "MODIFIED") and check(dict(obj)):
                    return dict(obj)
        return None
