"""The session-status stream `GET /v1/namespaces/{ns}/sessions?watch=true` (SSE): the state first,
then one event per change in order, resumable with Last-Event-ID, shared per namespace, bounded
per caller, authorized as `watch agentsessions`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from prometheus_client import REGISTRY

from agent_sessions.api import constants as c

from agent_sessions.dev.authorization import RBACAuthorizer
from agent_sessions.gateway import session_directory
from agent_sessions.gateway.options import GatewayOptions
from agent_sessions.gateway.server import serve_gateway
from agent_sessions.k8s.client import make_api_client

from .conftest import ALICE, BOB, GATEWAY_RBAC, USER_RBAC, identity, make_session, read_sse
from support.waits import eventually

WATCH = "/v1/namespaces/{namespace}/sessions?watch=true"


def synced(messages: list[dict]) -> bool:
    return bool(messages) and messages[-1]["event"] == "synced"


def count(n: int):
    return lambda messages: len(messages) >= n


def ready(status: str, reason: str, message: str = "") -> dict:
    return {"type": c.COND_READY, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z"}


@contextlib.asynccontextmanager
async def stream(http: aiohttp.ClientSession, gateway: str, headers: dict, namespace: str = "team-a",
                 last_event_id: str | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
    headers = dict(headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with http.get(gateway + WATCH.format(namespace=namespace), headers=headers) as resp:
        yield resp


def watched_namespaces() -> float:
    return REGISTRY.get_sample_value("agent_session_gateway_status_watches") or 0.0


def status_watches(api, namespace: str = "team-a") -> list:
    """The gateway's watches of a namespace's sessions (not of one session, as a wake's)."""
    return [r for r in list(api.requests) if r.watch and r.resource == c.SESSION_PLURAL
            and f"/namespaces/{namespace}/" in r.path and "fieldSelector" not in r.query]


async def test_a_caller_without_watch_rights_is_forbidden(api, gateway, http):
    async with stream(http, gateway, BOB) as resp:  # bob may only `get` in team-a
        assert resp.status == 403
        body = await resp.json()
    assert body["code"] == "forbidden" and "watch agentsessions" in body["message"]

    async with stream(http, gateway, ALICE, namespace="team-b") as resp:  # nobody may see team-b
        assert resp.status == 403
        assert (await resp.json())["code"] == "forbidden"

    async with stream(http, gateway, {}) as resp:
        assert resp.status == 401


async def test_stream_sends_the_sessions_then_create_modify_delete_in_order(api, gateway, http):
    first = make_session(api, "one", phase="Stopped", stopped_reason="User")

    async with stream(http, gateway, ALICE) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        start = await read_sse(resp, synced)
        assert [m["event"] for m in start] == ["added", "synced"]
        assert "id" not in start[0]  # only `synced` is a position to resume from
        assert start[0]["data"]["session"] == identity(first)
        assert start[0]["data"]["info"]["phase"] == "Stopped" and start[0]["data"]["info"]["stoppedReason"] == "User"
        assert start[1]["data"] == {"namespace": "team-a", "resourceVersion": start[1]["id"], "count": 1}

        api.create(c.SESSION_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                                      "metadata": {"name": "two", "namespace": "team-a"},
                                      "spec": {"agent": {"image": "example.com/agent:1"}, "title": "Second"}})
        created = api.get(c.SESSION_PLURAL, "team-a", "two")
        running = api.patch_status(c.SESSION_PLURAL, "team-a", "two", {
            "phase": "Running", "provider": {"type": "pod", "id": "two-pod", "endpoint": "http://10.0.0.1:8080"},
            "conditions": [ready("True", "Running", "the agent is ready")], "health": {"state": "Healthy"},
            "lastActivityTime": "2026-01-01T00:01:00Z"})
        api.delete(c.SESSION_PLURAL, "team-a", "two")

        changes = await read_sse(resp, count(3))

    assert [m["event"] for m in changes] == ["added", "modified", "deleted"]
    assert [m["data"]["type"] for m in changes] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(m["data"]["session"] == identity(created) for m in changes)
    assert changes[0]["id"] == created["metadata"]["resourceVersion"]
    assert changes[1]["id"] == running["metadata"]["resourceVersion"]
    assert [int(m["id"]) for m in changes] == sorted(int(m["id"]) for m in changes)
    assert all(m["data"]["resourceVersion"] == m["id"] for m in changes)
    info = changes[1]["data"]["info"]
    assert info["name"] == "two" and info["phase"] == "Running" and info["provider"] == "pod"
    assert info["ready"] == {"status": "True", "reason": "Running", "message": "the agent is ready"}
    assert info["title"] == "Second" and info["health"] == "Healthy"
    assert info["lastActivityTime"] == "2026-01-01T00:01:00Z" and info["hasEndpoint"] is True
    assert changes[0]["data"]["info"]["phase"] is None and changes[0]["data"]["info"]["ready"] is None


