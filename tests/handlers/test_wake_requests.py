"""Wake requests from the gateway (signed Events): which ones the operator acts on, and when."""

from __future__ import annotations

import time

import pytest

from agent_sessions.api import constants as c
from agent_sessions.api.session import AgentSessionStatus
from agent_sessions.handlers.wake_requests import MAX_PENDING, PendingWakes, on_wake_event
from agent_sessions.reconciler.inputs import wake_to_act_on
from agent_sessions.wire.credentials import wake_signature
from agent_sessions.wire.wake_request import build_wake_event, valid_wake_request, wake_timestamp

pytestmark = pytest.mark.unit

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NOW = time.time()
SESSION = {"metadata": {"namespace": "team-a", "name": "sleepy", "uid": "uid-1"}}


def at(seconds_ago: float) -> str:
    return wake_timestamp(int((NOW - seconds_ago) * 1e9))


def event(requested_at: str | None = None, key: bytes = KEY, **changes) -> dict:
    built = build_wake_event(SESSION, requested_at or at(1), key, requester="alice")
    for path, value in changes.items():
        target = built
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return built


def check(evt: dict, uid: str | None = "uid-1"):
    return valid_wake_request(evt, KEY, current_uid=uid, now=NOW)


def test_a_request_the_gateway_signed_is_valid():
    request = check(event(at(3)))
    assert (request.namespace, request.name, request.uid, request.requested_at) == ("team-a", "sleepy", "uid-1", at(3))
    assert event()["metadata"]["labels"] == {c.LABEL_WAKE_REQUEST: "sleepy"}


@pytest.mark.parametrize(("evt", "uid", "why"), [
    (event(key=OTHER_KEY), "uid-1", "bad signature"),
    (event(metadata__annotations={c.ANNOTATION_WAKE_REQUESTED_AT: at(1)}), "uid-1", "bad signature"),
    (event(involvedObject__name="other"), "uid-1", "bad signature"),  # re-aimed at another session
    (event(involvedObject__uid="uid-2"), "uid-2", "bad signature"),
    (event(), "uid-2", "names a session that no longer exists"),  # deleted and created again
    (event(), None, "names a session that no longer exists"),
    (event(at(601)), "uid-1", "too old or dated in the future"),  # e.g. listed again after a restart
    (event(at(-120)), "uid-1", "too old or dated in the future"),
    (event(involvedObject__kind="Pod"), "uid-1", "not about an AgentSession"),
    (event(involvedObject__namespace="team-b"), "uid-1", "does not name a session of its own namespace with its uid"),
    (event(metadata__annotations={}), "uid-1", "no valid request time"),
    (event(metadata__annotations={c.ANNOTATION_WAKE_REQUESTED_AT: "2026-12-06T05:00:00Z",
                                  c.ANNOTATION_WAKE_SIGNATURE: "x"}), "uid-1", "no valid request time"),
    ({"metadata": {"annotations": "junk"}, "involvedObject": []}, "uid-1", "malformed"),
    ({}, "uid-1", "not about an AgentSession"),
])
def test_a_forged_stale_or_misdirected_request_is_ignored(evt, uid, why):
    assert check(evt, uid) == why


def test_the_handler_keeps_a_valid_request_and_triggers_its_session_once():
    pending, triggered = PendingWakes(), []

    def handle(evt, key=KEY):
        return on_wake_event(evt, key=key, current_uid=lambda ns, n: "uid-1", pending=pending,
                             trigger=triggered.append, now=NOW)

    assert handle(event(at(5)))
    assert pending.pending(("team-a", "sleepy"), "uid-1") == at(5)
    assert not handle(event(at(2), key=OTHER_KEY))  # forged: ignored, nothing triggered
    assert handle(event(at(5)))  # the same request again (another replica's copy): nothing new
    assert handle(event(at(2)))  # a newer one replaces it
    assert triggered == [("team-a", "sleepy"), ("team-a", "sleepy")]
    assert pending.pending(("team-a", "sleepy"), "uid-1") == at(2)
    assert not handle(event(at(1)), key=None)  # an operator without the key acts on nothing


def test_pending_wakes_are_forgotten_once_seen_and_for_namesakes_and_are_bounded():
    pending = PendingWakes()
    pending.offer(("ns", "a"), "uid-a", at(5))
    pending.seen(("ns", "a"), at(9))  # a reconcile saw an older request: keep the newer one
    assert pending.pending(("ns", "a"), "uid-a") == at(5)
    pending.seen(("ns", "a"), at(5))
    assert pending.pending(("ns", "a"), "uid-a") is None
    pending.offer(("ns", "a"), "uid-a", at(5))
    assert pending.pending(("ns", "a"), "uid-b") is None  # the session was deleted and created again
    assert len(pending) == 0
    for index in range(MAX_PENDING + 5):
        pending.offer(("ns", f"s{index}"), "u", at(1))
    assert len(pending) == MAX_PENDING
    assert pending.pending(("ns", "s0"), "u") is None


def status(acted: str | None) -> AgentSessionStatus:
    return AgentSessionStatus.model_validate({"wakeRequest": acted} if acted else {})


@pytest.mark.parametrize(("annotation", "acted", "pending", "expected"), [
    (None, None, None, None),
    (None, None, at(5), at(5)),
    (None, at(9), at(5), at(5)),        # newer than the one acted on
    (None, at(5), at(5), None),         # acted on already
    (None, at(2), at(5), None),         # a later request was acted on: this one is covered
    (at(3), at(5), None, at(3)),        # `agent-sessions start` (annotation) after a request
    (at(9), at(5), None, None),         # an annotation older than the last request acted on
    (at(5), at(5), None, None),
    ("please", None, None, "please"),   # an annotation may hold any value
    ("please", "please", None, None),
    (at(3), at(9), at(5), at(5)),       # both: the signed request first, the annotation next time
])
def test_which_wake_a_reconcile_acts_on(annotation, acted, pending, expected):
    meta = {"annotations": {c.ANNOTATION_WAKE: annotation}} if annotation else {}
    assert wake_to_act_on(meta, status(acted), pending) == expected


def test_a_request_signed_for_one_time_cannot_be_redated():
    evt = event(at(5))
    evt["metadata"]["annotations"][c.ANNOTATION_WAKE_REQUESTED_AT] = at(1)
    assert check(evt) == "bad signature"
    evt["metadata"]["annotations"][c.ANNOTATION_WAKE_SIGNATURE] = wake_signature(KEY, "team-a", "sleepy", "uid-1", at(1))
    assert check(evt).requested_at == at(1)  # only the key holder can
