"""Gateway attacks (issue 10, item 6), replayed against a real gateway and shown to fail.

The gateway runs in-process on a real socket, against the strict embedded Kubernetes API (real
TokenReview and SubjectAccessReview answers from RBAC; every request the gateway makes recorded)
and a fake session runtime:

* a slowloris client (a request head trickled in) is closed within the header timeout; a body
  trickled in gets 408 and a closed connection; idle keep-alive connections and idle WebSockets
  are closed;
* rate limiting is on by default (429), which also bounds the SubjectAccessReviews one WebSocket
  can cause; frames for one session cost one review per (user, session, verb) and TTL;
* a sender who may not `get` sessions gets the same answer for a missing session as for one it
  may not use, over HTTP and over the WebSocket;
* a sender cannot cancel another user's turn (that needs `create agentsessions/cancel`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from agent_sessions.api import constants as c
from agent_sessions.dev.authorization import RBACAuthorizer
from agent_sessions.dev.strict_api import StrictKubernetesAPI, running_api
from agent_sessions.gateway.options import GatewayOptions
from agent_sessions.gateway.server import RunningGateway, serve_gateway
from agent_sessions.gateway.turn_owner import owner_tag
from agent_sessions.k8s.client import make_api_client
from gateway.conftest import (  # noqa: F401 (http and runtime: fixtures)
    ALICE,
    CRDS,
    DEADLINE,
    GATEWAY_RBAC,
    TOKENS,
    USER_RBAC,
    http,
    make_session,
    read_sse,
    runtime,
)

TIER = "embedded"  # a gateway and a fake runtime on real sockets

RBAC_API = "rbac.authorization.k8s.io/v1"
SENDER_TOKENS = {"carol-token": ("carol", []), "erin-token": ("erin", []), "root-token": ("sre", [])}
CAROL = {"Authorization": "Bearer carol-token"}
ERIN = {"Authorization": "Bearer erin-token"}
SRE = {"Authorization": "Bearer root-token"}


def _role(name: str, namespace: str, rules: list[dict], *users: str) -> list[dict]:
    return [
        {"apiVersion": RBAC_API, "kind": "Role", "metadata": {"name": name, "namespace": namespace}, "rules": rules},
        {"apiVersion": RBAC_API, "kind": "RoleBinding", "metadata": {"name": name, "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "User", "name": user} for user in users]},
    ]


SENDER_RBAC = [
    # carol and erin may send to any session of team-a, but not read one.
    *_role("sender", "team-a", [{"apiGroups": [c.GROUP], "resources": [f"{c.SESSION_PLURAL}/messages"],
                                 "verbs": ["create"]}], "carol", "erin"),
    # sre may send and cancel anyone's turn in team-a.
    *_role("turn-admin", "team-a", [{"apiGroups": [c.GROUP], "resources": [f"{c.SESSION_PLURAL}/messages",
                                                                           f"{c.SESSION_PLURAL}/cancel"],
                                     "verbs": ["create"]}], "sre"),
]


@pytest.fixture
def cluster() -> Iterator[StrictKubernetesAPI]:
    authorizer = RBACAuthorizer.from_manifests([*GATEWAY_RBAC, *USER_RBAC, *SENDER_RBAC])
    with running_api(crds=CRDS, tokens={**TOKENS, **SENDER_TOKENS}, authorizer=authorizer) as server:
        for namespace in ("team-a", "team-b"):
            server.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        yield server


@pytest.fixture
async def start(cluster: StrictKubernetesAPI, tmp_path: Path) -> AsyncIterator[Any]:
    """Start a gateway with the production defaults but for the address and `options`."""
    kubeconfig = cluster.write_kubeconfig(tmp_path / "gateway-kubeconfig", token="gateway-token")
    stack: list[Any] = []

    async def start_gateway(**options: Any) -> RunningGateway:
        client = await make_api_client(str(kubeconfig))
        context = serve_gateway(GatewayOptions(host="127.0.0.1", port=0, **options), client)
        running = await context.__aenter__()
        stack.append((context, client))
        return running

    yield start_gateway
    for context, client in reversed(stack):
        await context.__aexit__(None, None, None)
        await client.close()


def address(running: RunningGateway) -> tuple[str, int]:
    host, _, port = running.url.removeprefix("http://").rpartition(":")
    return host, int(port)


async def closed_after(reader: asyncio.StreamReader, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closes the connection (reading whatever it sent), at most `limit`."""
    started, received = time.monotonic(), b""
    async with asyncio.timeout(limit):
        while chunk := await reader.read(65536):
            received += chunk
    return time.monotonic() - started, received