async def test_a_change_clients_cannot_see_is_not_sent(api, gateway, http):
    make_session(api, "one", phase="Running")
    async with stream(http, gateway, ALICE) as resp:
        await read_sse(resp, synced)
        api.patch_status(c.SESSION_PLURAL, "team-a", "one", {"observedGeneration": 1})  # not in the summary
        api.patch_status(c.SESSION_PLURAL, "team-a", "one", {"phase": "Stopping"})
        changes = await read_sse(resp, count(1))
    assert [(m["event"], m["data"]["info"]["phase"]) for m in changes] == [("modified", "Stopping")]


async def test_reconnecting_with_last_event_id_resumes_after_it(api, gateway, http):
    make_session(api, "one", phase="Running")
    async with stream(http, gateway, ALICE) as resp:
        position = (await read_sse(resp, synced))[-1]["id"]
        api.patch_status(c.SESSION_PLURAL, "team-a", "one", {"phase": "Stopping"})
        seen = await read_sse(resp, count(1))
    last_seen = seen[-1]["id"]

    # Missed while disconnected: a modification, a new session, a deletion.
    stopped = api.patch_status(c.SESSION_PLURAL, "team-a", "one", {"phase": "Stopped"})
    three = make_session(api, "three", phase=None)
    api.delete(c.SESSION_PLURAL, "team-a", "one")

    async with stream(http, gateway, ALICE, last_event_id=last_seen) as resp:
        assert resp.status == 200
        missed = await read_sse(resp, count(3))
    assert [(m["event"], m["data"]["info"]["name"]) for m in missed] == [
        ("modified", "one"), ("added", "three"), ("deleted", "one")]
    assert missed[0]["id"] == stopped["metadata"]["resourceVersion"]
    assert missed[1]["id"] == three["metadata"]["resourceVersion"]
    assert int(position) < int(last_seen) < int(missed[0]["id"])

    # From the `synced` position: everything after it, the first change included.
    async with stream(http, gateway, ALICE, last_event_id=position) as resp:
        again = await read_sse(resp, count(4))
    assert [m["id"] for m in again] == [last_seen] + [m["id"] for m in missed]


async def test_an_id_older_than_what_is_kept_gets_reset_then_the_sessions(api, gateway, http):
    one = make_session(api, "one", phase="Running")
    make_session(api, "two", phase="Stopped")
    async with stream(http, gateway, ALICE, last_event_id="1") as resp:
        assert resp.status == 200
        messages = await read_sse(resp, synced)
    assert [m["event"] for m in messages] == ["reset", "added", "added", "synced"]
    assert messages[0]["data"]["reason"] == "expired" and messages[0]["data"]["namespace"] == "team-a"
    assert [m["data"]["info"]["name"] for m in messages[1:3]] == ["one", "two"]
    assert messages[1]["data"]["session"] == identity(one)
    assert messages[-1]["data"]["count"] == 2


async def test_when_the_shared_watch_expires_streams_are_reset_and_go_on(api, gateway, http):
    make_session(api, "one", phase="Running")
    async with stream(http, gateway, ALICE) as resp:
        await read_sse(resp, synced)
        # The gateway's watch ends and its position is gone when it comes back (410 Gone).
        api.fail_next("GET", r"/namespaces/team-a/agentsessions$", status=410)
        api.drop_watches()
        messages = await read_sse(resp, synced)
        assert [m["event"] for m in messages] == ["reset", "added", "synced"]
        assert messages[0]["data"]["reason"] == "relisted"
        api.patch_status(c.SESSION_PLURAL, "team-a", "one", {"phase": "Stopping"})
        after = await read_sse(resp, count(1))
    assert [(m["event"], m["data"]["info"]["phase"]) for m in after] == [("modified", "Stopping")]


