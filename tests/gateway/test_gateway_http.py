"""The gateway's HTTP API: messages (sync and streamed), reads, cancel, and every error code."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from agent_sessions.api import constants as c

from .conftest import ALICE, BOB, DEADLINE, ended, identity, make_session, read_sse
from .fake_runtime import free_port


def session_url(gateway: str, name: str, namespace: str = "team-a") -> str:
    return f"{gateway}/v1/namespaces/{namespace}/sessions/{name}"


async def test_sync_message_is_answered_with_the_kubernetes_session_identity(api, runtime, gateway, http):
    runtime.add("s1")
    obj = make_session(api, "demo", endpoint=runtime.endpoint("s1"))

    async with http.post(session_url(gateway, "demo") + "/messages", json={"text": "hello"}, headers=ALICE) as resp:
        assert resp.status == 200, await resp.text()
        reply = await resp.json()

    assert reply["session"] == identity(obj)
    assert reply["text"] == "s1 heard: hello"
    assert reply["stopReason"] == "end_turn"
    assert reply["seq"] == 5  # user message, three chunks, done


async def test_streamed_message_carries_session_and_ordered_seq_on_every_event(api, runtime, gateway, http):
    runtime.add("s1")
    obj = make_session(api, "demo", endpoint=runtime.endpoint("s1"))

    url = session_url(gateway, "demo") + "/messages?stream=true"
    async with http.post(url, json={"text": "hi"}, headers=ALICE) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        messages = await read_sse(resp, ended)

    assert [m["event"] for m in messages] == ["user_message"] + ["agent_message_chunk"] * 3 + ["done"]
    seqs = [m["data"]["seq"] for m in messages]
    assert seqs == sorted(seqs) == list(range(1, 6))
    assert [int(m["id"]) for m in messages] == seqs
    assert all(m["data"]["session"] == identity(obj) for m in messages)
    assert messages[-1]["data"]["stopReason"] == "end_turn"


async def test_session_list_shows_the_namespace_sessions_to_a_caller_who_may_list(api, runtime, gateway, http):
    runtime.add("s1")
    running = make_session(api, "one", endpoint=runtime.endpoint("s1"))
    make_session(api, "two", phase="Stopped", stopped_reason="User")

    async with http.get(f"{gateway}/v1/namespaces/team-a/sessions", headers=ALICE) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert [item["name"] for item in body["items"]] == ["one", "two"]
    one, two = body["items"]
    assert one["session"] == identity(running) and one["phase"] == "Running" and one["hasEndpoint"] is True
    assert two["phase"] == "Stopped" and two["hasEndpoint"] is False and two["stoppedReason"] == "User"
    assert "endpoint" not in one

    async with http.get(f"{gateway}/v1/namespaces/team-a/sessions", headers=BOB) as resp:
        assert resp.status == 403  # bob may get, not list
        assert (await resp.json())["code"] == "forbidden"


async def test_session_detail_has_runtime_info_and_history_after_seq(api, runtime, gateway, http):
    fake = runtime.add("s1")
    obj = make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    await fake.start_turn("first")

    async with http.get(session_url(gateway, "demo") + "?after_seq=3", headers=BOB) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["session"] == identity(obj)
    assert body["info"]["phase"] == "Running"
    assert body["runtime"]["session"] == identity(obj) and body["runtime"]["lastSeq"] == 5
    assert [item["seq"] for item in body["items"]] == [4, 5]
    assert all(item["session"] == identity(obj) for item in body["items"])
    assert body["lastSeq"] == 5


async def test_stopped_session_detail_has_no_history(api, gateway, http):
    make_session(api, "asleep", phase="Stopped", stopped_reason="User")
    async with http.get(session_url(gateway, "asleep"), headers=ALICE) as resp:
        body = await resp.json()
    assert resp.status == 200
    assert body["runtime"] is None and body["items"] == [] and body["info"]["phase"] == "Stopped"


async def test_cancel_stops_the_running_turn_and_a_second_message_meanwhile_is_busy(api, runtime, gateway, http):
    fake = runtime.add("s1", hold=True)
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))

    url = session_url(gateway, "demo")
    async with http.post(url + "/messages?stream=true", json={"text": "long"}, headers=ALICE) as stream:
        first = await read_sse(stream, lambda m: any(x["event"] == "agent_message_chunk" for x in m))
        async with http.post(url + "/messages", json={"text": "again"}, headers=ALICE) as busy:
            assert busy.status == 409
            error = await busy.json()
        assert error["code"] == "session_busy" and error["session"]["name"] == "demo"
        async with http.post(url + "/cancel", headers=ALICE) as resp:
            assert resp.status == 200
            assert (await resp.json())["cancelled"] is True
        rest = await read_sse(stream, ended)
    assert first[0]["event"] == "user_message"
    assert rest[-1]["event"] == "done" and rest[-1]["data"]["stopReason"] == "cancelled"
    assert fake.turn is None


async def test_long_silent_turn_is_answered_without_a_timeout(api, runtime, start_gateway, http):
    # The short-call timeout is 1 s; the turn is silent for 3 s: message calls must not use it.
    gateway = (await start_gateway(upstream_request_seconds=1.0)).url
    runtime.add("slow", reply_delay=3.0)
    make_session(api, "slow", endpoint=runtime.endpoint("slow"))

    async with http.post(session_url(gateway, "slow") + "/messages", json={"text": "think"}, headers=ALICE,
                         timeout=aiohttp.ClientTimeout(total=DEADLINE)) as resp:
        assert resp.status == 200
        assert (await resp.json())["text"] == "slow heard: think"


async def test_client_going_away_does_not_cancel_the_turn(api, runtime, gateway, http):
    fake = runtime.add("s1", hold=True)
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    url = session_url(gateway, "demo") + "/messages?stream=true"
    async with http.post(url, json={"text": "x"}, headers=ALICE) as stream:
        await read_sse(stream, lambda m: any(x["event"] == "agent_message_chunk" for x in m))
    # The client left; the turn is still running until released.
    assert fake.turn is not None and not fake.cancelled.is_set()
    fake.released.set()
    async with asyncio.timeout(DEADLINE):
        while fake.turn is not None:
            await asyncio.sleep(0.01)
    assert fake.history[-1]["stopReason"] == "end_turn"


# -- errors -------------------------------------------------------------------------------------


async def error_of(resp: aiohttp.ClientResponse) -> tuple[int, dict]:
    body = await resp.json()
    assert set(body) >= {"code", "message", "session"}, body
    return resp.status, body


async def test_no_token_and_a_bad_token_are_unauthorized(api, runtime, gateway, http):
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YWxpY2U6eA=="}):
        async with http.post(session_url(gateway, "demo") + "/messages", json={"text": "x"}, headers=headers) as resp:
            status, body = await error_of(resp)
        assert (status, body["code"], body["session"]) == (401, "unauthorized", None)


async def test_reader_may_not_send(api, runtime, gateway, http):
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    async with http.post(session_url(gateway, "demo") + "/messages", json={"text": "x"}, headers=BOB) as resp:
        status, body = await error_of(resp)
    assert (status, body["code"]) == (403, "forbidden")
    assert runtime.sessions["s1"].history == []


async def test_unknown_session_where_the_caller_may_not_read_is_forbidden_not_not_found(api, gateway, http):
    for suffix, method in (("", "GET"), ("/messages", "POST"), ("/events", "GET"), ("/cancel", "POST")):
        async with http.request(method, session_url(gateway, "ghost", "team-b") + suffix, json={"text": "x"},
                                headers=ALICE) as resp:
            status, body = await error_of(resp)
        assert (status, body["code"]) == (403, "forbidden"), suffix


async def test_unknown_session_is_not_found_for_a_caller_who_may_read(api, gateway, http):
    for suffix, method in (("", "GET"), ("/messages", "POST"), ("/events", "GET")):
        async with http.request(method, session_url(gateway, "ghost") + suffix, json={"text": "x"},
                                headers=ALICE) as resp:
            status, body = await error_of(resp)
        assert (status, body["code"]) == (404, "session_not_found"), suffix
        assert body["session"] == {"namespace": "team-a", "name": "ghost", "uid": None}


async def test_session_stopped_by_its_user_is_not_running(api, gateway, http):
    obj = make_session(api, "asleep", phase="Stopped", stopped_reason="User", state="Stopped")
    async with http.post(session_url(gateway, "asleep") + "/messages", json={"text": "x"}, headers=ALICE) as resp:
        status, body = await error_of(resp)
    assert (status, body["code"], body["session"]) == (409, "session_not_running", identity(obj))
    assert c.ANNOTATION_WAKE not in (api.get(c.SESSION_PLURAL, "team-a", "asleep")["metadata"].get("annotations") or {})


async def test_too_large_messages_are_refused_by_length_and_while_reading(api, runtime, start_gateway, http):
    gateway = (await start_gateway(max_message_bytes=1024)).url
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    url = session_url(gateway, "demo") + "/messages"
    big = b'{"text": "' + b"x" * 2000 + b'"}'

    async with http.post(url, data=big, headers={**ALICE, "Content-Type": "application/json"}) as resp:
        status, body = await error_of(resp)
    assert (status, body["code"]) == (413, "message_too_large")

    async def chunked():
        for start in range(0, len(big), 256):
            yield big[start:start + 256]

    async with http.post(url, data=chunked(), headers={**ALICE, "Content-Type": "application/json"}) as resp:
        status, body = await error_of(resp)
    assert (status, body["code"]) == (413, "message_too_large")
    assert runtime.sessions["s1"].history == []


async def test_malformed_or_empty_messages_are_invalid(api, runtime, gateway, http):
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    url = session_url(gateway, "demo") + "/messages"
    for data in (b"{not json", b'{"txt": "x"}', b'{"text": ""}', b'{"prompt": []}', b"[1]", b""):
        async with http.post(url, data=data, headers={**ALICE, "Content-Type": "application/json"}) as resp:
            status, body = await error_of(resp)
        assert (status, body["code"]) == (422, "invalid_request"), data
    async with http.get(session_url(gateway, "demo") + "?after_seq=-1", headers=ALICE) as resp:
        assert (await error_of(resp))[0] == 422


async def test_unreachable_runtime_is_provider_unavailable(api, gateway, http):
    obj = make_session(api, "gone", endpoint=f"http://127.0.0.1:{free_port()}")
    url = session_url(gateway, "gone")
    for method, suffix in (("POST", "/messages"), ("POST", "/messages?stream=true"), ("GET", "/events"),
                           ("GET", ""), ("POST", "/cancel")):
        async with http.request(method, url + suffix, json={"text": "x"}, headers=ALICE) as resp:
            status, body = await error_of(resp)
        assert (status, body["code"], body["session"]) == (503, "provider_unavailable", identity(obj)), suffix


async def test_runtime_5xx_is_provider_unavailable(api, runtime, gateway, http):
    # The fake runtime hosts no session "missing": a 404 in its own (non-JSON) shape, and a 5xx
    # from a broken runtime, both mean the runtime does not serve this session.
    make_session(api, "demo", endpoint=runtime.endpoint("missing"))
    async with http.post(session_url(gateway, "demo") + "/messages", json={"text": "x"}, headers=ALICE) as resp:
        status, body = await error_of(resp)
    assert (status, body["code"]) == (503, "provider_unavailable")
    assert body["upstream"]["status"] == 404


async def test_callers_over_their_rate_are_limited(api, runtime, start_gateway, http):
    gateway = (await start_gateway(rate_limit_per_second=0.01, rate_limit_burst=2)).url
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    statuses = []
    for _ in range(3):
        async with http.get(session_url(gateway, "demo"), headers=ALICE) as resp:
            statuses.append(resp.status)
            if resp.status == 429:
                status, body = await error_of(resp)
                assert body["code"] == "rate_limited"
                assert int(resp.headers["Retry-After"]) >= 1
                wait = re.search(r"retry in (\d+\.\d)s", body["message"])
                assert wait and float(wait.group(1)) > 0, body["message"]
    assert statuses == [200, 200, 429]
    async with http.get(session_url(gateway, "demo"), headers=BOB) as resp:
        assert resp.status == 200  # another caller, another bucket


async def test_auth_answers_are_cached(api, runtime, gateway, http):
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    api.reset_requests()
    for _ in range(3):
        async with http.get(session_url(gateway, "demo"), headers=ALICE) as resp:
            assert resp.status == 200
    reviews = [r.resource for r in api.requests if r.resource in ("tokenreviews", "subjectaccessreviews")]
    assert sorted(reviews) == ["subjectaccessreviews", "tokenreviews"]


async def test_health_readiness_and_metrics_on_a_port_of_their_own(api, runtime, start_gateway, http):
    running = await start_gateway(metrics_port=0)
    gateway = running.url
    runtime.add("s1")
    make_session(api, "demo", endpoint=runtime.endpoint("s1"))
    async with http.post(session_url(gateway, "demo") + "/messages", json={"text": "x"}, headers=ALICE) as resp:
        assert resp.status == 200
    async with http.get(f"{gateway}/healthz") as resp:
        assert resp.status == 200
    async with http.get(f"{gateway}/readyz") as resp:
        assert resp.status == 200
    assert running.metrics_url and running.metrics_url != gateway
    async with http.get(f"{running.metrics_url}/metrics") as resp:
        text = await resp.text()
    assert 'agent_session_gateway_messages_total{code="ok"}' in text
    assert "agent_session_gateway_message_seconds_bucket" in text
    # Not on the port users reach: exposing the gateway (an Ingress, a LoadBalancer) never exposes it.
    async with http.get(f"{gateway}/metrics") as resp:
        status, body = await error_of(resp)
    assert (status, body["code"]) == (404, "not_found")
    async with http.get(f"{running.metrics_url}/v1/namespaces/team-a/sessions", headers=ALICE) as resp:
        assert resp.status == 404  # and the metrics port serves nothing else
    async with http.get(f"{gateway}/v2/nothing") as resp:
        status, body = await error_of(resp)
    assert (status, body["code"]) == (404, "not_found")
