"""The operator wakes a session on a wake request signed with the runtime key, and on nothing else
(the gateway's side: tests/gateway/test_gateway_wake.py; attacks: tests/security/test_gateway_wake_requests.py).

Both backends: on the real kube-apiserver the operator's watch of Events runs with the label
selector, and Events are the API server's own objects."""

from __future__ import annotations

import base64
import time

from agent_sessions.api import constants as c
from agent_sessions.wire.wake_request import build_wake_event, wake_timestamp
from support.sessions import session
from support.waits import phase_is, ready, wait_session

KEY = bytes(range(7, 39))
KEY_SECRET = "test-runtime-key"


def key_secret(api) -> str:
    api.create("secrets", {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                           "metadata": {"name": KEY_SECRET, "namespace": "default"},
                           "data": {"key": base64.b64encode(KEY).decode()}})
    return f"default/{KEY_SECRET}"


def stopped_for_idleness(obj) -> bool:
    status = (obj or {}).get("status") or {}
    return status.get("phase") == c.PHASE_STOPPED and status.get("stoppedReason") == c.STOPPED_IDLE_TIMEOUT


def test_a_signed_wake_request_resumes_an_idle_session_and_a_forged_or_replayed_one_does_not(
        api, start_operator, kubelet):
    start_operator(runtime_key_secret=key_secret(api))
    api.create(c.SESSION_PLURAL, session("sleepy", lifecycle={"idleTimeout": "2s"}))
    wait_session(api, "sleepy", ready)
    obj = wait_session(api, "sleepy", stopped_for_idleness)

    # Whoever may create Events signs with some other key: nothing happens.
    forged_at = wake_timestamp(time.time_ns())
    api.create("events", build_wake_event(obj, forged_at, bytes(32), requester="mallory"))
    time.sleep(3)  # the operator sees the Event within milliseconds; give it ample time to misbehave
    obj = api.get(c.SESSION_PLURAL, "default", "sleepy")
    assert stopped_for_idleness(obj) and not obj["status"].get("wakeRequest")

    # The gateway's request: the session resumes, and the request is recorded.
    signed_at = wake_timestamp(time.time_ns())
    genuine = build_wake_event(obj, signed_at, KEY, requester="alice")
    api.create("events", genuine)
    woken = wait_session(api, "sleepy", lambda o: (o["status"].get("wakeRequest") == signed_at
                                                   and o["status"].get("phase") != c.PHASE_STOPPED))
    assert woken["status"]["phase"] in (c.PHASE_PENDING, c.PHASE_CREATING, c.PHASE_RUNNING)
    assert c.ANNOTATION_WAKE not in (woken["metadata"].get("annotations") or {})  # nothing but status written
    wait_session(api, "sleepy", ready)

    # It idles out again; the same request, created again (a replay), does not wake it.
    obj = wait_session(api, "sleepy", stopped_for_idleness)
    replay = build_wake_event(obj, signed_at, KEY)
    replay["metadata"]["annotations"] = genuine["metadata"]["annotations"]
    api.create("events", replay)
    time.sleep(3)
    assert wait_session(api, "sleepy", phase_is(c.PHASE_STOPPED))["status"]["wakeRequest"] == signed_at


def test_a_wake_request_made_while_no_operator_ran_is_acted_on_when_one_starts(api, start_operator, kubelet):
    # The gateway may wake a session while the operator is down (a rolling update): the request
    # is listed at start-up, before the session it names may be known, and must not be lost.
    secret = key_secret(api)
    first = start_operator(runtime_key_secret=secret)
    api.create(c.SESSION_PLURAL, session("overnight", lifecycle={"idleTimeout": "2s"}))
    obj = wait_session(api, "overnight", stopped_for_idleness)
    first.stop()

    signed_at = wake_timestamp(time.time_ns())
    api.create("events", build_wake_event(obj, signed_at, KEY, requester="alice"))
    start_operator(runtime_key_secret=secret)
    woken = wait_session(api, "overnight", lambda o: o["status"].get("wakeRequest") == signed_at)
    assert woken["status"]["phase"] != c.PHASE_STOPPED or woken["status"].get("stoppedReason") != c.STOPPED_IDLE_TIMEOUT
