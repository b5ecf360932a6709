"""`k8s.informer`: list (paged), then watch with bookmarks; a 410 lists again and reports what
vanished meanwhile as deleted; failures are retried, never raised. Against a scripted server
(exact sequences), and against the API server of both backends (the real one is the truth)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agent_sessions.k8s import informer as informer_module
from agent_sessions.k8s.client import http_session, make_api_client
from agent_sessions.k8s.decoding import MAX_DECODED_DEPTH
from agent_sessions.k8s.informer import Informer


def cm(name: str, version: str, uid: str | None = None) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid or f"uid-{name}", "resourceVersion": version}}


class Script:
    """A server answering lists and watches from queues the test fills."""

    def __init__(self) -> None:
        self.lists: list[Callable[[web.Request], web.Response]] = []
        self.watches: list[list[dict] | int] = []
        self.requests: list[dict] = []
        self.accepts: list[str | None] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.query))
        self.accepts.append(request.headers.get("Accept"))
        if request.query.get("watch") == "true":
            if not self.watches:
                await asyncio.sleep(3600)
            events = self.watches.pop(0)
            if isinstance(events, int):
                return web.json_response({"kind": "Status", "code": events, "message": "scripted"}, status=events)
            response = web.StreamResponse()
            await response.prepare(request)
            for event in events:
                line = (event if isinstance(event, bytes) else json.dumps(event).encode()) + b"\n"
                await response.write(line[:7])  # split across chunks
                await response.write(line[7:])
            return response
        return self.lists.pop(0)(request)


def listing(items: list[dict], version: str, token: str | None = None) -> Callable[[web.Request], web.Response]:
    return lambda request: web.json_response({"items": items, "metadata": {"resourceVersion": version,
                                                                           **({"continue": token} if token else {})}})


@pytest.fixture
async def served():
    script = Script()
    app = web.Application()
    app.router.add_get("/api/v1/configmaps", script.handle)
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield script, http, str(server.make_url(""))
    await server.close()


async def run_until(informer: Informer, done: Callable[[], bool], timeout: float = 5.0) -> None:
    task = asyncio.create_task(informer.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_paged_list_is_handed_over_then_the_watch_resumes_from_its_version_with_bookmarks(served):
    script, http, server = served
    events: list[tuple] = []
    script.lists = [listing([cm("a", "5")], "9", token="next"), listing([cm("b", "6")], "9")]
    script.watches = [[{"type": "ADDED", "object": cm("c", "10")},
                       {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
                       {"type": "MODIFIED", "object": cm("a", "13")},
                       {"type": "DELETED", "object": cm("b", "14")}]]
    informer = Informer(http, server, "/api/v1/configmaps", lambda t, o: events.append((t, o["metadata"]["name"])),
                        page_size=1, label_selector="x=y")
    await run_until(informer, lambda: len(events) == 5 and len(script.requests) >= 4)
    assert events == [(None, "a"), (None, "b"), ("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b")]
    first, second, watch, rewatch = script.requests[:4]
    assert first["limit"] == "1" and "continue" not in first and first["labelSelector"] == "x=y"
    assert second["continue"] == "next"
    assert watch["watch"] == "true" and watch["resourceVersion"] == "9" and watch["allowWatchBookmarks"] == "true"
    assert rewatch["resourceVersion"] == "14"  # the watch ended: resumed from the last version seen
    assert informer.synced.is_set()


async def test_metadata_only_asks_for_metadata_and_hands_over_nothing_else_whatever_the_server_sends(served):
    script, http, server = served
    seen: list[tuple] = []
    secret = {**cm("s", "5"), "kind": "Secret", "data": {"token": "c2VjcmV0"}, "type": "Opaque"}
    script.lists = [listing([secret], "9")]
    script.watches = [[{"type": "MODIFIED", "object": {**secret, "metadata": {**secret["metadata"], "resourceVersion": "10"}}}]]
    informer = Informer(http, server, "/api/v1/configmaps", lambda t, o: seen.append((t, o)), metadata_only=True)
    await run_until(informer, lambda: len(seen) == 2)
    assert script.accepts[:2] == [informer_module.METADATA_LIST, informer_module.METADATA_WATCH]
    assert "as=PartialObjectMetadataList;g=meta.k8s.io;v=v1" in script.accepts[0]
    assert "as=PartialObjectMetadata;g=meta.k8s.io;v=v1" in script.accepts[1]
    for _, obj in seen:  # a server without PartialObjectMetadata sent it all: only metadata is handed over
        assert obj == {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"]}
        assert obj["metadata"]["name"] == "s" and obj["metadata"]["uid"] == "uid-s"
    assert [(t, o["metadata"]["resourceVersion"]) for t, o in seen] == [(None, "5"), ("MODIFIED", "10")]
    plain = Informer(http, server, "/api/v1/configmaps", lambda t, o: None)
    script.lists, script.watches, before = [listing([], "11")], [], len(script.accepts)
    await run_until(plain, lambda: len(script.accepts) >= before + 2)
    assert all("PartialObjectMetadata" not in (accept or "") for accept in script.accepts[before:])  # whole objects


async def test_a_410_lists_again_and_reports_what_vanished_meanwhile_as_deleted(served):
    script, http, server = served
    events: list[tuple] = []
    script.lists = [listing([cm("a", "5"), cm("b", "6"), cm("c", "7")], "9"),
                    # b is gone, c was replaced by another object of its name (a new uid)
                    listing([cm("a", "5"), cm("c", "20", uid="uid-c2"), cm("d", "21")], "22")]
    script.watches = [410]
    informer = Informer(http, server, "/api/v1/configmaps", lambda t, o: events.append((t, o["metadata"]["name"],
                                                                                         o["metadata"]["uid"])))
    await run_until(informer, lambda: len(events) >= 8)
    # Page by page as listed (a replaced object's deletion right before its successor), then
    # what is no longer listed at all.
    assert events[3:] == [(None, "a", "uid-a"), ("DELETED", "c", "uid-c"), (None, "c", "uid-c2"),
                          (None, "d", "uid-d"), ("DELETED", "b", "uid-b")]
    assert informer.resource_version == "22"


async def test_an_error_event_of_410_in_the_stream_lists_again(served):
    script, http, server = served
    events: list[tuple] = []
    script.lists = [listing([cm("a", "5")], "9"), listing([], "30")]
    script.watches = [[{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}]]
    informer = Informer(http, server, "/api/v1/configmaps", lambda t, o: events.append((t, o["metadata"]["name"])))
    await run_until(informer, lambda: ("DELETED", "a") in events)
    assert events == [(None, "a"), ("DELETED", "a")]


async def test_failures_are_retried_and_logged_once_and_a_handler_error_does_not_stop_it(served, monkeypatch, caplog):
    monkeypatch.setattr(informer_module, "RETRY_DELAYS", (0.01,))
    script, http, server = served
    seen: list[str] = []

    def handler(event_type, obj):
        seen.append(obj["metadata"]["name"])
        if obj["metadata"]["name"] == "bad":
            raise RuntimeError("a handler bug")

    forbidden = lambda request: web.json_response({"kind": "Status", "code": 403, "message": "forbidden by RBAC"},
                                                  status=403)
    script.lists = [forbidden, forbidden, forbidden, listing([cm("bad", "5"), cm("good", "6")], "9")]
    informer = Informer(http, server, "/api/v1/configmaps", handler)
    await run_until(informer, lambda: seen == ["bad", "good"])
    warnings = [r.getMessage() for r in caplog.records if r.name == informer_module.__name__ and r.levelname == "WARNING"]
    assert warnings == ["watching /api/v1/configmaps failed (403: forbidden by RBAC); retrying"]
    assert any("handling LISTED ns/bad failed" in r.getMessage() for r in caplog.records)


async def test_a_resource_not_served_is_reported_missing_until_it_lists(served, monkeypatch):
    monkeypatch.setattr(informer_module, "RETRY_DELAYS", (0.01,))
    script, http, server = served
    missing: list[bool] = []
    not_found = lambda request: web.json_response({"kind": "Status", "code": 404, "message": "not found"}, status=404)
    script.lists = [not_found, listing([], "3")]
    informer = Informer(http, server, "/api/v1/configmaps", lambda t, o: None, on_missing=missing.append)
    await run_until(informer, informer.synced.is_set)
    assert missing == [True, False]


async def test_on_the_api_server_it_lists_pages_and_follows_changes(api, kubeconfig):
    names = [f"informed-{i}" for i in range(5)]
    for name in names[:3]:
        api.create("configmaps", {"metadata": {"name": name, "namespace": "default"}, "data": {"k": "v"}})
    client = await make_api_client(kubeconfig)
    http, server = await http_session(client)
    events: list[tuple] = []
    try:
        async with http:
            informer = Informer(http, server, "/api/v1/namespaces/default/configmaps",
                                lambda t, o: events.append((t, o["metadata"]["name"])), page_size=2)
            task = asyncio.create_task(informer.run())
            try:
                await asyncio.wait_for(informer.synced.wait(), 10)
                listed = {name for kind, name in events if kind is None}
                assert set(names[:3]) <= listed
                await asyncio.to_thread(api.create, "configmaps",
                                        {"metadata": {"name": names[3], "namespace": "default"}})
                await asyncio.to_thread(api.delete, "configmaps", "default", names[0])
                async with asyncio.timeout(10):
                    while ("DELETED", names[0]) not in events:
                        await asyncio.sleep(0.02)
                assert ("ADDED", names[3]) in events
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        await client.close()
        for name in names:
            try:
                api.delete("configmaps", "default", name)
            except Exception:  # noqa: BLE001 — gone already
                pass


async def test_on_the_api_server_a_metadata_only_informer_never_carries_a_secrets_values(api, kubeconfig):
    """Both backends; the real API server answers the Accept with `PartialObjectMetadataList`, so
    the values do not even cross the wire (the embedded one sends them; the informer drops them)."""
    applied = json.dumps({"apiVersion": "v1", "kind": "Secret", "data": {"token": "dG9wLXNlY3JldC12YWx1ZQ=="}})
    api.create("secrets", {"metadata": {"name": "watched-secret", "namespace": "default", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": applied}},  # as `kubectl apply` leaves it
        "type": "Opaque", "data": {"token": "dG9wLXNlY3JldC12YWx1ZQ=="}})
    client = await make_api_client(kubeconfig)
    http, server = await http_session(client)
    seen: list[tuple] = []
    try:
        async with http:
            path = "/api/v1/namespaces/default/secrets"
            async with http.get(server + path, headers={"Accept": informer_module.METADATA_LIST}) as response:
                listed = await response.json()
            informer = Informer(http, server, path, lambda t, o: seen.append((t, o)), metadata_only=True)
            task = asyncio.create_task(informer.run())
            try:
                await asyncio.wait_for(informer.synced.wait(), 10)
                await asyncio.to_thread(api.patch, "secrets", "default", "watched-secret",
                                        {"data": {"token": "Y2hhbmdlZC12YWx1ZQ=="}})
                async with asyncio.timeout(10):
                    while not any(t == "MODIFIED" for t, _ in seen):
                        await asyncio.sleep(0.02)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        await client.close()
        api.delete("secrets", "default", "watched-secret")
    if type(api).__name__ == "RealAPI":
        assert listed["kind"] == "PartialObjectMetadataList", listed.get("kind")
        assert all("data" not in item for item in listed["items"])
    ours = [obj for _, obj in seen if obj["metadata"]["name"] == "watched-secret"]
    assert len(ours) >= 2
    for obj in ours:
        assert set(obj) == {"apiVersion", "kind", "metadata"}
        assert "c2VjcmV0" not in json.dumps(obj) and "dG9wLXNlY3JldC12YWx1ZQ" not in json.dumps(obj)
        assert "Y2hhbmdlZC12YWx1ZQ" not in json.dumps(obj)


def deep_json(levels: int) -> bytes:
    return b'{"n":' * levels + b'"bottom"' + b"}" * levels


async def test_an_object_too_deep_for_the_decoder_is_cut_not_allowed_to_stop_the_informer(served, caplog):
    # The API server accepts 10,000 levels inside a free-form field; Python's decoder stops near
    # 1,000. One such object (a session author's) must not make every list and watch fail.
    script, http, server = served
    events: list[tuple] = []
    deep_item = b'{"metadata":{"name":"deep","namespace":"ns","uid":"u1","resourceVersion":"5"},"spec":{"meta":' \
        + deep_json(5000) + b"}}"
    page = b'{"items":[' + deep_item + b',{"metadata":{"name":"fine","namespace":"ns","uid":"u2"}}],' \
        b'"metadata":{"resourceVersion":"9"}}'
    script.lists = [lambda request: web.Response(body=page, content_type="application/json")]
    watched = b'{"type":"MODIFIED","object":{"metadata":{"name":"deep2","namespace":"ns","uid":"u3",' \
        b'"resourceVersion":"10"},"spec":{"meta":' + deep_json(3000) + b"}}}"
    script.watches = [[watched]]
    informer = Informer(http, server, "/api/v1/configmaps", lambda t, o: events.append((t, o)))
    await run_until(informer, lambda: len(events) == 3)
    (_, deep), (_, fine), (_, modified) = events
    assert fine["metadata"]["name"] == "fine" and modified["metadata"]["name"] == "deep2"
    level, node = 0, deep["spec"]["meta"]
    while isinstance(node, dict):
        level, node = level + 1, node["n"]
    assert node is None and level < MAX_DECODED_DEPTH
    assert informer.resource_version == "10"
    assert any("nested too deep to decode" in r.getMessage() for r in caplog.records)


async def test_a_failed_watch_is_resumed_from_its_version_without_listing_again(served, monkeypatch):
    # At 10,000 sessions a list is the costliest request there is: a dropped watch or a server
    # error resumes the watch; only a 410 (or a failed list) lists again.
    monkeypatch.setattr(informer_module, "RETRY_DELAYS", (0.01,))
    script, http, server = served
    events: list[tuple] = []
    script.lists = [listing([cm("a", "5")], "9")]
    script.watches = [500, [{"type": "ADDED", "object": cm("c", "10")}]]
    informer = Informer(http, server, "/api/v1/configmaps", lambda t, o: events.append((t, o["metadata"]["name"])))
    await run_until(informer, lambda: ("ADDED", "c") in events and len(script.requests) >= 4)
    kinds = [("watch", r["resourceVersion"]) if r.get("watch") else ("list", None) for r in script.requests[:4]]
    assert kinds == [("list", None), ("watch", "9"), ("watch", "9"), ("watch", "10")]