def sars(cluster: StrictKubernetesAPI) -> list[dict]:
    """resourceAttributes (and user) of every SubjectAccessReview the gateway asked for."""
    return [{"user": r.body["spec"]["user"], **r.body["spec"]["resourceAttributes"]}
            for r in list(cluster.requests) if r.resource == "subjectaccessreviews" and r.method == "POST"]


# --- slow and idle clients ---------------------------------------------------------------------


async def test_slowloris_head_is_closed_within_the_header_timeout(start):
    running = await start(header_timeout_seconds=1.0)
    reader, writer = await asyncio.open_connection(*address(running))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n")

    async def trickle() -> None:  # a header byte every 0.2 s: the head never completes
        for index in range(200):
            await asyncio.sleep(0.2)
            writer.write(b"X-Slow-%d: y\r\n" % index)
            await writer.drain()

    dripping = asyncio.create_task(trickle())
    try:
        seconds, received = await closed_after(reader, limit=5.0)
    finally:
        dripping.cancel()
        writer.close()
    assert seconds < 2.5 and received == b""


async def test_a_connection_that_sends_nothing_is_closed_within_the_header_timeout(start):
    running = await start(header_timeout_seconds=1.0)
    reader, writer = await asyncio.open_connection(*address(running))
    try:
        seconds, _ = await closed_after(reader, limit=5.0)
    finally:
        writer.close()
    assert seconds < 2.5


async def test_a_slow_but_timely_head_and_keep_alive_requests_are_served(start):
    running = await start(header_timeout_seconds=1.0)
    reader, writer = await asyncio.open_connection(*address(running))
    try:
        for _ in range(2):  # the deadline restarts with each request's first byte
            writer.write(b"GET /healthz HTTP/1.1\r\n")
            await asyncio.sleep(0.5)
            writer.write(b"Host: gateway\r\n\r\n")
            status = await asyncio.wait_for(reader.readline(), DEADLINE)
            assert status.startswith(b"HTTP/1.1 200"), status
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            await asyncio.sleep(1.2)  # idle between requests is the idle timeout's, not the head's
    finally:
        writer.close()


async def test_idle_keep_alive_connections_are_closed_after_the_idle_timeout(start):
    running = await start(idle_timeout_seconds=1.0)
    reader, writer = await asyncio.open_connection(*address(running))
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        seconds, received = await closed_after(reader, limit=5.0)
    finally:
        writer.close()
    assert received.startswith(b"HTTP/1.1 200") and seconds < 3.0


async def test_a_message_body_trickled_in_gets_408_and_the_connection_closed(start):
    running = await start(body_timeout_seconds=1.0)
    reader, writer = await asyncio.open_connection(*address(running))
    writer.write(b"POST /v1/namespaces/team-a/sessions/demo/messages HTTP/1.1\r\nHost: gateway\r\n"
                 b"Authorization: Bearer alice-token\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000\r\n\r\n{\"text\": \"")

    async def trickle() -> None:
        # A byte every 0.2 s until just before the 1 s body timeout (a read timeout alone would not
        # fire). Not past it: a byte written after the gateway closed makes the peer answer with a
        # reset, which may discard the 408 before this side reads it.
        for _ in range(4):
            await asyncio.sleep(0.2)
            writer.write(b"x")
            await writer.drain()

    dripping = asyncio.create_task(trickle())
    try:
        seconds, received = await closed_after(reader, limit=5.0)
    finally:
        dripping.cancel()
        writer.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), received
    assert json.loads(body)["code"] == "request_timeout"
    assert seconds < 3.0


async def test_an_idle_websocket_is_closed_but_a_subscribed_one_is_not(start, cluster, runtime, http):
    runtime.add("s1")
    make_session(cluster, "demo", endpoint=runtime.endpoint("s1"))
    running = await start(websocket_idle_seconds=1.0)
    async with http.ws_connect(f"{running.url}/v1/ws", headers=ALICE) as idle:
        started = time.monotonic()
        message = await asyncio.wait_for(idle.receive(), 5.0)
        assert message.type == WSMsgType.CLOSE and idle.close_code == 1000
        assert time.monotonic() - started < 3.0
    async with http.ws_connect(f"{running.url}/v1/ws", headers=ALICE) as busy:
        await busy.send_json({"type": "subscribe", "namespace": "team-a", "name": "demo"})
        assert (await busy.receive_json(timeout=DEADLINE))["type"] == "subscribed"
        with pytest.raises(TimeoutError):
            await busy.receive(timeout=2.5)
        assert not busy.closed


