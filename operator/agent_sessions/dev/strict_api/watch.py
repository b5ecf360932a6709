"""Watches: list-then-watch from a resourceVersion, replay from the store's bounded history
(410 Expired beyond it), selectors applied per event (entering a selection is ADDED, leaving
it DELETED), ``sendInitialEvents``, ``timeoutSeconds``, BOOKMARKs and Table watches."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from agent_sessions.dev.object_store import ApiError, WatchEvent, bad_request
from agent_sessions.dev.resources import ResourceType
from agent_sessions.dev.selection import FieldSelector, LabelSelector
from agent_sessions.dev.strict_api.codec import Target, number_param, selectors, truthy
from agent_sessions.dev.strict_api.streams import Stream
from agent_sessions.dev.tables import partial, table, wants_metadata, wants_table


DEFAULT_WATCH_TIMEOUT = 1800.0  # the server's --min-request-timeout


class Watches:
    """Watch streams of :class:`~agent_sessions.dev.strict_api.server.StrictKubernetesAPI` (a
    mixin: it uses the server's store, bookmark interval and open streams)."""

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        rtype, query, namespace = target.rtype, request.query, target.namespace
        labels, fields = selectors(query, rtype)
        if target.name is not None:
            fields = FieldSelector(fields.terms + FieldSelector.parse(
                f"metadata.name={target.name}").terms)
        timeout = number_param(query, "timeoutSeconds", DEFAULT_WATCH_TIMEOUT)
        bookmarks = truthy(query.get("allowWatchBookmarks"))
        initial_events = truthy(query.get("sendInitialEvents"))
        as_table = wants_table(request.headers.get("Accept", ""))
        as_metadata = not as_table and wants_metadata(request.headers.get("Accept", ""))
        include_object = query.get("includeObject", "Metadata")
        since = query.get("resourceVersion") or ""
        if since not in ("", "0") and not since.isdigit():
            raise bad_request(f'resourceVersion: Invalid value: "{since}": must be an integer')

        loop = asyncio.get_running_loop()
        stream = Stream(loop, "watch")
        self.store.subscribe(stream.notify)
        self._track(stream)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        first = True

        async def send(event_type: str, obj: dict) -> None:
            nonlocal first
            if as_table and event_type != "ERROR" and obj.get("kind") != "Status" and \
                    event_type != "BOOKMARK":
                obj = table(rtype, [obj], resource_version=obj["metadata"].get("resourceVersion", ""),
                            include_object=include_object, with_columns=first)
                first = False
            elif as_metadata and event_type != "ERROR" and obj.get("kind") != "Status":
                obj = partial(obj)
            line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":"))
            await response.write(line.encode() + b"\n")

        def bookmark(cursor: int, initial_end: bool = False) -> dict:
            meta: dict[str, Any] = {"resourceVersion": str(cursor)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": meta}

        try:
            await response.prepare(request)
            if since in ("", "0") or initial_events:
                items, cursor = self.store.list(rtype, namespace, labels, fields)
                for item in items:
                    await send("ADDED", item)
                if initial_events and bookmarks:
                    await send("BOOKMARK", bookmark(cursor, initial_end=True))
            else:
                cursor = int(since)
            deadline = loop.time() + timeout
            next_bookmark = loop.time() + self.bookmark_interval
            while not stream.stopped:
                stream.wake.clear()
                try:
                    events = self.store.events_after(cursor)
                except ApiError as exc:
                    await send("ERROR", exc.status())
                    break
                for event in events:
                    translated = self._translate(event, rtype, namespace, labels, fields)
                    if translated is not None:
                        await send(*translated)
                    cursor = event.resource_version
                now = loop.time()
                if now >= deadline:
                    if bookmarks:
                        await send("BOOKMARK", bookmark(cursor))
                    break
                if bookmarks and now >= next_bookmark:
                    await send("BOOKMARK", bookmark(cursor))
                    next_bookmark = now + self.bookmark_interval
                if events:
                    continue
                wait = min(deadline, next_bookmark if bookmarks else deadline) - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stream.wake.wait(), timeout=max(wait, 0))
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away
        finally:
            self.store.unsubscribe(stream.notify)
            self._untrack(stream)
        return response

    def _translate(self, event: WatchEvent, rtype: ResourceType, namespace: str | None,
                   labels: LabelSelector, fields: FieldSelector) -> tuple[str, dict] | None:
        """The event as this watcher sees it: entering its selection is ADDED, leaving it
        is DELETED (as the server's watch cache does)."""
        if event.group_resource != rtype.group_resource:
            return None
        now = self.store.selects(rtype, event.object, namespace, labels, fields)
        before = event.old is not None and self.store.selects(rtype, event.old, namespace,
                                                              labels, fields)
        kind = event.type
        if kind == "ADDED":
            kind = "ADDED" if now else ""
        elif kind == "DELETED":
            kind = "DELETED" if before or now else ""
        else:
            kind = {(True, True): "MODIFIED", (True, False): "ADDED",
                    (False, True): "DELETED"}.get((now, before), "")
        return (kind, self.store.present(rtype, event.object)) if kind else None
