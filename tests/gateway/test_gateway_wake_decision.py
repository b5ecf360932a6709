"""Deliver, wake, wait for a wake, or refuse: a table of sessions."""

from __future__ import annotations

import pytest

from agent_sessions.gateway.wake_decision import (
    Route,
    needs_templates,
    route,
    wake_on_message,
)
from agent_sessions.wire.wake_request import parse_wake_timestamp, wake_timestamp

NOW = 1_700_000_000.0
WINDOW = 120.0
RECENT = wake_timestamp(int((NOW - 10) * 1e9))
OLD = wake_timestamp(int((NOW - 600) * 1e9))


def session(phase=None, endpoint=None, reason=None, state=None, wake=None, acted=None, deleting=False):
    meta = {"name": "s", "namespace": "ns", "uid": "u"}
    if wake:
        meta["annotations"] = {"agentsession.dev/wake": wake}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    status = {"phase": phase, "stoppedReason": reason, "wakeRequest": acted}
    if endpoint:
        status["provider"] = {"endpoint": endpoint}
    return {"metadata": meta, "spec": {"state": state} if state else {}, "status": status}


@pytest.mark.parametrize(("obj", "wakeable", "expected"), [
    (session("Running", "http://rt"), True, Route.DELIVER),
    (session("Running", "http://rt"), False, Route.DELIVER),
    (session("Running"), True, Route.NOT_RUNNING),
    (session("Running", wake=RECENT), True, Route.AWAIT_WAKE),
    (session("Stopped", reason="IdleTimeout"), True, Route.WAKE),
    (session("Stopped", reason="MaxDuration"), True, Route.WAKE),
    (session("Stopping", reason="IdleTimeout"), True, Route.WAKE),
    (session("Stopped", reason="IdleTimeout"), False, Route.NOT_RUNNING),
    (session("Stopped", reason="User"), True, Route.NOT_RUNNING),
    (session("Stopped", reason="IdleTimeout", state="Stopped"), True, Route.NOT_RUNNING),
    (session("Stopped", reason="IdleTimeout", wake=RECENT), True, Route.AWAIT_WAKE),
    (session("Stopped", reason="IdleTimeout", wake=RECENT, acted=RECENT), True, Route.WAKE),
    (session("Stopped", reason="IdleTimeout", wake=OLD), True, Route.WAKE),
    (session("Stopped", reason="IdleTimeout", wake="garbage"), True, Route.WAKE),
    (session("Creating", wake=RECENT, acted=RECENT), True, Route.AWAIT_WAKE),
    (session("Pending", wake=RECENT), True, Route.AWAIT_WAKE),
    (session("Creating"), True, Route.NOT_RUNNING),
    (session("Creating", wake=OLD), True, Route.NOT_RUNNING),
    (session("Failed", reason="IdleTimeout"), True, Route.NOT_RUNNING),
    (session("Completed"), True, Route.NOT_RUNNING),
    (session(None), True, Route.NOT_RUNNING),
    (session("Running", "http://rt", deleting=True), True, Route.NOT_RUNNING),
])
def test_route(obj, wakeable, expected):
    assert route(obj, wake_on_message=wakeable, now=NOW, window=WINDOW) is expected


def test_wake_timestamp_is_rfc3339_utc_with_nanoseconds_and_round_trips():
    value = wake_timestamp(1_700_000_000_123_456_789)
    assert value == "2023-11-14T22:13:20.123456789Z"
    assert parse_wake_timestamp(value) == pytest.approx(1_700_000_000.123456789)


@pytest.mark.parametrize(("text", "expected"), [
    ("2023-11-14T22:13:20Z", 1_700_000_000.0),
    ("2023-11-14T22:13:20.5Z", 1_700_000_000.5),
    ("2023-11-14T23:13:20.25+01:00", 1_700_000_000.25),
    ("yesterday", None), ("", None), (None, None), (12, None), ("2023-13-14T22:13:20Z", None),
])
def test_parse_wake_timestamp(text, expected):
    assert parse_wake_timestamp(text) == (pytest.approx(expected) if expected is not None else None)


def agent_session(spec):
    return {"apiVersion": "agentsession.dev/v1alpha1", "kind": "AgentSession",
            "metadata": {"name": "s", "namespace": "ns"}, "spec": spec}


def template(name, spec):
    return {"apiVersion": "agentsession.dev/v1alpha1", "kind": "SessionTemplate",
            "metadata": {"name": name, "namespace": "ns", "generation": 1}, "spec": spec}


AGENT = {"agent": {"image": "example.com/a:1"}}


@pytest.mark.parametrize(("spec", "templates", "defaults", "expected"), [
    ({**AGENT}, {}, None, True),
    ({**AGENT, "lifecycle": {"wakeOnMessage": False}}, {}, None, False),
    ({**AGENT}, {}, {"lifecycle": {"wakeOnMessage": False}}, False),
    ({"templateRef": {"name": "t"}}, {"t": template("t", {**AGENT, "lifecycle": {"wakeOnMessage": False}})}, None,
     False),
    ({"templateRef": {"name": "t"}, "lifecycle": {"wakeOnMessage": True}},
     {"t": template("t", {**AGENT, "lifecycle": {"wakeOnMessage": False}})}, None, True),
    ({"templateRef": {"name": "missing"}}, {}, None, True),
])
def test_wake_on_message_resolves_like_the_operator(spec, templates, defaults, expected):
    assert wake_on_message(agent_session(spec), templates, defaults) is expected


def test_templates_are_only_needed_when_the_session_does_not_say():
    assert needs_templates(agent_session({"templateRef": {"name": "t"}}))
    assert not needs_templates(agent_session({"templateRef": {"name": "t"}, "lifecycle": {"wakeOnMessage": True}}))
    assert not needs_templates(agent_session(AGENT))


ASKED = NOW - 5  # when this gateway process asked for a wake (epoch seconds)


@pytest.mark.parametrize(("obj", "asked_at", "expected"), [
    # Asked by this process, not acted on yet: join it instead of asking again.
    (session("Stopped", reason="IdleTimeout"), ASKED, Route.AWAIT_WAKE),
    (session("Stopped", reason="IdleTimeout", acted=OLD), ASKED, Route.AWAIT_WAKE),
    # The operator recorded acting on it (or a later one), and the session stopped again: ask anew.
    (session("Stopped", reason="IdleTimeout", acted=wake_timestamp(int(ASKED * 1e9))), ASKED, Route.WAKE),
    (session("Stopped", reason="IdleTimeout", acted=RECENT), NOW - 60, Route.WAKE),
    # Asked long ago (the wait gave up): ask anew.
    (session("Stopped", reason="IdleTimeout"), NOW - 600, Route.WAKE),
    # On its way up after the operator acted on a recent request (from any gateway replica).
    (session("Creating", acted=RECENT), None, Route.AWAIT_WAKE),
    (session("Pending"), ASKED, Route.AWAIT_WAKE),
    (session("Creating", acted=OLD), None, Route.NOT_RUNNING),
])
def test_route_joins_the_wakes_this_gateway_asked_for(obj, asked_at, expected):
    assert route(obj, wake_on_message=True, now=NOW, window=WINDOW, asked_at=asked_at) is expected