# --- rate limiting and the cost of a WebSocket in SubjectAccessReviews --------------------------


def test_rate_limiting_is_on_by_default():
    assert GatewayOptions().rate_limit_per_second == 10.0 and GatewayOptions().rate_limit_burst == 50


async def test_rate_limit_answers_429_by_default(start, cluster, runtime, http):
    runtime.add("s1")
    make_session(cluster, "demo", endpoint=runtime.endpoint("s1"))
    running = await start()
    url = f"{running.url}/v1/namespaces/team-a/sessions"
    answers = []
    for _ in range(80):
        async with http.get(url, headers=ALICE) as resp:
            answers.append((resp.status, resp.headers.get("Retry-After"), await resp.json()))
    limited = [a for a in answers if a[0] == 429]
    assert limited and answers[0][0] == 200
    assert all(body["code"] == "rate_limited" and int(retry) >= 1 for _, retry, body in limited)


async def test_one_websocket_costs_one_review_per_user_session_and_verb(start, cluster, runtime, http):
    runtime.add("s1")
    make_session(cluster, "demo", endpoint=runtime.endpoint("s1"))
    running = await start()
    cluster.reset_requests()
    async with http.ws_connect(f"{running.url}/v1/ws", headers=ALICE) as ws:
        for _ in range(20):  # each one authorized anew (a subscribe replaces the previous one)
            await ws.send_json({"type": "subscribe", "namespace": "team-a", "name": "demo"})
            assert (await ws.receive_json(timeout=DEADLINE))["type"] == "subscribed"
        for index in range(20):
            await ws.send_json({"type": "cancel", "namespace": "team-a", "name": "demo", "id": index})
        got: list[dict] = []
        async with asyncio.timeout(DEADLINE):
            while sum(f["type"] in ("cancelled", "error") and "id" in f for f in got) < 20:
                got.append(await ws.receive_json())
    reviews = [(r["user"], r["namespace"], r.get("name"), r["verb"], r.get("subresource")) for r in sars(cluster)]
    assert sorted(reviews) == [("alice", "team-a", "demo", "create", "messages"),
                               ("alice", "team-a", "demo", "get", None)]


async def test_one_websocket_naming_thousands_of_sessions_is_stopped_by_the_default_rate_limit(
        start, cluster, http):
    running = await start()
    cluster.reset_requests()
    started = time.monotonic()
    async with http.ws_connect(f"{running.url}/v1/ws", headers=ALICE) as ws:
        for index in range(1000):
            await ws.send_json({"type": "subscribe", "namespace": "team-a", "name": f"s-{index}"})
        got: list[dict] = []
        async with asyncio.timeout(DEADLINE):
            while len(got) < 1000:
                got.append(await ws.receive_json())
    seconds = time.monotonic() - started
    codes = [f.get("code") for f in got]
    assert codes.count("rate_limited") >= 1000 - (50 + 10 * seconds)
    # One review per session the limiter let through: the burst, then 10 a second.
    assert len(sars(cluster)) <= 50 + 10 * seconds


# --- what a sender who may not read learns ------------------------------------------------------


def _anonymous(body: dict, namespace: str, name: str) -> str:
    """The answer with the session's coordinates blanked (what differs by construction)."""
    return json.dumps(body, sort_keys=True).replace(f"{namespace}/{name}", "NS/NAME").replace(
        f'"name": "{name}"', '"name": "NAME"').replace(f'"namespace": "{namespace}"', '"namespace": "NS"')


async def test_a_sender_without_get_cannot_tell_a_missing_session_from_a_forbidden_one(
        start, cluster, runtime, http):
    runtime.add("s1")
    make_session(cluster, "target", namespace="team-b", endpoint=runtime.endpoint("s1"))  # exists; carol: nothing
    running = await start()
    answers: dict[str, list[tuple[int, str]]] = {"missing": [], "forbidden": []}
    for case, namespace in (("missing", "team-a"), ("forbidden", "team-b")):
        base = f"{running.url}/v1/namespaces/{namespace}/sessions/target"
        for method, suffix in (("POST", "/messages"), ("POST", "/messages?stream=true"), ("POST", "/cancel")):
            async with http.request(method, base + suffix, json={"text": "anyone?"}, headers=CAROL) as resp:
                answers[case].append((resp.status, _anonymous(await resp.json(), namespace, "target")))
        async with http.ws_connect(f"{running.url}/v1/ws", headers=CAROL) as ws:
            for kind in ("send", "cancel"):
                await ws.send_json({"type": kind, "namespace": namespace, "name": "target", "id": 1, "text": "hi"})
                answers[case].append((0, _anonymous(await ws.receive_json(timeout=DEADLINE), namespace, "target")))
    assert answers["missing"] == answers["forbidden"]
    assert {status for status, _ in answers["missing"]} == {403, 0}
    assert runtime.sessions["s1"].history == []


