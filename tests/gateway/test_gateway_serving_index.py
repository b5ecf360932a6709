"""The gateway learns where a serving session is from a watch, not a GET per message
(`gateway.serving_index`), and never answers from it what the watch has not confirmed."""

from __future__ import annotations

import asyncio

import pytest

from agent_sessions.api import constants as c
from agent_sessions.dev.authorization import RBACAuthorizer
from agent_sessions.dev.strict_api import running_api
from agent_sessions.gateway.options import GatewayOptions
from agent_sessions.gateway.errors import GatewayError
from agent_sessions.gateway.server import serve_gateway
from agent_sessions.gateway import session_directory
from agent_sessions.gateway.serving_index import NamespaceIndex, ServingIndex
from agent_sessions.gateway.session_directory import SessionDirectory
from agent_sessions.k8s.client import make_api_client

from support.waits import eventually

from .conftest import (ALICE, CRDS, DEADLINE, GATEWAY_GET_ONLY_RULES, GATEWAY_RBAC, GATEWAY_USER, TOKENS, USER_RBAC,
                       identity, make_session)


def messages_url(gateway: str, name: str) -> str:
    return f"{gateway}/v1/namespaces/team-a/sessions/{name}/messages"


def session_reads(api, name: str) -> list:
    """The gateway's GETs of the AgentSession `name` (watches and lists aside)."""
    return [r for r in list(api.requests) if r.user == GATEWAY_USER and r.method == "GET" and not r.watch
            and r.resource == c.SESSION_PLURAL and r.name == name]


async def send(http, gateway: str, name: str, text: str = "hi") -> tuple[int, dict]:
    async with http.post(messages_url(gateway, name), json={"text": text}, headers=ALICE) as resp:
        return resp.status, await resp.json()


async def indexed(service, name: str) -> None:
    await eventually(lambda: service.index.lookup("team-a", name) is not None, "the index", timeout=DEADLINE)


async def test_messages_to_a_serving_session_cost_no_read_of_it_once_the_namespace_is_watched(
        api, runtime, start_gateway, http):
    running = await start_gateway()
    runtime.add("s1")
    obj = make_session(api, "demo", endpoint=runtime.endpoint("s1"))

    status, first = await send(http, running.url, "demo")
    assert status == 200 and first["session"] == identity(obj)
    assert len(session_reads(api, "demo")) == 1  # before the watch has listed: read, as always
    await indexed(running.service, "demo")

    api.reset_requests()
    for i in range(20):
        status, reply = await send(http, running.url, "demo", f"m{i}")
        assert status == 200, reply
        assert reply["session"] == identity(obj) and reply["text"] == f"s1 heard: m{i}"
    assert session_reads(api, "demo") == []
    lists = [r for r in api.requests if r.user == GATEWAY_USER and r.resource == c.SESSION_PLURAL]
    assert lists == []  # the watch already open: not one request for these 20 messages


async def test_a_session_that_stops_is_read_again_and_answered_as_not_running(api, runtime, start_gateway, http):
    running = await start_gateway()
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    await send(http, running.url, "demo")
    await indexed(running.service, "demo")

    api.patch_status(c.SESSION_PLURAL, "team-a", "demo",
                     {"phase": "Stopped", "provider": None, "stoppedReason": "User"})
    await eventually(lambda: running.service.index.lookup("team-a", "demo") is None, "the index", timeout=DEADLINE)
    api.reset_requests()
    status, body = await send(http, running.url, "demo")
    assert status == 409 and body["code"] == "session_not_running", body
    assert len(session_reads(api, "demo")) == 1


async def test_a_session_recreated_under_its_name_is_answered_with_its_new_uid(api, runtime, start_gateway, http):
    running = await start_gateway()
    runtime.add("s1")
    runtime.add("s2")
    old = make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    await send(http, running.url, "demo")
    await indexed(running.service, "demo")

    api.delete(c.SESSION_PLURAL, "team-a", "demo")
    new = make_session(api, "demo", endpoint=runtime.endpoint("s2"))
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    await eventually(
        lambda: running.service.index.lookup("team-a", "demo") == (new["metadata"]["uid"], runtime.endpoint("s2")),
        "the new session in the index", timeout=DEADLINE)
    status, reply = await send(http, running.url, "demo")
    assert status == 200 and reply["session"] == identity(new) and reply["text"] == "s2 heard: hi"


async def test_a_runtime_that_is_gone_is_forgotten_so_the_next_message_reads_the_session(
        api, runtime, start_gateway, http):
    running = await start_gateway()
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    await send(http, running.url, "demo")
    await indexed(running.service, "demo")

    runtime.sessions.pop("s1")  # the runtime no longer serves it; the status did not change (yet)
    status, body = await send(http, running.url, "demo")
    assert status >= 400, body
    assert running.service.index.lookup("team-a", "demo") is None
    api.reset_requests()
    await send(http, running.url, "demo")
    assert len(session_reads(api, "demo")) == 1


@pytest.fixture
def get_only_api():
    """The embedded API where the gateway may only `get agentsessions` (no list, no watch), as a
    hand-written Role might allow."""
    rbac = [{**GATEWAY_RBAC[0], "rules": GATEWAY_GET_ONLY_RULES}, GATEWAY_RBAC[1], *USER_RBAC]
    with running_api(crds=CRDS, tokens=TOKENS, authorizer=RBACAuthorizer.from_manifests(rbac)) as api:
        api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
        yield api


