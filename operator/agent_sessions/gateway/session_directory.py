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
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from kubernetes_asyncio import client

from agent_sessions.api import constants as c
from agent_sessions.k8s.client import call_json
from agent_sessions.k8s.decoding import decode
from agent_sessions.k8s.informer import METADATA_LIST
from agent_sessions.wire.session_ref import SessionRef

from .errors import SESSION_NOT_FOUND, GatewayError
from .kube_errors import KUBE_FAILURES, KUBE_REQUEST_SECONDS, kube_failure

LIST_PAGE = 500
"""AgentSessions per page of a list: a namespace (or a cluster) of thousands is not one answer."""
WATCH_CHUNK_SECONDS = 60
"""A wait watches at most this long per request, then re-reads the object and watches again."""


class SessionGone(Exception):
    """The session was deleted while being waited for."""


class WatchExpired(Exception):
    """The watch's position is older than the API server keeps (410 Gone): list (or read) again."""


class WatchRefused(Exception):
    """The API server answered a watch request with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the API server answered the watch with {status}")
        self.status = status


async def session_pages(objects: client.CustomObjectsApi, namespace: str | None, *, limit: int | None = None,
                        metadata_only: bool = False) -> AsyncIterator[tuple[list[Mapping[str, Any]], str]]:
    """The AgentSessions of `namespace` (of every namespace, for None) page by page, each page's
    items with the list's resourceVersion: one consistent snapshot (the API server answers each
    continuation as of the first page), current at the last page's version. `limit`: sessions per
    page, `LIST_PAGE` by default. `metadata_only`: each item is the session's metadata alone
    (`PartialObjectMetadata`: no spec or status crosses the wire). Failures are the client's, for
    the caller to map."""
    token: str | None = None
    while True:
        page = {"limit": limit or LIST_PAGE, "_continue": token, "_request_timeout": KUBE_REQUEST_SECONDS}
        if metadata_only:
            result = await _metadata_list(objects.api_client, namespace, page["limit"], token)
        elif namespace is None:
            result = await call_json(objects.list_cluster_custom_object, c.GROUP, c.VERSION, c.SESSION_PLURAL, **page)
        else:
            result = await call_json(objects.list_namespaced_custom_object, c.GROUP, c.VERSION, namespace,
                                     c.SESSION_PLURAL, **page)
        meta = result.get("metadata") or {}
        yield [item for item in result.get("items") or () if isinstance(item, Mapping)], \
            str(meta.get("resourceVersion", ""))
        token = meta.get("continue") or None
        if token is None:
            return


async def _metadata_list(api: client.ApiClient, namespace: str | None, limit: int, token: str | None) -> Any:
    """One page of a list of AgentSessions as `PartialObjectMetadataList` (the generated client
    always sets its own Accept header, so the request is made one level below it)."""
    path = f"/apis/{c.GROUP}/{c.VERSION}" + (f"/namespaces/{namespace}" if namespace is not None else "") \
        + f"/{c.SESSION_PLURAL}"
    query = [("limit", limit)] + ([("continue", token)] if token else [])

    async def get(**kwargs: Any) -> Any:
        return await api.call_api(path, "GET", query_params=query, header_params={"Accept": METADATA_LIST},
                                  auth_settings=["BearerToken"], **kwargs)
    return await call_json(get, _request_timeout=KUBE_REQUEST_SECONDS)


async def session_events(objects: client.CustomObjectsApi, namespace: str, version: str, seconds: int, *,
                         name: str | None = None, bookmarks: bool = True) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
    """The events `(type, object)` of a watch of the namespace's AgentSessions (of the one called
    `name`, if given) from `version`, for at most `seconds`. Raises `WatchExpired` on 410 (as
    the answer or as an `ERROR` event), `WatchRefused` on another error answer, what the client
    raises when the API server cannot be reached; another `ERROR` event ends the watch. Events are
    decoded whatever a session author nested in them (`k8s.decoding`); a line that is not an
    event is skipped. Use it in `contextlib.aclosing`, so that leaving early closes the request."""
    try:
        response = await objects.list_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL, watch=True, resource_version=version,
            field_selector=f"metadata.name={name}" if name is not None else None,
            allow_watch_bookmarks=bookmarks, timeout_seconds=seconds, _preload_content=False,
            _request_timeout=seconds + KUBE_REQUEST_SECONDS)
    except KUBE_FAILURES as exc:
        if getattr(exc, "status", None) == 410:
            raise WatchExpired() from None
        raise
    with contextlib.closing(response):
        # Unread (`_preload_content=False`), an error answer is not raised: it is a Status body.
        status = getattr(response, "status", 200)
        if status == 410:
            raise WatchExpired()
        if status >= 400:
            raise WatchRefused(status)
        async for line in response.content:
            try:
                event = decode(line)
            except ValueError:
                continue
            if not isinstance(event, Mapping):
                continue
            kind, obj = event.get("type"), event.get("object")
            if not isinstance(obj, Mapping):
                continue
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise WatchExpired()
                return
            yield str(kind), obj


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

    async def list(self, namespace: str) -> list[Mapping[str, Any]]:
        """The namespace's AgentSessions (read in pages of `LIST_PAGE`)."""
        items: list[Mapping[str, Any]] = []
        try:
            async for page, _ in session_pages(self.objects, namespace):
                items.extend(page)
        except KUBE_FAILURES as exc:
            raise kube_failure(exc, f"list {c.SESSION_PLURAL}") from None
        return items

    async def namespaces(self) -> list[str] | None:
        """The namespaces holding at least one AgentSession, sorted: one cluster-wide list (the
        gateway's own `list agentsessions`) of their metadata alone, read in pages of `LIST_PAGE`. None when the
        gateway may not list them cluster-wide (its RBAC is per namespace: the chart's
        `watchNamespaces`)."""
        found: set[str] = set()
        try:
            async for page, _ in session_pages(self.objects, None, metadata_only=True):
                found.update((item.get("metadata") or {}).get("namespace") or "" for item in page)
        except KUBE_FAILURES as exc:
            if getattr(exc, "status", None) == 403:
                return None
            raise kube_failure(exc, f"list {c.SESSION_PLURAL}") from None
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
            async with contextlib.aclosing(session_events(self.objects, namespace, version, seconds, name=name,
                                                          bookmarks=False)) as events:
                async for kind, obj in events:
                    if kind == "DELETED":
                        raise SessionGone(f"{namespace}/{name}")
                    if kind in ("ADDED", "MODIFIED") and check(dict(obj)):
                        return dict(obj)
        except WatchExpired:
            return None  # re-read and watch again
        except (WatchRefused, *KUBE_FAILURES) as exc:
            raise kube_failure(exc, f"watch {c.SESSION_PLURAL}") from None
        return None