async def test_a_sender_without_get_is_not_told_a_stopped_sessions_phase(start, cluster, http):
    make_session(cluster, "asleep", phase="Stopped", stopped_reason="User", state="Stopped")
    running = await start()
    url = f"{running.url}/v1/namespaces/team-a/sessions/asleep/messages"
    async with http.post(url, json={"text": "x"}, headers=CAROL) as resp:
        body = await resp.json()
    assert (resp.status, body["code"], body["message"]) == (
        409, "session_not_running", "session team-a/asleep is not running")
    async with http.post(url, json={"text": "x"}, headers=ALICE) as resp:  # alice may read: the detail
        assert "phase Stopped" in (await resp.json())["message"]


# --- cancelling someone else's turn --------------------------------------------------------------


async def test_a_sender_cannot_cancel_another_users_turn(start, cluster, runtime, http):
    fake = runtime.add("s1", hold=True)
    make_session(cluster, "demo", endpoint=runtime.endpoint("s1"))
    running = await start()
    base = f"{running.url}/v1/namespaces/team-a/sessions/demo"
    async with http.post(base + "/messages?stream=true", json={"text": "long", "id": "mine"}, headers=ALICE) as turn:
        await read_sse(turn, lambda m: any(x["event"] == "agent_message_chunk" for x in m))

        async with http.post(base + "/cancel", headers=ERIN) as resp:
            body = await resp.json()
        assert (resp.status, body["code"]) == (403, "forbidden")
        assert "agentsessions/cancel" in body["message"]
        async with http.ws_connect(f"{running.url}/v1/ws", headers=ERIN) as ws:
            await ws.send_json({"type": "cancel", "namespace": "team-a", "name": "demo", "id": "x"})
            frame = await ws.receive_json(timeout=DEADLINE)
        assert (frame["type"], frame["code"]) == ("error", "forbidden")
        assert not fake.cancelled.is_set() and fake.turn is not None

        async with http.post(base + "/cancel", headers=ALICE) as resp:  # her own turn
            assert (resp.status, (await resp.json())["cancelled"]) == (200, True)
        rest = await read_sse(turn, lambda m: bool(m) and m[-1]["event"] in ("done", "error"))
    assert rest[-1]["data"]["stopReason"] == "cancelled"
    # The runtime was told who sent it: the id it recorded is alice's.
    (user_message,) = [f for f in fake.history if f["event"] == "user_message"]
    assert user_message["update"]["messageId"] == f"{owner_tag('alice')}.mine"


async def test_cancelling_others_turns_needs_create_agentsessions_cancel(start, cluster, runtime, http):
    fake = runtime.add("s1", hold=True)
    make_session(cluster, "demo", endpoint=runtime.endpoint("s1"))
    running = await start()
    base = f"{running.url}/v1/namespaces/team-a/sessions/demo"
    async with http.post(base + "/messages?stream=true", json={"text": "long"}, headers=ERIN) as turn:
        await read_sse(turn, lambda m: any(x["event"] == "agent_message_chunk" for x in m))
        async with http.post(base + "/cancel", headers=SRE) as resp:
            assert (resp.status, (await resp.json())["cancelled"]) == (200, True)
        await read_sse(turn, lambda m: bool(m) and m[-1]["event"] in ("done", "error"))
    assert fake.cancelled.is_set()


async def test_a_turn_not_started_through_the_gateway_is_nobody_elses_to_cancel(start, cluster, runtime, http):
    # e.g. the operator delivering spec.prompt: no sender may stop it, a turn admin may.
    fake = runtime.add("s1", hold=True)
    make_session(cluster, "demo", endpoint=runtime.endpoint("s1"))
    running = await start()
    fake.start_turn("from the operator", "operator-prompt-1")
    base = f"{running.url}/v1/namespaces/team-a/sessions/demo"
    async with http.post(base + "/cancel", headers=ERIN) as resp:
        assert resp.status == 403
    async with http.post(base + "/cancel", headers=SRE) as resp:
        assert (resp.status, (await resp.json())["cancelled"]) == (200, True)
