"""List, then watch: one resource's objects as a stream of events, each decoded once.

The operator follows AgentSessions, SessionTemplates and session pods through these instead of
kopf's per-event machinery (a worker task, a logger, causes and handler invocation for every
event of every object): at 10,000 sessions that machinery was a third of a restart's CPU and most
of its memory peak (issue 11, docs/performance.md).

An `Informer` lists its objects (paged), hands each to `on_event(type, object)` — `type` is None
for a listed object, as kopf says it — then watches from the list's resourceVersion with
bookmarks. A watch that ends is resumed from the last resourceVersion seen; one the server says
is too old (410 Expired) is replaced by a new list, which also reports as `DELETED` whatever was
known and is no longer listed (a deletion missed while disconnected). Failures are retried with
growing delays and logged once per kind of failure, never raised: an informer runs until cancelled.
`synced` is set once the first list has been handed over.

`metadata_only` asks the server for each object's metadata alone (`PartialObjectMetadata`, as
client-go's metadata informers do): the operator follows every Secret and ConfigMap only to learn
which one changed, and neither their values nor their size need reach it. A server that does not
offer that answers with whole objects; either way the informer hands over the metadata alone,
without annotations (`UNWANTED_METADATA`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

from .decoding import decode

logger = logging.getLogger(__name__)

PAGE_SIZE = 500
"""Objects per list page: bounded responses at 10,000 objects, as client-go's informers page."""
SERVER_TIMEOUT = 300
"""`timeoutSeconds` of each watch (a little jitter is added): the server ends it, a new one resumes."""
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Delays after consecutive failed lists or watches."""

METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
"""The Accept headers of a metadata-only list and watch (plain JSON when the server lacks them)."""
UNWANTED_METADATA = frozenset({"annotations", "managedFields"})
"""Left out of what a metadata-only informer hands over: `kubectl apply` copies a whole object,
a Secret's values included, into its last-applied-configuration annotation."""

EventHandler = Callable[[str | None, Mapping[str, Any]], None]


class Gone(Exception):
    """The resourceVersion a watch asked for is too old (410 Expired): list again."""