async def test_without_the_right_to_watch_every_message_reads_the_session(get_only_api, runtime, http, tmp_path):
    # Still works: each message reads its session, as before the index.
    api = get_only_api
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    client = await make_api_client(str(api.write_kubeconfig(tmp_path / "kubeconfig", token="gateway-token")))
    try:
        async with serve_gateway(GatewayOptions(host="127.0.0.1", port=0, history_poll_seconds=0.05), client) as gw:
            gw.service.runtime_key = bytes(range(32))
            for i in range(5):
                status, reply = await send(http, gw.url, "demo", f"m{i}")
                assert status == 200, reply
                await asyncio.sleep(0.1)
            assert len(session_reads(api, "demo")) == 5
            lists = [r for r in api.requests if r.user == GATEWAY_USER
                     and r.path == f"/apis/{c.GROUP}/{c.VERSION}/namespaces/team-a/{c.SESSION_PLURAL}"]
            assert lists and all(r.status == 403 for r in lists)  # tried, refused, tried again later
    finally:
        await client.close()


async def test_a_refused_watch_while_waiting_for_a_session_is_an_error_not_a_loop(get_only_api, tmp_path):
    # Waiting for a session to resume (a wake) watches it; a Role without `watch` made that loop:
    # read, watch (403, a Status body the client does not raise), read again, for the whole wait.
    api = get_only_api
    make_session(api, "sleeper", phase="Stopped", stopped_reason="IdleTimeout")
    client = await make_api_client(str(api.write_kubeconfig(tmp_path / "kubeconfig", token="gateway-token")))
    try:
        directory = SessionDirectory(client)
        with pytest.raises(GatewayError) as refused:
            await directory.wait_for("team-a", "sleeper", lambda obj: False, timeout=DEADLINE)
        assert refused.value.code == "internal_error" and "watch agentsessions" in refused.value.message
        watches = [r for r in api.requests if r.user == GATEWAY_USER and r.query.get("watch")]
        assert [r.status for r in watches] == [403]
    finally:
        await client.close()


async def test_a_namespace_nobody_asks_about_stops_being_watched(api, tmp_path):
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", token="gateway-token")
    client = await make_api_client(str(kubeconfig))
    index = ServingIndex(client, idle_seconds=0.3)
    try:
        make_session(api, "demo", endpoint="http://127.0.0.1:1/s1")
        await eventually(lambda: index.lookup("team-a", "demo") is not None, "the index", timeout=DEADLINE)
        watch = index.namespaces["team-a"].task
        await asyncio.wait_for(asyncio.shield(watch), timeout=DEADLINE)
        assert "team-a" not in index.namespaces
        watches = [r for r in api.requests if r.user == GATEWAY_USER and r.watch]
        assert watches, "the index watched the namespace"
        # asked again, it lists and watches again
        api.reset_requests()
        await eventually(lambda: index.lookup("team-a", "demo") is not None, "the index", timeout=DEADLINE)
        assert [r.method for r in api.requests if r.user == GATEWAY_USER and not r.watch] == ["GET"]
    finally:
        await index.close()
        await client.close()


async def test_a_namespace_is_listed_in_pages_and_every_serving_session_is_found(api, tmp_path, monkeypatch):
    monkeypatch.setattr(session_directory, "LIST_PAGE", 2)
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", token="gateway-token")
    client = await make_api_client(str(kubeconfig))
    index = ServingIndex(client)
    try:
        names = [f"s{i}" for i in range(5)]
        for name in names:
            make_session(api, name, endpoint=f"http://127.0.0.1:1/{name}")
        make_session(api, "stopped", phase="Stopped", stopped_reason="User")
        await eventually(lambda: all(index.lookup("team-a", name) for name in names), "every session", timeout=DEADLINE)
        assert index.lookup("team-a", "stopped") is None
        pages = [r for r in api.requests if r.user == GATEWAY_USER and r.method == "GET" and not r.watch
                 and r.name is None and r.resource == c.SESSION_PLURAL]
        assert [r.query.get("limit") for r in pages] == ["2"] * 3
    finally:
        await index.close()
        await client.close()


@pytest.mark.parametrize("kind", ["ADDED", "MODIFIED"])
def test_only_a_running_session_with_an_endpoint_and_a_uid_not_being_deleted_is_indexed(kind):
    index = NamespaceIndex(objects=None, namespace="team-a", clock=lambda: 0.0)  # type: ignore[arg-type]
    serving = {"metadata": {"name": "a", "uid": "u1", "resourceVersion": "5"},
               "status": {"phase": "Running", "provider": {"endpoint": "http://e"}}}
    index.apply(kind, serving)
    assert index.targets == {"a": ("u1", "http://e")} and index.version == "5"
    for change in ({"status": {"phase": "Starting", "provider": {"endpoint": "http://e"}}},
                   {"status": {"phase": "Running", "provider": {}}},
                   {"metadata": {"name": "a", "uid": "u1", "resourceVersion": "6", "deletionTimestamp": "now"}},
                   {"metadata": {"name": "a", "resourceVersion": "6"}}):
        index.apply(kind, serving)
        index.apply("MODIFIED", {**serving, **change})
        assert index.targets == {}, change
    index.apply(kind, serving)
    index.apply("DELETED", serving)
    assert index.targets == {}
    index.apply(kind, serving)
    index.apply("BOOKMARK", {"metadata": {"resourceVersion": "9"}})
    assert index.targets == {"a": ("u1", "http://e")} and index.version == "9"