async def test_a_refused_watch_is_retried_from_where_it_was_without_a_reset(api, gateway, http):
    make_session(api, "one", phase="Running")
    async with stream(http, gateway, ALICE) as resp:
        await read_sse(resp, synced)
        api.fail_next("GET", r"/namespaces/team-a/agentsessions$", status=500)
        api.drop_watches()
        api.patch_status(c.SESSION_PLURAL, "team-a", "one", {"phase": "Stopping"})  # while it is away
        after = await read_sse(resp, count(1))
    assert [(m["event"], m["data"]["info"]["phase"]) for m in after] == [("modified", "Stopping")]


async def test_streams_of_a_namespace_share_one_watch(api, gateway, http):
    make_session(api, "one", phase="Running")
    before = watched_namespaces()
    async with contextlib.AsyncExitStack() as stack:
        responses = [await stack.enter_async_context(stream(http, gateway, ALICE)) for _ in range(4)]
        for resp in responses:
            await read_sse(resp, synced)
        api.patch_status(c.SESSION_PLURAL, "team-a", "one", {"phase": "Stopping"})
        for resp in responses:
            assert [m["data"]["info"]["phase"] for m in await read_sse(resp, count(1))] == ["Stopping"]
        assert len(status_watches(api)) == 1
        assert watched_namespaces() == before + 1


async def test_a_namespace_of_many_sessions_is_read_in_pages_for_the_list_and_the_stream(
        api, gateway, http, monkeypatch):
    monkeypatch.setattr(session_directory, "LIST_PAGE", 2)
    names = [f"s{i}" for i in range(5)]
    for name in names:
        make_session(api, name, phase="Stopped", stopped_reason="User")

    def pages() -> list:
        return [r for r in list(api.requests) if r.method == "GET" and not r.watch and r.name is None
                and r.resource == c.SESSION_PLURAL and "/namespaces/team-a/" in r.path]

    api.reset_requests()
    async with http.get(f"{gateway}/v1/namespaces/team-a/sessions", headers=ALICE) as resp:
        assert resp.status == 200
        assert [item["name"] for item in (await resp.json())["items"]] == names
    assert [r.query.get("limit") for r in pages()] == ["2"] * 3

    api.reset_requests()
    async with stream(http, gateway, ALICE) as resp:
        start = await read_sse(resp, synced)
    assert [m["data"]["info"]["name"] for m in start[:-1]] == names and start[-1]["data"]["count"] == 5
    assert [r.query.get("limit") for r in pages()] == ["2"] * 3


async def test_streams_per_caller_are_bounded(api, start_gateway, http):
    gateway = (await start_gateway(status_streams_per_caller=2)).url
    async with stream(http, gateway, ALICE) as first, stream(http, gateway, ALICE) as second:
        assert first.status == second.status == 200
        async with stream(http, gateway, ALICE) as third:
            assert third.status == 429
            assert (await third.json())["code"] == "rate_limited"
            assert "Retry-After" in third.headers
    # Closed streams give their places back (the server notices the client went away).
    async def third_allowed() -> bool:
        async with stream(http, gateway, ALICE) as again:
            return again.status == 200
    await eventually(third_allowed, "a stream allowed again once the others closed")


async def test_a_caller_who_loses_the_watch_right_gets_an_error_and_the_stream_ends(api, start_gateway, http):
    gateway = (await start_gateway(status_stream_recheck_seconds=0.1, keepalive_seconds=0.1,
                                   auth_cache_seconds=0)).url
    async with stream(http, gateway, ALICE) as resp:
        await read_sse(resp, synced)
        api.authorizer = RBACAuthorizer.from_manifests(
            [*GATEWAY_RBAC, *(doc for doc in USER_RBAC if doc["metadata"]["name"] != "alice-uses")])
        messages = await read_sse(resp, lambda m: bool(m) and m[-1]["event"] == "error")
        assert messages[-1]["data"]["code"] == "forbidden"
        assert await resp.content.read() == b""  # the stream ended


async def test_shutdown_ends_open_streams_at_once(api, http, tmp_path):
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", token="gateway-token")
    kube = await make_api_client(str(kubeconfig))
    try:
        context = serve_gateway(GatewayOptions(host="127.0.0.1", port=0), kube)
        running = await context.__aenter__()
        async with stream(http, running.url, ALICE) as resp:
            await read_sse(resp, synced)
            started = asyncio.get_running_loop().time()
            await context.__aexit__(None, None, None)
            assert await resp.content.read() == b""
        # Not cut off after the shutdown timeout (10 s): ended by the gateway's on_shutdown.
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        await kube.close()