class Refused(Exception):
    """The server answered a list or watch with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass
class Informer:
    """Lists and watches `path` (e.g. `/api/v1/namespaces/default/pods`) on `server`."""

    http: aiohttp.ClientSession
    """Carries the operator's credentials and user agent (see `handlers.registration`)."""
    server: str
    path: str
    on_event: EventHandler
    label_selector: str | None = None
    field_selector: str | None = None
    page_size: int = PAGE_SIZE
    server_timeout: int = SERVER_TIMEOUT
    connect_timeout: float = 10.0
    metadata_only: bool = False
    """Hand over `{"apiVersion", "kind", "metadata"}` of each object, and ask the server for no more."""
    on_missing: Callable[[bool], None] | None = None
    """Told True while the resource is not served (404 on the list: a CRD not installed), False
    once it lists again."""
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    resource_version: str | None = None
    _known: dict[tuple[str, str], str] = field(default_factory=dict)
    """(namespace, name) → uid of every object handed over and not deleted since."""
    _failures: int = 0
    _last_problem: str | None = None

    @property
    def url(self) -> str:
        return self.server.rstrip("/") + self.path

    async def run(self) -> None:
        """List and watch until cancelled: a failed watch is resumed from the last resourceVersion
        seen; only a failed list, or a version the server no longer has (410), lists again."""
        while True:
            try:
                await self._list()
            except asyncio.CancelledError:
                raise
            except Gone:
                continue
            except Exception as problem:  # noqa: BLE001 — whatever it was, list again later
                await self._pause_after(problem)
                continue
            while True:
                try:
                    await self._watch()
                except asyncio.CancelledError:
                    raise
                except Gone:
                    logger.debug("%s: resourceVersion %s expired; listing again", self.path, self.resource_version)
                    break
                except Exception as problem:  # noqa: BLE001 — a dropped connection, a server error
                    await self._pause_after(problem)

    async def _pause_after(self, problem: Exception) -> None:
        delay = RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS) - 1)] * (1 + random.uniform(0, 0.1))
        self._failures += 1
        described = _describe(problem)
        if described != self._last_problem:  # once per kind of failure, not once per retry
            logger.warning("watching %s failed (%s); retrying", self.path, described)
            self._last_problem = described
        await asyncio.sleep(delay)

    def _query(self, **params: Any) -> str:
        query = {key: value for key, value in params.items() if value is not None}
        if self.label_selector:
            query["labelSelector"] = self.label_selector
        if self.field_selector:
            query["fieldSelector"] = self.field_selector
        return f"{self.url}?{urlencode(query)}" if query else self.url

    async def _list(self) -> None:
        """Hand over each page as it comes (a whole list of 10,000 decoded objects at once would be
        the largest memory peak there is), then what was known and is no longer listed, as deleted."""
        known, self._known = self._known, {}
        token: str | None = None
        version = None
        while True:
            timeout = aiohttp.ClientTimeout(total=60, connect=self.connect_timeout)
            async with self.http.get(self._query(limit=self.page_size, **{"continue": token}),
                                     headers=self._accept(METADATA_LIST), timeout=timeout) as response:
                if response.status == 404 and self.on_missing is not None:
                    self.on_missing(True)
                if response.status == 410 and token is not None:
                    self._known.update(known)  # still known: the next list decides
                    raise Gone()  # the continue token expired: start over
                if response.status != 200:
                    self._known.update(known)
                    raise Refused(response.status, _message(await response.read()))
                page = decode(await response.read())
            if self.on_missing is not None and token is None:
                self.on_missing(False)
            for obj in page.get("items") or ():
                meta = obj.get("metadata") or {}
                key = (meta.get("namespace") or "", meta.get("name") or "")
                before = known.pop(key, None)
                if before is not None and before != (meta.get("uid") or ""):
                    self._deliver("DELETED", _stub(key, before))  # replaced meanwhile: the old one first
                self._deliver(None, obj)
            metadata = page.get("metadata") or {}
            version = metadata.get("resourceVersion") or version
            token = metadata.get("continue") or None
            del page
            if token is None:
                break
        for key, uid in known.items():  # gone while no watch was open
            self._deliver("DELETED", _stub(key, uid))
        self.resource_version = version
        self._failures = 0
        self._last_problem = None
        self.synced.set()

    async def _watch(self) -> None:
        seconds = self.server_timeout + random.randint(0, self.server_timeout // 10)
        url = self._query(watch="true", allowWatchBookmarks="true", resourceVersion=self.resource_version,
                          timeoutSeconds=seconds)
        timeout = aiohttp.ClientTimeout(total=None, connect=self.connect_timeout, sock_read=seconds + 30)
        async with self.http.get(url, headers=self._accept(METADATA_WATCH), timeout=timeout) as response:
            if response.status == 410:
                raise Gone()
            if response.status != 200:
                raise Refused(response.status, _message(await response.read()))
            buffer = bytearray()
            async for chunk in response.content.iter_any():
                buffer.extend(chunk)
                start = 0
                while (end := buffer.find(b"\n", start)) >= 0:
                    if end > start:
                        self._event(decode(bytes(buffer[start:end])))
                    start = end + 1
                del buffer[:start]
        self._failures = 0

    def _accept(self, metadata: str) -> dict[str, str] | None:
        return {"Accept": metadata} if self.metadata_only else None

    def _event(self, event: Mapping[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        meta = obj.get("metadata") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise Refused(int(obj.get("code") or 500), str(obj.get("message") or obj))
        if meta.get("resourceVersion"):
            self.resource_version = meta["resourceVersion"]
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._deliver(kind, obj)

    def _deliver(self, kind: str | None, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if kind == "DELETED":
            self._known.pop(key, None)
        else:
            self._known[key] = meta.get("uid") or ""
        if self.metadata_only:
            obj = {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                   "metadata": {key: value for key, value in meta.items() if key not in UNWANTED_METADATA}}
        try:
            self.on_event(kind, obj)
        except Exception:  # a handler's bug must not stop the watch
            logger.exception("handling %s %s/%s failed", kind or "LISTED", key[0], key[1])


def _stub(key: tuple[str, str], uid: str) -> dict:
    """What a deletion found by a list says of the object: its namespace, name and uid."""
    return {"metadata": {"namespace": key[0] or None, "name": key[1], "uid": uid}}


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message") or body[:200].decode(errors="replace"))
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace")


def _describe(problem: Exception) -> str:
    if isinstance(problem, Refused):
        return str(problem)
    return f"{type(problem).__name__}: {problem}" if str(problem) else type(problem).__name__
