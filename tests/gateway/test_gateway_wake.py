"""Wake-on-message (§4): a message for a session stopped for idleness starts it again."""

from __future__ import annotations

import asyncio
import re
import time

from agent_sessions.api import constants as c
from agent_sessions.wire.credentials import wake_signature_valid
from agent_sessions.wire.wake_request import parse_wake_timestamp

from support.waits import eventually

from .conftest import ALICE, DEADLINE, GATEWAY_USER, RUNTIME_KEY, identity, make_session
from .test_gateway_http import session_url

RFC3339_NANOS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def wake_requests(api, name: str) -> list[dict]:
    """The wake request Events for `name`, oldest first."""
    events = [e for e in api.list("events", "team-a", label_selector=c.LABEL_WAKE_REQUEST)
              if e["involvedObject"]["name"] == name]
    return sorted(events, key=lambda e: e["metadata"]["annotations"][c.ANNOTATION_WAKE_REQUESTED_AT])


def wake_value(api, name: str) -> str | None:
    """When the gateway last asked for `name` to be woken (the signed request's time)."""
    requests = wake_requests(api, name)
    return requests[-1]["metadata"]["annotations"][c.ANNOTATION_WAKE_REQUESTED_AT] if requests else None


def resume(api, runtime, name: str, sid: str) -> None:
    """What the operator does on a valid wake request: start the session, record the request."""
    api.patch_status(c.SESSION_PLURAL, "team-a", name, {
        "phase": "Running", "stoppedReason": None, "wakeRequest": wake_value(api, name),
        "provider": {"type": "pod", "id": f"{name}-pod", "endpoint": runtime.endpoint(sid)}})


def watches(api, name: str) -> list:
    return [r for r in list(api.requests) if r.watch and r.query.get("fieldSelector") == f"metadata.name={name}"]


def gateway_session_writes(api) -> list:
    """Every write the gateway made to AgentSessions (any subresource)."""
    return [w for w in api.writes(resource=c.SESSION_PLURAL) if w.user == GATEWAY_USER]


async def test_message_wakes_an_idle_stopped_session_and_is_answered_once_it_runs(api, runtime, gateway, http):
    runtime.add("s1")
    obj = make_session(api, "sleepy", phase="Stopped", stopped_reason="IdleTimeout")

    async def send() -> tuple[int, dict]:
        async with http.post(session_url(gateway, "sleepy") + "/messages", json={"text": "wake up"},
                             headers=ALICE) as resp:
            return resp.status, await resp.json()

    reply = asyncio.create_task(send())
    value = await api.wait_for_async(lambda: wake_value(api, "sleepy"))
    assert RFC3339_NANOS.match(value), value
    assert abs(parse_wake_timestamp(value) - time.time()) < 60
    assert not reply.done()  # waiting for the session, not refused

    # A second message meanwhile joins the wake under way instead of asking again.
    async with http.get(session_url(gateway, "sleepy"), headers=ALICE) as resp:
        assert (await resp.json())["info"]["phase"] == "Stopped"
    second = asyncio.create_task(send())
    await eventually(lambda: len(watches(api, "sleepy")) >= 2)  # both are watching the session

    resume(api, runtime, "sleepy", "s1")
    answers = await asyncio.wait_for(asyncio.gather(reply, second), DEADLINE)
    # Both were waiting; whichever reaches the runtime first is answered, the other may find it busy.
    answered = [body for status, body in answers if status == 200]
    assert answered, answers
    assert all(body["code"] == "session_busy" for status, body in answers if status != 200)
    assert answered[0]["text"] == "s1 heard: wake up"
    assert answered[0]["session"] == identity(obj)
    (request,) = wake_requests(api, "sleepy")  # one request for both messages
    assert request["reason"] == "WakeRequested" and request["involvedObject"]["uid"] == obj["metadata"]["uid"]
    assert "alice" in request["message"]
    signature = request["metadata"]["annotations"][c.ANNOTATION_WAKE_SIGNATURE]
    assert wake_signature_valid(RUNTIME_KEY, "team-a", "sleepy", obj["metadata"]["uid"], value, signature)
    assert gateway_session_writes(api) == []  # the gateway wrote no AgentSession (it may not)
    annotations = api.get(c.SESSION_PLURAL, "team-a", "sleepy")["metadata"].get("annotations") or {}
    assert c.ANNOTATION_WAKE not in annotations
    assert (api.get(c.SESSION_PLURAL, "team-a", "sleepy")["spec"]).get("state") is None  # spec untouched


async def test_streamed_message_also_wakes(api, runtime, gateway, http):
    runtime.add("s1")
    make_session(api, "sleepy", phase="Stopped", stopped_reason="MaxDuration")

    async def send() -> list[bytes]:
        async with http.post(session_url(gateway, "sleepy") + "/messages?stream=true", json={"text": "x"},
                             headers=ALICE) as resp:
            assert resp.status == 200
            return [line async for line in resp.content if line.startswith(b"event:")]

    reply = asyncio.create_task(send())
    await api.wait_for_async(lambda: wake_value(api, "sleepy"))
    resume(api, runtime, "sleepy", "s1")
    events = await asyncio.wait_for(reply, 10)
    assert events[0] == b"event: user_message\n" and events[-1] == b"event: done\n"


async def test_session_with_wake_on_message_off_is_not_woken(api, gateway, http):
    make_session(api, "own", phase="Stopped", stopped_reason="IdleTimeout", lifecycle={"wakeOnMessage": False})
    api.create(c.TEMPLATE_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.TEMPLATE_KIND,
                                   "metadata": {"name": "no-wake", "namespace": "team-a"},
                                   "spec": {"agent": {"image": "example.com/agent:1"},
                                            "lifecycle": {"wakeOnMessage": False}}})
    make_session(api, "inherited", phase="Stopped", stopped_reason="IdleTimeout", templateRef={"name": "no-wake"})
    for name in ("own", "inherited"):
        async with http.post(session_url(gateway, name) + "/messages", json={"text": "x"}, headers=ALICE) as resp:
            body = await resp.json()
        assert (resp.status, body["code"]) == (409, "session_not_running"), name
        assert wake_value(api, name) is None


async def test_wake_gives_up_when_the_session_fails_to_resume(api, gateway, http):
    make_session(api, "doomed", phase="Stopped", stopped_reason="IdleTimeout")

    async def send() -> tuple[int, dict]:
        async with http.post(session_url(gateway, "doomed") + "/messages", json={"text": "x"}, headers=ALICE) as resp:
            return resp.status, await resp.json()

    reply = asyncio.create_task(send())
    await api.wait_for_async(lambda: wake_value(api, "doomed"))
    api.patch_status(c.SESSION_PLURAL, "team-a", "doomed", {"phase": "Failed", "stoppedReason": None})
    status, body = await asyncio.wait_for(reply, 10)
    assert (status, body["code"]) == (409, "session_not_running")


async def test_wake_that_takes_too_long_is_provider_unavailable(api, start_gateway, http):
    gateway = (await start_gateway(wake_timeout_seconds=0.5)).url
    make_session(api, "slow", phase="Stopped", stopped_reason="IdleTimeout")
    async with http.post(session_url(gateway, "slow") + "/messages", json={"text": "x"}, headers=ALICE) as resp:
        body = await resp.json()
    assert (resp.status, body["code"]) == (503, "provider_unavailable")
    assert resp.headers["Retry-After"]
    assert wake_value(api, "slow") is not None
